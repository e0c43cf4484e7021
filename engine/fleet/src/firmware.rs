//! Signed firmware images and the anti-rollback floor.
//!
//! An image is described by a manifest (version, security version, SHA-256
//! of the image) signed by the fleet's release key. A device installs only an
//! image whose manifest verifies, and never one whose security version is
//! below its floor unless the (signed) command carries the override. The
//! signed bytes are `cordon-firmware-image/v1\n` + JCS(manifest).

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::keys;

const DOMAIN: &[u8] = b"cordon-firmware-image/v1\n";

/// What a release says about an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The image's version, such as `2.4.1`.
    pub version: String,
    /// Anti-rollback counter: a device refuses images below its floor.
    pub security_version: u32,
    /// SHA-256 of the image bytes, hex.
    pub sha256: String,
}

/// A manifest with the release key's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedImage {
    /// The manifest.
    pub manifest: Manifest,
    /// [`keys::key_id`] of the release key.
    pub key_id: String,
    /// Ed25519 over the domain-separated JCS of the manifest, hex.
    pub signature: String,
}

impl SignedImage {
    /// Signs `manifest` with the release key.
    pub fn sign(manifest: Manifest, key: &SigningKey) -> SignedImage {
        let signature = key.sign(&signed_bytes(&manifest));
        SignedImage {
            key_id: keys::key_id(&key.verifying_key()),
            signature: hex::encode(signature.to_bytes()),
            manifest,
        }
    }

    /// Whether the release key signed exactly this manifest.
    pub fn verifies(&self, key: &VerifyingKey) -> bool {
        self.key_id == keys::key_id(key)
            && hex::decode(&self.signature)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .is_some_and(|b| {
                    key.verify_strict(&signed_bytes(&self.manifest), &Signature::from_bytes(&b))
                        .is_ok()
                })
    }
}

fn signed_bytes(manifest: &Manifest) -> Vec<u8> {
    let mut bytes = DOMAIN.to_vec();
    bytes.extend(serde_jcs::to_vec(manifest).unwrap_or_default());
    bytes
}

/// Why an image may not be installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallRefusal {
    /// The device holds no image of that version.
    #[error("no image {0} in the device's slots")]
    NoSuchImage(String),
    /// The manifest's signature does not verify.
    #[error("image {0} is not signed by the release key")]
    Unsigned(String),
    /// Below the anti-rollback floor, without the override.
    #[error("image {version} has security version {security_version}, below the floor {floor}")]
    BelowFloor {
        /// The image's version.
        version: String,
        /// Its security version.
        security_version: u32,
        /// The device's floor.
        floor: u32,
    },
}

/// Picks the image to install from `slots` and checks it: present, signed by
/// `release_key`, and at or above `floor` unless `allow_below_floor`.
pub fn check_install<'a>(
    slots: &'a [SignedImage],
    version: &str,
    release_key: &VerifyingKey,
    floor: u32,
    allow_below_floor: bool,
) -> Result<&'a SignedImage, InstallRefusal> {
    let image = slots
        .iter()
        .find(|i| i.manifest.version == version)
        .ok_or_else(|| InstallRefusal::NoSuchImage(version.to_string()))?;
    if !image.verifies(release_key) {
        return Err(InstallRefusal::Unsigned(version.to_string()));
    }
    if image.manifest.security_version < floor && !allow_below_floor {
        return Err(InstallRefusal::BelowFloor {
            version: version.to_string(),
            security_version: image.manifest.security_version,
            floor,
        });
    }
    Ok(image)
}

#[cfg(all(test, feature = "random"))]
#[allow(clippy::unwrap_used)] // a failed unwrap is the test failing
mod tests {
    use super::*;

    fn image(key: &SigningKey, version: &str, security_version: u32) -> SignedImage {
        SignedImage::sign(
            Manifest {
                version: version.into(),
                security_version,
                sha256: "00".repeat(32),
            },
            key,
        )
    }

    #[test]
    fn install_checks_presence_signature_and_floor() {
        let release = keys::generate().expect("key");
        let rogue = keys::generate().expect("key");
        let slots = vec![
            image(&release, "1.0.0", 1),
            image(&release, "1.1.0", 2),
            image(&rogue, "1.2.0", 3),
        ];
        let key = release.verifying_key();
        assert!(check_install(&slots, "1.1.0", &key, 2, false).is_ok());
        assert_eq!(
            check_install(&slots, "9.9.9", &key, 2, false).unwrap_err(),
            InstallRefusal::NoSuchImage("9.9.9".into())
        );
        assert!(matches!(
            check_install(&slots, "1.0.0", &key, 2, false),
            Err(InstallRefusal::BelowFloor { floor: 2, .. })
        ));
        assert!(check_install(&slots, "1.0.0", &key, 2, true).is_ok());
        assert_eq!(
            check_install(&slots, "1.2.0", &key, 0, false).unwrap_err(),
            InstallRefusal::Unsigned("1.2.0".into())
        );
        let mut forged = slots[1].clone();
        forged.manifest.security_version = 9;
        assert!(!forged.verifies(&key));
    }
}
