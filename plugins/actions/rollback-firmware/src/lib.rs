//! `rollback-firmware`: orders a device to install an earlier signed image
//! and waits for its report.
//!
//! The order travels as a command signed by the fleet CA; the device checks
//! the signature, that it holds the image, that the image's manifest is
//! signed by the release key, and that the image is not below its
//! anti-rollback floor. Going below the floor needs `allow_below_floor`,
//! which this plugin accepts only together with the people who approved it
//! (`override_approved_by`, typically an approval gate's `approvers`
//! output); the device enforces the floor whatever the plugin does.
//!
//! The version the device ran before is read first (a signed `report`
//! command) and kept in the run's scratch store, so a re-run reports the
//! same `from_version` and compensation rolls forward to it. Success is the
//! device's own report that it runs the image.

#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use cordon_fleet_kit::device::{self, Order};
use cordon_fleet_kit::{duration, known_device};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, log, scratch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How long one send waits for the device before asking again.
const WAIT: Duration = Duration::from_secs(5);

fn default_timeout() -> String {
    "2m".into()
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device.
    #[schemars(length(min = 1))]
    pub device: String,
    /// The version of the signed image to install, such as `1.1.0`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Install even below the device's security floor. Needs
    /// `override_approved_by`.
    #[serde(default)]
    pub allow_below_floor: bool,
    /// Who approved going below the floor (an approval gate's approvers).
    #[serde(default)]
    pub override_approved_by: Vec<String>,
    /// How long the device may take to report (default `2m`).
    #[serde(default = "default_timeout")]
    #[schemars(regex(pattern = r"^[0-9]{1,9}(ms|s|m|h|d)$"))]
    pub report_timeout: String,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device.
    pub device: String,
    /// The version it ran before (empty in a dry run).
    pub from_version: String,
    /// The version it runs now, by its own report.
    pub to_version: String,
    /// The running image's security version.
    pub security_version: Option<u32>,
    /// The device's anti-rollback floor.
    pub security_floor: Option<u32>,
    /// Only planned (dry run): nothing was sent.
    pub dry_run: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct RollbackFirmware;

fn from_key(device: &str) -> String {
    format!("from-version/{device}")
}

impl Plugin for RollbackFirmware {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "rollback-firmware";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Orders the device, with a command signed by the fleet CA, to install an earlier signed firmware image and waits for its report. Refuses to go below the security floor unless an approval overrides it. Compensation rolls forward.";
    const CAPABILITIES: &'static [Capability] = &[
        Capability::Mqtt("fleet-broker"),
        Capability::Http("fleet-ca"),
        Capability::InventoryRead,
        Capability::StateRun,
    ];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = true;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let device = input.device.as_str();
        known_device(device)?;
        if input.allow_below_floor && input.override_approved_by.is_empty() {
            return Err(Error::permanent(
                "allow_below_floor needs override_approved_by: the approval that allows going below the security floor",
            ));
        }
        let order = Order::InstallFirmware {
            version: input.image.clone(),
            allow_below_floor: input.allow_below_floor,
        };
        if call.dry_run {
            device::declare(device, &order)?;
            return Ok(Output {
                device: device.to_string(),
                from_version: String::new(),
                to_version: input.image,
                security_version: None,
                security_floor: None,
                dry_run: true,
            });
        }
        let deadline = Instant::now() + duration::parse("report_timeout", &input.report_timeout)?;
        let key = &call.idempotency_key;
        let from = match scratch::get_json::<String>(&from_key(device))? {
            Some(from) => from,
            None => {
                let report = device::send(key, device, &Order::Report, WAIT, deadline)?;
                let report = device::done(device, &Order::Report, report)?;
                let from = report.state.firmware.current;
                scratch::set_json(&from_key(device), &from)?;
                from
            }
        };
        let reply = device::send(key, device, &order, WAIT, deadline)?;
        let reply = device::done(device, &order, reply)?;
        let firmware = &reply.state.firmware;
        if firmware.current != input.image {
            return Err(Error::permanent(format!(
                "{device} reports {} after installing {}",
                firmware.current, input.image
            )));
        }
        log::info(
            "firmware rolled back",
            &[
                ("device", device),
                ("from", &from),
                ("to", &firmware.current),
            ],
        );
        Ok(Output {
            device: device.to_string(),
            from_version: from,
            to_version: firmware.current.clone(),
            security_version: Some(firmware.security_version),
            security_floor: Some(firmware.floor),
            dry_run: false,
        })
    }

    fn compensate(call: &Call, input: Input, output: Output) -> Result<(), Error> {
        let device = input.device.as_str();
        let order = Order::InstallFirmware {
            version: output.from_version.clone(),
            allow_below_floor: false,
        };
        if call.dry_run || output.dry_run || output.from_version.is_empty() {
            return device::declare(device, &order);
        }
        let deadline = Instant::now() + duration::parse("report_timeout", &input.report_timeout)?;
        let reply = device::send(&call.idempotency_key, device, &order, WAIT, deadline)?;
        let reply = device::done(device, &order, reply)?;
        if reply.state.firmware.current != output.from_version {
            return Err(Error::permanent(format!(
                "{device} reports {} after rolling forward to {}",
                reply.state.firmware.current, output.from_version
            )));
        }
        log::info(
            "firmware rolled forward",
            &[("device", device), ("to", &output.from_version)],
        );
        Ok(())
    }
}

export_plugin!(RollbackFirmware);
