//! The reference fleet's wire protocol.
//!
//! Three programs speak it: the **fleet authority** (`cordon-fleet-authority`:
//! the certificate authority and the command signer), the **device
//! simulator** (`cordon-device-sim`) and Cordon's device-action plugins, which
//! carry signed commands from the authority to a device over MQTT and read
//! back what the device reports. Keeping the protocol in one crate with no IO
//! means a device and its signer cannot disagree on what bytes are signed.
//!
//! - [`command`]: a device obeys only a [`command::SignedCommand`]: Ed25519
//!   over a domain-separated RFC 8785 serialisation of the command, its
//!   device id, nonce and validity window.
//! - [`firmware`]: firmware images are manifests signed by a release key,
//!   with a security version for anti-rollback.
//! - [`report`]: what a device publishes: replies to commands and heartbeats.
//! - [`topics`]: the MQTT topic layout the broker's ACLs are written for.
//! - [`keys`]: key files (`ed25519:<hex>`, `ed25519-secret:<hex>`).

pub mod command;
pub mod firmware;
pub mod keys;
pub mod report;
pub mod topics;

/// A device id: 1 to 63 characters from `a-z`, `0-9` and `-`, starting with
/// a letter or digit. The same rule keeps ids usable as certificate common
/// names and as literal MQTT topic levels (no `+`, `#` or `/`).
pub fn valid_device_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_topic_and_cn_safe() {
        for ok in ["dev-1", "plc7", "0gw"] {
            assert!(valid_device_id(ok), "{ok}");
        }
        for bad in ["", "-x", "Dev", "a/b", "a+b", "a#", "a b", &"x".repeat(64)] {
            assert!(!valid_device_id(bad), "{bad}");
        }
    }
}
