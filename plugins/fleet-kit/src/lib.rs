//! What the reference fleet's device-action plugins share.
//!
//! The plugins reach the fleet only through the host's named connections:
//!
//! - `fleet-broker` (MQTT): the broker's dynamic-security API on
//!   `$CONTROL/dynamic-security/v1` ([`dynsec`]), and the devices' command
//!   and telemetry topics ([`device`]);
//! - `fleet-ca` (HTTP): the fleet CA, which revokes certificates and signs
//!   device commands ([`device::send`]); the plugins never hold a key.
//!
//! Mosquitto facts the code relies on (checked in `shared/recipes`): a role
//! change kicks the client's live session; `disableClient` kicks it too but
//! does not keep a certificate client out; a quarantine role that denies
//! subscribe and receive on `#` stops commands but not telemetry.

#![forbid(unsafe_code)]

pub mod device;
pub mod duration;
pub mod dynsec;

use cordon_plugin_sdk::{Error, inventory};
use serde_json::Value;

/// The MQTT connection to the fleet's broker.
pub const BROKER: &str = "fleet-broker";
/// The HTTP connection to the fleet CA.
pub const CA: &str = "fleet-ca";

/// The inventory record of `device`; a device the inventory does not know
/// is a permanent error (acting on an unknown id is never right).
pub fn known_device(device: &str) -> Result<Value, Error> {
    inventory::device(device)?
        .ok_or_else(|| Error::permanent(format!("device {device} is not in the inventory")))
}

/// The broker role that gives `device` its own topics.
pub fn device_role(device: &str) -> String {
    format!("device-{device}")
}

/// The role that cuts a device off from commands and other devices' topics.
pub const QUARANTINE_ROLE: &str = "quarantine";

/// The priority of the quarantine role: above every role that allows.
pub const QUARANTINE_PRIORITY: i64 = 100;
