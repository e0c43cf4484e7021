//! The MQTT topic layout. The broker's ACLs are literal per device
//! (Mosquitto 2.0's dynamic security denies `%u`/`%c` patterns), so every
//! topic a device uses starts with `fleet/<device>/`:
//!
//! | topic | who publishes | what |
//! |---|---|---|
//! | `fleet/<d>/cmd/<order>` | Cordon (the `fleet-operator` role) | a [`SignedCommand`](crate::command::SignedCommand) |
//! | `fleet/<d>/telemetry/heartbeat` | the device | a [`Heartbeat`](crate::report::Heartbeat), periodically |
//! | `fleet/<d>/telemetry/reply` | the device | a [`Reply`](crate::report::Reply) to each command, refusals included |
//!
//! A device may publish only below `fleet/<d>/telemetry/` and receive only
//! below `fleet/<d>/cmd/`; the quarantine role takes the receiving away.

/// Where commands of kind `order` for `device` are published.
pub fn command(device: &str, order: &str) -> String {
    format!("fleet/{device}/cmd/{order}")
}

/// The filter a device subscribes to for its commands.
pub fn commands_of(device: &str) -> String {
    format!("fleet/{device}/cmd/#")
}

/// Where a device publishes its heartbeats.
pub fn heartbeat(device: &str) -> String {
    format!("fleet/{device}/telemetry/heartbeat")
}

/// Where a device publishes its replies to commands.
pub fn reply(device: &str) -> String {
    format!("fleet/{device}/telemetry/reply")
}

/// Every topic a device may publish on (its role's ACL).
pub fn telemetry_of(device: &str) -> String {
    format!("fleet/{device}/telemetry/#")
}
