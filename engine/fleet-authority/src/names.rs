//! Which common names the CA may put in a certificate.
//!
//! Mosquitto's mTLS listener uses the certificate CN as the MQTT username
//! (`use_identity_as_username`), and in Mosquitto 2.0 a CA-signed certificate
//! with `CN=admin` is a full dynamic-security admin. So the CA must never sign
//! a name that means something to the broker or to the authority itself:
//! only valid device ids, and none of the reserved ones.

/// Names the broker or the authority give a meaning to.
const RESERVED_EXACT: &[&str] = &["admin", "server", "localhost", "root", "mosquitto"];

/// Prefixes of names the authority keeps for itself: `sentinel-<n>` (the
/// revoked certificate each CRL carries), `probe-` (the probe's valid
/// certificate) and `cordon…`.
const RESERVED_PREFIXES: &[&str] = &["cordon", "sentinel-", "probe-"];

/// Why a name may not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not a device id (see [`cordon_fleet::valid_device_id`]).
    #[error("`{0}` is not a valid device id (1-63 of a-z, 0-9, '-', not starting with '-')")]
    Invalid(String),
    /// A reserved name.
    #[error("`{0}` is reserved and is never issued to a device")]
    Reserved(String),
}

impl NameError {
    /// The stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            NameError::Invalid(_) => "invalid_name",
            NameError::Reserved(_) => "reserved_name",
        }
    }
}

/// Whether `name` is reserved, built in or listed in `extra`.
pub fn is_reserved(name: &str, extra: &[String]) -> bool {
    RESERVED_EXACT.contains(&name)
        || RESERVED_PREFIXES.iter().any(|p| name.starts_with(p))
        || extra.iter().any(|r| r == name)
}

/// Checks that `name` may be issued to a device.
pub fn check_device_name(name: &str, extra: &[String]) -> Result<(), NameError> {
    if !cordon_fleet::valid_device_id(name) {
        return Err(NameError::Invalid(name.to_string()));
    }
    if is_reserved(name, extra) {
        return Err(NameError::Reserved(name.to_string()));
    }
    Ok(())
}
