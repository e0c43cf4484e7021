//! `check-health`: reads a device's current health from its telemetry.
//!
//! Waits for the device's next heartbeat (at most `window`, or the
//! attempt's remaining time if shorter) and reports what it says. No
//! heartbeat in the window is a failure, not "unhealthy": a step that cannot
//! observe the device must not claim anything about it.

#![forbid(unsafe_code)]

use std::time::Instant;

use cordon_fleet_kit::{device, duration, known_device};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_window() -> String {
    "1m".into()
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device.
    #[schemars(length(min = 1))]
    pub device: String,
    /// How long to wait for telemetry (default `1m`).
    #[serde(default = "default_window")]
    #[schemars(regex(pattern = r"^[0-9]{1,9}(ms|s|m|h|d)$"))]
    pub window: String,
    /// Fail unless the device reports this firmware version.
    #[serde(default)]
    pub expect_firmware: Option<String>,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device.
    pub device: String,
    /// The device's own health check passes.
    pub healthy: bool,
    /// The firmware it runs.
    pub firmware: String,
    /// Its running configuration.
    pub config: String,
    /// Seconds since the heartbeat was sent.
    pub last_seen_seconds: u64,
    /// Only planned (dry run): nothing was read.
    pub dry_run: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct CheckHealth;

impl Plugin for CheckHealth {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "check-health";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Reads the device's health, firmware and configuration from its next heartbeat; fails if none arrives within the window or the firmware is not the expected one.";
    const CAPABILITIES: &'static [Capability] =
        &[Capability::Mqtt("fleet-broker"), Capability::InventoryRead];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = false;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let device = input.device.as_str();
        known_device(device)?;
        let window = duration::parse("window", &input.window)?;
        if call.dry_run {
            return Ok(Output {
                device: device.to_string(),
                healthy: false,
                firmware: String::new(),
                config: String::new(),
                last_seen_seconds: 0,
                dry_run: true,
            });
        }
        let started = Instant::now();
        let Some(beat) = device::heartbeat_until(device, window, |_| true)? else {
            return Err(Error::retryable(format!(
                "no telemetry from {device} within {}",
                input.window
            )));
        };
        let firmware = beat.state.firmware.current.clone();
        if let Some(expected) = &input.expect_firmware
            && &firmware != expected
        {
            return Err(Error::permanent(format!(
                "{device} runs firmware {firmware}, not {expected}"
            )));
        }
        Ok(Output {
            device: device.to_string(),
            healthy: beat.state.healthy,
            firmware,
            config: beat.state.config.version,
            last_seen_seconds: started.elapsed().as_secs(),
            dry_run: false,
        })
    }
}

export_plugin!(CheckHealth);
