//! `wait-for`: waits until a device's heartbeat meets a condition.
//!
//! The condition is a map from a dotted path into the heartbeat's `state`
//! (`healthy`, `firmware.current`, `firmware.security_version`,
//! `config.version`, …) to the JSON value it must equal; all must hold in
//! one heartbeat. Reading telemetry changes nothing, but a dry run does not
//! wait: it plans.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::Instant;

use cordon_fleet_kit::{device, duration, known_device};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, log};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn default_timeout() -> String {
    "1m".into()
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device.
    #[schemars(length(min = 1))]
    pub device: String,
    /// Dotted paths into the reported state and the values they must equal,
    /// such as `{healthy: true, firmware.current: "2.0.0"}`.
    #[schemars(length(min = 1))]
    pub condition: BTreeMap<String, Value>,
    /// How long to wait (default `1m`).
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^[0-9]{1,9}(ms|s|m|h|d)$"))]
    pub timeout: String,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device.
    pub device: String,
    /// A heartbeat met the condition (false only in a dry run).
    pub matched: bool,
    /// Milliseconds waited.
    pub waited_ms: u64,
    /// The state of the heartbeat that met it.
    pub state: Option<Value>,
    /// Only planned (dry run).
    pub dry_run: bool,
}

/// The value at a dotted `path` in `state`.
fn at<'a>(state: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(state, |value, key| value.get(key))
}

/// The plugin.
#[derive(Debug)]
pub struct WaitFor;

impl Plugin for WaitFor {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "wait-for";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Waits until the device's telemetry meets a condition (paths into its reported state and the values they must equal); fails at the timeout.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Mqtt("fleet-broker"), Capability::InventoryRead];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = false;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let device = input.device.as_str();
        known_device(device)?;
        let timeout = duration::parse("timeout", &input.timeout)?;
        if call.dry_run {
            return Ok(Output {
                device: device.to_string(),
                matched: false,
                waited_ms: 0,
                state: None,
                dry_run: true,
            });
        }
        let started = Instant::now();
        let beat = device::heartbeat_until(device, timeout, |beat| {
            let state = serde_json::to_value(&beat.state).unwrap_or(Value::Null);
            input
                .condition
                .iter()
                .all(|(path, expected)| at(&state, path) == Some(expected))
        })?;
        let Some(beat) = beat else {
            return Err(Error::permanent(format!(
                "{device} did not meet {} within {}",
                serde_json::to_string(&input.condition).unwrap_or_default(),
                input.timeout
            )));
        };
        let waited = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        log::info("condition met", &[("device", device)]);
        Ok(Output {
            device: device.to_string(),
            matched: true,
            waited_ms: waited,
            state: serde_json::to_value(&beat.state).ok(),
            dry_run: false,
        })
    }
}

export_plugin!(WaitFor);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_reach_nested_values() {
        let state = serde_json::json!({"healthy": true, "firmware": {"current": "2.0.0"}});
        assert_eq!(at(&state, "healthy"), Some(&Value::Bool(true)));
        assert_eq!(at(&state, "firmware.current"), Some(&Value::from("2.0.0")));
        assert_eq!(at(&state, "firmware.missing"), None);
    }
}
