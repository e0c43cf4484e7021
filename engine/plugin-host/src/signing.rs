//! Plugin identity: an Ed25519 signature over a canonical manifest that
//! binds the component's SHA-256 to its name, version, release counter,
//! capabilities and expiry (so one signed component cannot stand in for
//! another, nor an old one for a new one).
//!
//! Files: `NAME.wasm` and, next to it, `NAME.wasm.sig` (JSON, a
//! [`SignatureFile`]). Keys are text: `ed25519-secret:<64 hex>` (the seed)
//! and `ed25519:<64 hex>` (the public key).

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::LoadError;

/// Domain separation: a manifest signature can never be confused with a
/// signature Cordon makes over anything else (audit checkpoints, commands).
const CONTEXT: &[u8] = b"cordon-plugin-manifest/v1\0";

/// What a signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name (must equal its descriptor's).
    pub name: String,
    /// Its version (must equal its descriptor's).
    pub version: String,
    /// Monotonic per plugin: the host refuses a counter below the highest
    /// it has accepted for this name.
    pub release_counter: u64,
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// Its capabilities in text form (must equal its descriptor's).
    pub capabilities: Vec<String>,
    /// After this instant the host refuses the component.
    pub expires: DateTime<Utc>,
}

/// A detached signature: the manifest, the signing key's id, the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureFile {
    /// What is signed.
    pub manifest: Manifest,
    /// The id of the key that signed ([`key_id`]).
    pub key: String,
    /// 64 bytes, hex.
    pub signature: String,
}

/// `sha256:<lowercase hex>` of some bytes.
pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A key's id: the first 16 hex digits of the SHA-256 of the public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

/// The bytes that are signed: the context, then the RFC 8785 canonical JSON.
fn signed_bytes(manifest: &Manifest) -> Vec<u8> {
    let mut bytes = CONTEXT.to_vec();
    // A manifest is plain strings and integers: canonicalisation cannot fail.
    bytes.extend(serde_jcs::to_vec(manifest).unwrap_or_default());
    bytes
}

/// Signs a manifest.
pub fn sign(manifest: Manifest, key: &SigningKey) -> SignatureFile {
    let signature = key.sign(&signed_bytes(&manifest));
    SignatureFile {
        manifest,
        key: key_id(&key.verifying_key()),
        signature: hex::encode(signature.to_bytes()),
    }
}

/// The keys whose signatures the operator accepts.
#[derive(Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<VerifyingKey>,
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(key_id))
            .finish()
    }
}

impl TrustedKeys {
    /// These keys.
    pub fn new(keys: Vec<VerifyingKey>) -> TrustedKeys {
        TrustedKeys { keys }
    }

    /// Reads public key files (`ed25519:<hex>`).
    pub fn read(paths: &[impl AsRef<Path>]) -> Result<TrustedKeys, KeyError> {
        let mut keys = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let text = std::fs::read_to_string(path)
                .map_err(|e| KeyError(format!("{}: {e}", path.display())))?;
            keys.push(
                parse_public_key(&text)
                    .map_err(|e| KeyError(format!("{}: {}", path.display(), e.0)))?,
            );
        }
        Ok(TrustedKeys { keys })
    }

    fn find(&self, id: &str) -> Option<&VerifyingKey> {
        self.keys.iter().find(|k| key_id(k) == id)
    }
}

/// A key file is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad key: {0}")]
pub struct KeyError(pub String);

fn hex32(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|e| KeyError(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| KeyError("expected 32 bytes (64 hex digits)".into()))
}

/// Parses `ed25519:<hex>`.
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let hex = text
        .trim()
        .strip_prefix("ed25519:")
        .ok_or_else(|| KeyError("a public key starts with `ed25519:`".into()))?;
    VerifyingKey::from_bytes(&hex32(hex)?).map_err(|e| KeyError(e.to_string()))
}

/// Parses `ed25519-secret:<hex>`.
pub fn parse_secret_key(text: &str) -> Result<SigningKey, KeyError> {
    let hex = text
        .trim()
        .strip_prefix("ed25519-secret:")
        .ok_or_else(|| KeyError("a secret key starts with `ed25519-secret:`".into()))?;
    Ok(SigningKey::from_bytes(&hex32(hex)?))
}

/// The text of a public key file.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}\n", hex::encode(key.as_bytes()))
}

/// The text of a secret key file.
pub fn secret_key_text(key: &SigningKey) -> String {
    format!("ed25519-secret:{}\n", hex::encode(key.to_bytes()))
}

/// A fresh key from the operating system's randomness.
pub fn generate_key() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError(format!("no randomness: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// What the host checks a component against before compiling it.
#[derive(Debug, Clone)]
pub struct Check<'a> {
    /// The component's bytes.
    pub bytes: &'a [u8],
    /// Its detached signature, if it has one; `sig_path` names where it was looked for.
    pub signature: Option<&'a SignatureFile>,
    /// Where the signature was looked for (for the error message).
    pub sig_path: &'a str,
    /// The digest the playbook version pinned, if any.
    pub pin: Option<&'a str>,
    /// The largest component accepted.
    pub max_bytes: u64,
    /// The highest release counter accepted so far for the manifest's name.
    pub floor: Option<u64>,
    /// Now.
    pub now: DateTime<Utc>,
}

/// Checks, in this order: size, digest, pin, signature, release-counter
/// floor, expiry. Returns the verified manifest; nothing has been parsed or
/// compiled yet.
pub fn verify(check: &Check<'_>, trusted: &TrustedKeys) -> Result<Manifest, LoadError> {
    let bytes = check.bytes.len() as u64;
    if bytes > check.max_bytes {
        return Err(LoadError::TooLarge {
            bytes,
            limit: check.max_bytes,
        });
    }
    let actual = digest(check.bytes);
    if let Some(sig) = check.signature
        && sig.manifest.digest != actual
    {
        return Err(LoadError::DigestMismatch {
            expected: sig.manifest.digest.clone(),
            actual,
        });
    }
    if let Some(pin) = check.pin
        && pin != actual
    {
        return Err(LoadError::PinMismatch {
            pinned: pin.to_string(),
            actual,
        });
    }
    let sig = check
        .signature
        .ok_or_else(|| LoadError::Unsigned(check.sig_path.to_string()))?;
    let key = trusted
        .find(&sig.key)
        .ok_or_else(|| LoadError::UntrustedKey(sig.key.clone()))?;
    let raw = hex::decode(&sig.signature).map_err(|e| LoadError::BadSignature(e.to_string()))?;
    let raw: [u8; 64] = raw
        .try_into()
        .map_err(|_| LoadError::BadSignature("not 64 bytes".into()))?;
    key.verify_strict(&signed_bytes(&sig.manifest), &Signature::from_bytes(&raw))
        .map_err(|e| LoadError::BadSignature(e.to_string()))?;
    let manifest = &sig.manifest;
    if let Some(floor) = check.floor
        && manifest.release_counter < floor
    {
        return Err(LoadError::RolledBack {
            name: manifest.name.clone(),
            counter: manifest.release_counter,
            floor,
        });
    }
    if manifest.expires <= check.now {
        return Err(LoadError::Expired(manifest.expires.to_rfc3339()));
    }
    Ok(manifest.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(bytes: &[u8]) -> Manifest {
        Manifest {
            name: "noop".into(),
            version: "1.0.0".into(),
            release_counter: 3,
            digest: digest(bytes),
            capabilities: vec![],
            expires: "2030-01-01T00:00:00Z".parse().expect("time"),
        }
    }

    fn check<'a>(bytes: &'a [u8], sig: Option<&'a SignatureFile>) -> Check<'a> {
        Check {
            bytes,
            signature: sig,
            sig_path: "noop.wasm.sig",
            pin: None,
            max_bytes: 1 << 20,
            floor: None,
            now: "2026-01-01T00:00:00Z".parse().expect("time"),
        }
    }

    #[test]
    fn every_check_fails_with_its_own_error_in_order() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let other = SigningKey::from_bytes(&[8; 32]);
        let trusted = TrustedKeys::new(vec![key.verifying_key()]);
        let bytes = b"component".to_vec();
        let good = sign(manifest(&bytes), &key);
        assert_eq!(
            verify(&check(&bytes, Some(&good)), &trusted),
            Ok(good.manifest.clone())
        );

        let mut big = check(&bytes, Some(&good));
        big.max_bytes = 3;
        assert_eq!(
            verify(&big, &trusted).map_err(|e| e.code()),
            Err("plugin.too_large")
        );

        let mut flipped = bytes.clone();
        flipped[0] ^= 1;
        let tampered = verify(&check(&flipped, Some(&good)), &trusted);
        assert_eq!(
            tampered.map_err(|e| e.code()),
            Err("plugin.digest_mismatch")
        );

        let mut pinned = check(&bytes, Some(&good));
        let other_digest = digest(b"other");
        pinned.pin = Some(&other_digest);
        assert_eq!(
            verify(&pinned, &trusted).map_err(|e| e.code()),
            Err("plugin.pin_mismatch")
        );

        assert_eq!(
            verify(&check(&bytes, None), &trusted).map_err(|e| e.code()),
            Err("plugin.unsigned")
        );

        let by_other = sign(manifest(&bytes), &other);
        let untrusted = verify(&check(&bytes, Some(&by_other)), &trusted);
        assert_eq!(untrusted.map_err(|e| e.code()), Err("plugin.untrusted_key"));

        // A manifest changed after signing (say, a raised counter) no longer verifies.
        let mut forged = good.clone();
        forged.manifest.release_counter = 99;
        let forged = verify(&check(&bytes, Some(&forged)), &trusted);
        assert_eq!(forged.map_err(|e| e.code()), Err("plugin.bad_signature"));

        let mut floor = check(&bytes, Some(&good));
        floor.floor = Some(4);
        assert_eq!(
            verify(&floor, &trusted).map_err(|e| e.code()),
            Err("plugin.rolled_back")
        );
        floor.floor = Some(3);
        assert!(
            verify(&floor, &trusted).is_ok(),
            "the same release is not a rollback"
        );

        let mut late = check(&bytes, Some(&good));
        late.now = "2030-01-01T00:00:00Z".parse().expect("time");
        assert_eq!(
            verify(&late, &trusted).map_err(|e| e.code()),
            Err("plugin.expired")
        );
    }

    #[test]
    fn key_files_round_trip() {
        let key = generate_key().expect("key");
        let secret = parse_secret_key(&secret_key_text(&key)).expect("secret");
        assert_eq!(secret.to_bytes(), key.to_bytes());
        let public = parse_public_key(&public_key_text(&key.verifying_key())).expect("public");
        assert_eq!(public, key.verifying_key());
        assert!(parse_public_key("ed25519:zz").is_err());
        assert!(parse_public_key(&secret_key_text(&key)).is_err());
    }
}
