//! Building, validating and publishing the CRL.
//!
//! Mosquitto 2.0 fails **open** when the CRL it re-reads at SIGHUP is missing
//! or unparsable (every revoked certificate connects again) and fails
//! **closed** when its nextUpdate has passed (every device is locked out). So
//! a new CRL is parsed back and checked with an independent parser
//! (x509-parser, not the rcgen that wrote it) before it replaces `crl.pem`,
//! and the old file stays in place when any check fails.

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rcgen::{CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber};
use serde::Serialize;

use crate::files;
use crate::issue::{Ca, to_time};
use crate::registry::{Reason, Registry};

/// The CRL's file name inside the state directory (the broker's `crlfile`).
pub const FILE: &str = "crl.pem";

/// How far ahead a published CRL's nextUpdate is.
pub const NEXT_UPDATE_DAYS: i64 = 30;

/// The least time a CRL must have left before nextUpdate to be published:
/// one about to expire would lock the whole fleet out soon after.
pub const MIN_REMAINING_SECS: i64 = 3600;

/// What a validated CRL says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CrlInfo {
    /// The CRL number.
    pub number: u64,
    /// thisUpdate.
    pub this_update: DateTime<Utc>,
    /// nextUpdate.
    pub next_update: DateTime<Utc>,
    /// How many serials it lists.
    pub revoked_count: usize,
    /// The serials it lists (registry hex form).
    #[serde(skip)]
    pub serials: Vec<String>,
}

impl CrlInfo {
    /// Whether `serial` (registry hex form) is listed.
    pub fn lists(&self, serial: &str) -> bool {
        self.serials.iter().any(|s| s == serial)
    }
}

/// Why a CRL was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// rcgen could not build it.
    #[error("cannot build the CRL: {0}")]
    Build(String),
    /// Not a PEM `X509 CRL`, or not a parsable CRL.
    #[error("the CRL does not parse: {0}")]
    Parse(String),
    /// The CA certificate does not parse.
    #[error("the CA certificate does not parse: {0}")]
    BadCa(String),
    /// Not issued by, or not signed by, the CA.
    #[error("the CRL is not signed by the CA: {0}")]
    Signature(String),
    /// No nextUpdate, or one too close (or past).
    #[error("the CRL's nextUpdate ({0}) is not at least an hour ahead")]
    NextUpdate(String),
    /// thisUpdate is in the future.
    #[error("the CRL's thisUpdate ({0}) is in the future")]
    ThisUpdate(DateTime<Utc>),
    /// No CRL number, or one not above the previous one.
    #[error("the CRL number {got:?} is not above the previous one ({previous})")]
    Number {
        /// The number in the CRL.
        got: Option<u64>,
        /// The last published number.
        previous: u64,
    },
    /// A serial the registry has revoked is not in the CRL.
    #[error("revoked serial {0} is missing from the CRL")]
    MissingSerial(String),
    /// Writing the file failed.
    #[error("cannot write crl.pem: {0}")]
    Io(String),
}

impl CrlError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            CrlError::Io(_) => "io_error",
            _ => "crl_invalid",
        }
    }
}

/// Builds a CRL listing every revoked certificate of `registry`, numbered
/// `number`, valid from `now` for [`NEXT_UPDATE_DAYS`]. Returns its PEM.
pub fn build(
    ca: &Ca,
    registry: &Registry,
    number: u64,
    now: DateTime<Utc>,
) -> Result<String, CrlError> {
    let time = |at| to_time(at).map_err(|e| CrlError::Build(e.to_string()));
    let mut revoked_certs = Vec::new();
    for record in registry
        .certificates
        .iter()
        .filter(|r| r.status == crate::registry::Status::Revoked)
    {
        let serial = record
            .serial_number()
            .ok_or_else(|| CrlError::Build(format!("bad serial {}", record.serial)))?;
        revoked_certs.push(RevokedCertParams {
            serial_number: SerialNumber::from(serial),
            revocation_time: time(record.revoked_at.unwrap_or(now))?,
            reason_code: Some(record.reason.unwrap_or(Reason::Unspecified).rcgen()),
            invalidity_date: None,
        });
    }
    let params = CertificateRevocationListParams {
        this_update: time(now)?,
        next_update: time(now + Duration::days(NEXT_UPDATE_DAYS))?,
        crl_number: SerialNumber::from(number),
        issuing_distribution_point: None,
        revoked_certs,
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(ca.issuer())
        .and_then(|crl| crl.pem())
        .map_err(|e| CrlError::Build(e.to_string()))
}

fn biguint_u64(n: &x509_parser::num_bigint::BigUint) -> Option<u64> {
    let bytes = n.to_bytes_be();
    (bytes.len() <= 8).then(|| bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

fn asn1_time(t: x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
}

/// Parses a PEM CRL without checking anything beyond its syntax: what the
/// file on disk lists (for `in_crl`).
pub fn inspect(pem: &[u8]) -> Result<CrlInfo, CrlError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| CrlError::Parse(format!("not PEM: {e}")))?;
    if block.label != "X509 CRL" {
        return Err(CrlError::Parse(format!(
            "a PEM `{}` block, not `X509 CRL`",
            block.label
        )));
    }
    let (_, crl) =
        x509_parser::parse_x509_crl(&block.contents).map_err(|e| CrlError::Parse(e.to_string()))?;
    Ok(CrlInfo {
        number: crl.crl_number().and_then(biguint_u64).unwrap_or(0),
        this_update: asn1_time(crl.last_update()),
        next_update: crl.next_update().map(asn1_time).unwrap_or_default(),
        revoked_count: crl.iter_revoked_certificates().count(),
        serials: crl
            .iter_revoked_certificates()
            .map(|r| r.serial().to_str_radix(16))
            .collect(),
    })
}

/// What a new CRL must satisfy besides its signature and dates.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Every serial the registry has revoked (all must be listed).
    pub revoked: &'a [u64],
    /// The number of the last published CRL (the new one must be above).
    pub previous_number: u64,
}

/// Validates a PEM CRL against the CA certificate (DER) at `now`.
pub fn validate(
    pem: &[u8],
    ca_cert_der: &[u8],
    expect: Expect<'_>,
    now: DateTime<Utc>,
) -> Result<CrlInfo, CrlError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| CrlError::Parse(format!("not PEM: {e}")))?;
    if block.label != "X509 CRL" {
        return Err(CrlError::Parse(format!(
            "a PEM `{}` block, not `X509 CRL`",
            block.label
        )));
    }
    let (rest, crl) =
        x509_parser::parse_x509_crl(&block.contents).map_err(|e| CrlError::Parse(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CrlError::Parse("trailing bytes after the CRL".into()));
    }
    let (_, ca) = x509_parser::parse_x509_certificate(ca_cert_der)
        .map_err(|e| CrlError::BadCa(e.to_string()))?;
    if crl.issuer().as_raw() != ca.subject().as_raw() {
        return Err(CrlError::Signature(format!(
            "issuer `{}` is not the CA `{}`",
            crl.issuer(),
            ca.subject()
        )));
    }
    crl.verify_signature(ca.public_key())
        .map_err(|e| CrlError::Signature(e.to_string()))?;

    let this_update = asn1_time(crl.last_update());
    if this_update > now {
        return Err(CrlError::ThisUpdate(this_update));
    }
    let next_update = crl
        .next_update()
        .map(asn1_time)
        .ok_or_else(|| CrlError::NextUpdate("absent".into()))?;
    if next_update < now + Duration::seconds(MIN_REMAINING_SECS) {
        return Err(CrlError::NextUpdate(next_update.to_rfc3339()));
    }
    let number = crl.crl_number().and_then(biguint_u64);
    match number {
        Some(n) if n > expect.previous_number => {}
        got => {
            return Err(CrlError::Number {
                got,
                previous: expect.previous_number,
            });
        }
    }
    let serials: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| r.serial().to_str_radix(16))
        .collect();
    let listed: HashSet<&str> = serials.iter().map(String::as_str).collect();
    for serial in expect.revoked {
        let hex = format!("{serial:x}");
        if !listed.contains(hex.as_str()) {
            return Err(CrlError::MissingSerial(hex));
        }
    }
    Ok(CrlInfo {
        number: number.unwrap_or(0),
        this_update,
        next_update,
        revoked_count: serials.len(),
        serials,
    })
}

/// Validates `pem` and only then replaces `DIR/crl.pem` with it
/// atomically. On any failure the old file is untouched.
pub fn replace(
    dir: &Path,
    pem: &[u8],
    ca_cert_der: &[u8],
    expect: Expect<'_>,
    now: DateTime<Utc>,
) -> Result<CrlInfo, CrlError> {
    let info = validate(pem, ca_cert_der, expect, now)?;
    files::write_atomic(&dir.join(FILE), pem, files::PUBLIC)
        .map_err(|e| CrlError::Io(e.to_string()))?;
    Ok(info)
}

/// The number of the CRL on disk (0 if there is none or it does not
/// parse), so a new CRL is numbered above it even if the registry lags.
pub fn number_on_disk(dir: &Path) -> u64 {
    std::fs::read(dir.join(FILE))
        .ok()
        .and_then(|bytes| inspect(&bytes).ok())
        .map(|info| info.number)
        .unwrap_or(0)
}
