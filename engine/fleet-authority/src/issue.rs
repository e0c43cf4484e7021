//! The CA key and certificate issuance (rcgen, ECDSA P-256).
//!
//! Certificates follow the profile `pki.sh` uses with OpenSSL, which the
//! Mosquitto recipes were checked with: a CA with `keyCertSign, cRLSign`, a
//! server certificate for `localhost`/`127.0.0.1` with `serverAuth`, client
//! certificates with `clientAuth`, all with key identifiers (OpenSSL matches
//! a CRL to its CA by the authority key identifier).

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

/// The CA's common name.
pub const CA_CN: &str = "Cordon Fleet CA";

/// How long the CA is valid.
pub const CA_DAYS: i64 = 3650;
/// How long server and device certificates are valid.
pub const LEAF_DAYS: i64 = 825;
/// Back-dating of `notBefore`, so a peer whose clock is a little behind
/// still accepts a certificate issued just now.
const BACKDATE_MINUTES: i64 = 60;

/// Why a certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// rcgen refused.
    #[error("certificate generation failed: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// A file could not be read.
    #[error("{0}")]
    Io(String),
    /// A date is out of range.
    #[error("date out of range")]
    Date,
}

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The broker: `serverAuth`, SAN `DNS:localhost, IP:127.0.0.1`.
    Server,
    /// A client (device, sentinel, probe): `clientAuth`.
    Client,
}

/// A freshly issued certificate with its private key.
#[derive(Debug)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its PKCS#8 private key, PEM.
    pub key_pem: String,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

/// The certificate authority: its key, its certificate.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

/// Converts to rcgen's time type (whole seconds).
pub fn to_time(at: DateTime<Utc>) -> Result<time::OffsetDateTime, IssueError> {
    time::OffsetDateTime::from_unix_timestamp(at.timestamp()).map_err(|_| IssueError::Date)
}

fn name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn window(now: DateTime<Utc>, days: i64) -> (DateTime<Utc>, DateTime<Utc>) {
    // Certificates carry whole seconds; the registry records the same.
    let now = DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
    (
        now - Duration::minutes(BACKDATE_MINUTES),
        now + Duration::days(days),
    )
}

impl Ca {
    /// Creates a new self-signed CA. Returns it and its key (PEM).
    pub fn create(serial: u64, now: DateTime<Utc>) -> Result<(Ca, Issued), IssueError> {
        let key = KeyPair::generate()?;
        let (not_before, not_after) = window(now, CA_DAYS);
        let mut params = CertificateParams::default();
        params.distinguished_name = name(CA_CN);
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_before = to_time(not_before)?;
        params.not_after = to_time(not_after)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_before,
            not_after,
        };
        let ca = Ca {
            issuer: Issuer::new(params, key),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
        };
        Ok((ca, issued))
    }

    /// Loads `ca.crt` and `ca.key` from the state directory.
    pub fn load(dir: &Path) -> Result<Ca, IssueError> {
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .map_err(|e| IssueError::Io(format!("cannot read {file}: {e}")))
        };
        let cert_pem = read("ca.crt")?;
        let key = KeyPair::from_pem(&read("ca.key")?)?;
        let cert_der = pem_der(&cert_pem).ok_or(IssueError::Io("ca.crt is not PEM".into()))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Ca {
            issuer,
            cert_pem,
            cert_der,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The rcgen issuer (for signing CRLs).
    pub fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Issues a leaf certificate for `cn` with a new key. The caller has
    /// checked the name (see [`crate::names`]).
    pub fn issue(
        &self,
        cn: &str,
        serial: u64,
        profile: Profile,
        now: DateTime<Utc>,
        days: i64,
    ) -> Result<Issued, IssueError> {
        let key = KeyPair::generate()?;
        let (not_before, not_after) = window(now, days);
        let mut params = CertificateParams::default();
        params.distinguished_name = name(cn);
        params.serial_number = Some(SerialNumber::from(serial));
        params.not_before = to_time(not_before)?;
        params.not_after = to_time(not_after)?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        match profile {
            Profile::Server => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                params.subject_alt_names = vec![
                    SanType::DnsName("localhost".try_into()?),
                    SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
                ];
            }
            Profile::Client => {
                params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            }
        }
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_before,
            not_after,
        })
    }
}

/// The DER bytes of the first PEM block in `text`.
pub fn pem_der(text: &str) -> Option<Vec<u8>> {
    x509_parser::pem::parse_x509_pem(text.as_bytes())
        .ok()
        .map(|(_, pem)| pem.contents)
}
