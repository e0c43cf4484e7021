//! `cordon-fleet-authority init DIR`: creates the fleet's PKI and keys.
//!
//! Idempotent: a file that exists is kept, so re-running `init` with more
//! devices only adds what is missing and never replaces a key.

use std::path::Path;

use chrono::Utc;
use cordon_fleet::firmware::{Manifest, SignedImage};
use cordon_fleet::keys::{self, SigningKey};
use sha2::Digest;

use crate::authority::{issue_to_files, publish_crl};
use crate::files::{self, PRIVATE, PUBLIC};
use crate::issue::{Ca, Profile};
use crate::names;
use crate::registry::{Kind, Record, Registry, Status, serial_text};

/// The firmware releases `images.json` describes: version, security version.
pub const RELEASES: &[(&str, u32)] = &[("1.0.0", 1), ("1.1.0", 2), ("2.0.0", 2), ("2.1.0", 3)];

/// The deterministic bytes of the reference image `version` (what its
/// manifest's SHA-256 is of).
pub fn image_bytes(version: &str) -> Vec<u8> {
    format!("cordon reference firmware {version}\n").into_bytes()
}

/// What `init` did, for the summary.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files written (relative to DIR).
    pub created: Vec<String>,
    /// Files that existed and were kept.
    pub kept: usize,
    /// Devices with a certificate now.
    pub devices: Vec<String>,
    /// The CRL number on disk.
    pub crl_number: u64,
}

fn secret_key(dir: &Path, name: &str, summary: &mut Summary) -> anyhow::Result<SigningKey> {
    let secret = dir.join(format!("{name}.key"));
    let key = match std::fs::read_to_string(&secret) {
        Ok(text) => {
            summary.kept += 1;
            keys::parse_secret(&text)?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = keys::generate()?;
            files::write_atomic(&secret, keys::secret_text(&key).as_bytes(), PRIVATE)?;
            summary.created.push(format!("{name}.key"));
            key
        }
        Err(e) => return Err(e.into()),
    };
    let public = keys::public_text(&key.verifying_key());
    if files::write_new(&dir.join(format!("{name}.pub")), public.as_bytes(), PUBLIC)? {
        summary.created.push(format!("{name}.pub"));
    }
    Ok(key)
}

/// Runs `init`.
pub fn run(dir: &Path, devices: &[String], reserve: &[String]) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let mut registry = Registry::load(dir)?.unwrap_or_default();
    for name in reserve {
        if !registry.reserved.contains(name) {
            registry.reserved.push(name.clone());
        }
    }
    // Refuse before writing anything: a reserved name must never be signed.
    let refused: Vec<String> = devices
        .iter()
        .filter_map(|d| names::check_device_name(d, &registry.reserved).err())
        .map(|e| e.to_string())
        .collect();
    if !refused.is_empty() {
        anyhow::bail!("refusing to issue: {}", refused.join("; "));
    }
    std::fs::create_dir_all(dir.join("devices"))?;
    let now = Utc::now();

    let ca = if dir.join("ca.crt").exists() && dir.join("ca.key").exists() {
        summary.kept += 2;
        Ca::load(dir)?
    } else {
        let serial = registry.take_serial();
        let (ca, issued) = Ca::create(serial, now)?;
        files::write_atomic(&dir.join("ca.key"), issued.key_pem.as_bytes(), PRIVATE)?;
        files::write_atomic(&dir.join("ca.crt"), issued.cert_pem.as_bytes(), PUBLIC)?;
        registry.certificates.push(Record {
            serial: serial_text(serial),
            cn: crate::issue::CA_CN.into(),
            kind: Kind::Ca,
            not_before: issued.not_before,
            not_after: issued.not_after,
            status: Status::Valid,
            revoked_at: None,
            reason: None,
        });
        summary.created.extend(["ca.key".into(), "ca.crt".into()]);
        ca
    };

    let mut leaves: Vec<(String, Kind, Profile, String)> = vec![(
        "server".into(),
        Kind::Server,
        Profile::Server,
        String::new(),
    )];
    leaves.extend(
        devices
            .iter()
            .map(|d| (d.clone(), Kind::Device, Profile::Client, "devices/".into())),
    );
    for (cn, kind, profile, sub) in leaves {
        let cert = dir.join(format!("{sub}{cn}.crt"));
        if cert.exists() {
            summary.kept += 1;
        } else {
            let key = dir.join(format!("{sub}{cn}.key"));
            issue_to_files(&ca, &mut registry, &cn, kind, profile, &cert, &key, now)?;
            summary.created.push(format!("{sub}{cn}.crt"));
        }
        if kind == Kind::Device {
            summary.devices.push(cn);
        }
    }

    secret_key(dir, "command", &mut summary)?;
    let release = secret_key(dir, "release", &mut summary)?;
    let images: Vec<SignedImage> = RELEASES
        .iter()
        .map(|(version, security_version)| {
            SignedImage::sign(
                Manifest {
                    version: (*version).into(),
                    security_version: *security_version,
                    sha256: hex::encode(sha2::Sha256::digest(image_bytes(version))),
                },
                &release,
            )
        })
        .collect();
    let mut json = serde_json::to_vec_pretty(&images)?;
    json.push(b'\n');
    if files::write_new(&dir.join("images.json"), &json, PUBLIC)? {
        summary.created.push("images.json".into());
    } else {
        summary.kept += 1;
    }

    if dir.join(crate::crl::FILE).exists() {
        summary.kept += 1;
        registry.crl_number = registry.crl_number.max(crate::crl::number_on_disk(dir));
    } else {
        publish_crl(dir, &ca, &mut registry, false, now)
            .map_err(|f| anyhow::anyhow!("{}: {}", f.code, f.message))?;
        summary.created.push(crate::crl::FILE.into());
    }
    summary.crl_number = registry.crl_number;
    registry.save(dir)?;
    Ok(summary)
}
