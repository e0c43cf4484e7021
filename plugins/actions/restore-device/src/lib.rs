//! `restore-device`: brings an isolated device back into service.
//!
//! 1. on the broker: gives the device its own role back, enables the client
//!    and removes the quarantine role, then reads the client back;
//! 2. orders the device (a command signed by the fleet CA) to replace its
//!    running configuration with the known-good backup; the role change
//!    kicked its session, so the command is sent again until the device has
//!    reconnected and answers;
//! 3. waits for a heartbeat that says the device is healthy and runs the
//!    backup configuration, within `healthy_within`.
//!
//! Every step is idempotent, so a re-run after a crash converges.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use cordon_fleet_kit::device::{self, Order};
use cordon_fleet_kit::dynsec::Dynsec;
use cordon_fleet_kit::{BROKER, QUARANTINE_ROLE, device_role, duration, known_device};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, intent, log};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How long one send waits before signing and sending again: the role change
/// kicked the device, which is back within a few hundred milliseconds.
const WAIT: Duration = Duration::from_secs(1);

fn default_backup() -> String {
    "latest".into()
}

fn yes() -> bool {
    true
}

fn default_within() -> String {
    "2m".into()
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device.
    #[schemars(length(min = 1))]
    pub device: String,
    /// Which configuration backup to restore: `latest`, the device's
    /// known-good backup, is the one the reference devices keep.
    #[serde(default = "default_backup")]
    pub backup: String,
    /// Lift quarantine and re-enable the client (default true).
    #[serde(default = "yes")]
    pub unquarantine: bool,
    /// How long healthy telemetry may take to arrive (default `2m`).
    #[serde(default = "default_within")]
    #[schemars(regex(pattern = r"^[0-9]{1,9}(ms|s|m|h|d)$"))]
    pub healthy_within: String,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device.
    pub device: String,
    /// The configuration version now running (the backup's).
    pub restored_backup: String,
    /// The device's roles on the broker afterwards.
    pub roles: Vec<String>,
    /// A heartbeat reported the device healthy on the restored configuration.
    pub healthy: bool,
    /// Milliseconds from the restore order to the healthy heartbeat.
    pub healthy_after_ms: u64,
    /// Only planned (dry run): nothing was changed.
    pub dry_run: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct RestoreDevice;

impl Plugin for RestoreDevice {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "restore-device";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Lifts the device's quarantine and re-enables its broker client, orders it (signed command) to restore its known-good configuration, and waits for healthy telemetry.";
    const CAPABILITIES: &'static [Capability] = &[
        Capability::Mqtt("fleet-broker"),
        Capability::Http("fleet-ca"),
        Capability::InventoryRead,
    ];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = false;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let device = input.device.as_str();
        known_device(device)?;
        if input.backup != "latest" {
            return Err(Error::permanent(format!(
                "{device} keeps one known-good backup; backup must be `latest`, not `{}`",
                input.backup
            )));
        }
        let role = device_role(device);
        if input.unquarantine {
            intent::declare(
                "broker.release",
                device,
                &json!({"add_role": role, "remove_role": QUARANTINE_ROLE, "enable": true}),
            )?;
        }
        if call.dry_run {
            device::declare(device, &Order::RestoreConfig)?;
            return Ok(Output {
                device: device.to_string(),
                restored_backup: String::new(),
                roles: Vec::new(),
                healthy: false,
                healthy_after_ms: 0,
                dry_run: true,
            });
        }
        let broker = Dynsec::new(BROKER, &call.idempotency_key);
        if input.unquarantine {
            broker.add_role(device, &role, 0)?;
            broker.enable(device)?;
            broker.remove_role(device, QUARANTINE_ROLE)?;
        }
        let client = broker.existing_client(device)?;
        if client.has_role(QUARANTINE_ROLE) || client.disabled || !client.has_role(&role) {
            return Err(Error::retryable(format!(
                "{device} is not released on the broker: roles {:?}, disabled {}",
                client.role_names(),
                client.disabled
            )));
        }
        let within = duration::parse("healthy_within", &input.healthy_within)?;
        let started = Instant::now();
        let deadline = started + within;
        let reply = device::send(
            &call.idempotency_key,
            device,
            &Order::RestoreConfig,
            WAIT,
            deadline,
        )?;
        let reply = device::done(device, &Order::RestoreConfig, reply)?;
        let backup = reply.state.config.backup.clone();
        let healthy = device::heartbeat_until(
            device,
            deadline.saturating_duration_since(Instant::now()),
            |beat| beat.state.healthy && beat.state.config.version == beat.state.config.backup,
        )?;
        let Some(beat) = healthy else {
            return Err(Error::permanent(format!(
                "{device} did not report healthy on configuration {backup} within {}",
                input.healthy_within
            )));
        };
        let after = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        log::info(
            "device restored",
            &[("device", device), ("config", &beat.state.config.version)],
        );
        Ok(Output {
            device: device.to_string(),
            restored_backup: beat.state.config.version,
            roles: client.role_names(),
            healthy: true,
            healthy_after_ms: after,
            dry_run: false,
        })
    }
}

export_plugin!(RestoreDevice);
