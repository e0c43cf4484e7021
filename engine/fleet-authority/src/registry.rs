//! `authority.json`: every certificate the CA has issued, the next serial and
//! the number of the last published CRL.
//!
//! The registry is the source of truth for the CRL: every revoked serial in
//! it must be listed in the CRL on disk. It is only ever replaced atomically,
//! and only after the CRL it describes has been validated and written.

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::files;

/// The registry's file name inside the state directory.
pub const FILE: &str = "authority.json";

/// The first serial the CA issues (as `pki.sh` does, for familiar numbers).
pub const FIRST_SERIAL: u64 = 0x1000;

/// What a certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The CA itself (self-signed).
    Ca,
    /// The broker's server certificate.
    Server,
    /// A device's client certificate.
    Device,
    /// A certificate revoked in the CRL it was created for, to prove the
    /// broker enforces that CRL.
    Sentinel,
    /// The authority's own valid client certificate, to prove the broker
    /// still accepts valid certificates.
    Probe,
}

/// Whether a certificate is still good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Not revoked (it may still have expired: see `not_after`).
    Valid,
    /// Listed in the CRL.
    Revoked,
}

/// Why a certificate was revoked (RFC 5280 reason codes the API accepts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The device's key is (or may be) in someone else's hands.
    KeyCompromise,
    /// Replaced by a newer certificate.
    Superseded,
    /// The device left the fleet.
    CessationOfOperation,
    /// No reason given.
    Unspecified,
    /// The device changed hands (owner, site, operator).
    AffiliationChanged,
    /// The CA's own key is compromised.
    CaCompromise,
    /// Suspended; the only reason that RFC 5280 allows to be lifted. This CA
    /// never lifts it: a held device is re-provisioned like any other.
    CertificateHold,
}

impl Reason {
    /// The RFC 5280 reason code.
    pub fn rcgen(self) -> rcgen::RevocationReason {
        match self {
            Reason::KeyCompromise => rcgen::RevocationReason::KeyCompromise,
            Reason::Superseded => rcgen::RevocationReason::Superseded,
            Reason::CessationOfOperation => rcgen::RevocationReason::CessationOfOperation,
            Reason::Unspecified => rcgen::RevocationReason::Unspecified,
            Reason::AffiliationChanged => rcgen::RevocationReason::AffiliationChanged,
            Reason::CaCompromise => rcgen::RevocationReason::CaCompromise,
            Reason::CertificateHold => rcgen::RevocationReason::CertificateHold,
        }
    }
}

/// One issued certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Serial number, lowercase hex without leading zeros.
    pub serial: String,
    /// Subject common name.
    pub cn: String,
    /// What it is for.
    pub kind: Kind,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Valid or revoked.
    pub status: Status,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why it was revoked.
    #[serde(default)]
    pub reason: Option<Reason>,
}

impl Record {
    /// The serial as a number.
    pub fn serial_number(&self) -> Option<u64> {
        parse_serial(&self.serial)
    }
}

/// The registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    /// The serial the next certificate gets.
    pub next_serial: u64,
    /// The number of the last published CRL (0: none yet).
    pub crl_number: u64,
    /// Names never issued, beyond the built-in ones (`--reserve`).
    #[serde(default)]
    pub reserved: Vec<String>,
    /// Every certificate issued, in issue order.
    pub certificates: Vec<Record>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            next_serial: FIRST_SERIAL,
            crl_number: 0,
            reserved: Vec::new(),
            certificates: Vec::new(),
        }
    }
}

/// Parses a serial as written in the registry or a URL (`1003`, `0x1003`).
pub fn parse_serial(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// The registry's text form of a serial.
pub fn serial_text(serial: u64) -> String {
    format!("{serial:x}")
}

impl Registry {
    /// Loads `DIR/authority.json`; `None` if there is none yet.
    pub fn load(dir: &Path) -> anyhow::Result<Option<Registry>> {
        let path = dir.join(FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{} is not a registry: {e}", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }

    /// Replaces `DIR/authority.json` atomically.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        files::write_atomic(&dir.join(FILE), &bytes, files::PRIVATE)
    }

    /// Takes the next serial.
    pub fn take_serial(&mut self) -> u64 {
        let serial = self.next_serial;
        self.next_serial += 1;
        serial
    }

    /// The record of `serial`.
    pub fn by_serial(&self, serial: u64) -> Option<&Record> {
        self.certificates
            .iter()
            .find(|r| r.serial_number() == Some(serial))
    }

    /// The record of `serial`, mutable.
    pub fn by_serial_mut(&mut self, serial: u64) -> Option<&mut Record> {
        self.certificates
            .iter_mut()
            .find(|r| r.serial_number() == Some(serial))
    }

    /// The device's current certificate: the last one issued to that CN.
    pub fn device(&self, cn: &str) -> Option<&Record> {
        self.certificates
            .iter()
            .rev()
            .find(|r| r.kind == Kind::Device && r.cn == cn)
    }

    /// The newest valid certificate of this kind and CN.
    pub fn valid(&self, kind: Kind, cn: &str) -> Option<&Record> {
        self.certificates
            .iter()
            .rev()
            .find(|r| r.kind == kind && r.cn == cn && r.status == Status::Valid)
    }

    /// Serials of every revoked certificate.
    pub fn revoked_serials(&self) -> Vec<u64> {
        self.certificates
            .iter()
            .filter(|r| r.status == Status::Revoked)
            .filter_map(Record::serial_number)
            .collect()
    }
}
