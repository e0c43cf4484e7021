//! `isolate`: cuts a device off from the fleet on the broker, and puts it
//! back when compensated.
//!
//! - `soft`: adds the quarantine role (priority 100, denies subscribe and
//!   receive on `#`). The broker kicks the live session on the role change;
//!   the device reconnects but can no longer receive commands or read other
//!   devices' topics, and it still publishes telemetry, so forensics keeps
//!   its view.
//! - `hard`: also removes every other role (no telemetry either) and
//!   disables the client. Disabling alone does not keep a certificate client
//!   out (Mosquitto 2.0 lets it reconnect), which is why the roles go too;
//!   keeping it off the broker for good takes `revoke-cert`.
//!
//! The roles the device had are read first and kept in the run's scratch
//! store, so a re-run after a crash reports the same `previous_roles` and
//! compensation restores exactly them. Success is claimed only after reading
//! the client back from the broker.

#![forbid(unsafe_code)]

use cordon_fleet_kit::dynsec::{Client, Dynsec};
use cordon_fleet_kit::{BROKER, QUARANTINE_PRIORITY, QUARANTINE_ROLE, known_device};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, intent, log, scratch};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How hard to isolate.
// Variants documented with plain comments: doc comments would make
// schemars describe the enum as `oneOf` consts, and the validator's message
// for a wrong value would list schemas instead of the allowed values.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    // Quarantine role only: telemetry flows, commands do not.
    #[default]
    Soft,
    // Quarantine, every other role removed, client disabled.
    Hard,
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device (its broker user name).
    #[schemars(length(min = 1))]
    pub device: String,
    /// `soft` (default) or `hard`.
    #[serde(default)]
    pub mode: Mode,
    /// Why the device is isolated (recorded with the intent).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device.
    pub device: String,
    /// The broker shows the quarantine role on the client (false in a dry run).
    pub quarantined: bool,
    /// The mode applied.
    pub mode: Mode,
    /// The client's roles before isolation, with priorities, as compensation restores them.
    pub previous_roles: Vec<RoleGrant>,
    /// Roles removed (hard mode).
    pub roles_removed: Vec<String>,
    /// The client was disabled (hard mode).
    pub client_disabled: bool,
    /// Live sessions the broker dropped: a role change kicks the client's
    /// session, so 1 when the device was connected, else 0; the broker does
    /// not say which, so this counts the kick that was ordered.
    pub sessions_dropped: u32,
    /// Only planned (dry run): nothing was changed.
    pub dry_run: bool,
}

/// A role and its priority.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
pub struct RoleGrant {
    /// The role's name.
    pub role: String,
    /// Its priority on the client.
    pub priority: i64,
}

/// The plugin.
#[derive(Debug)]
pub struct Isolate;

fn previous_roles_key(device: &str) -> String {
    format!("previous-roles/{device}")
}

impl Plugin for Isolate {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "isolate";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Moves a device into the quarantine role on the fleet broker: it may still report telemetry but no longer receive commands or read other devices' topics. `hard` also removes its other roles and disables the client. Verifies by reading the client back; compensation restores the previous roles.";
    const CAPABILITIES: &'static [Capability] = &[
        Capability::Mqtt("fleet-broker"),
        Capability::InventoryRead,
        Capability::StateRun,
    ];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = true;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let device = input.device.as_str();
        known_device(device)?;
        let detail = json!({"mode": input.mode, "role": QUARANTINE_ROLE, "reason": input.reason});
        intent::declare("broker.quarantine", device, &detail)?;
        if input.mode == Mode::Hard {
            intent::declare("broker.remove_roles", device, &json!({}))?;
            intent::declare("broker.disable_client", device, &json!({}))?;
        }
        if call.dry_run {
            return Ok(Output {
                device: device.to_string(),
                quarantined: false,
                mode: input.mode,
                previous_roles: Vec::new(),
                roles_removed: Vec::new(),
                client_disabled: false,
                sessions_dropped: 0,
                dry_run: true,
            });
        }
        let broker = Dynsec::new(BROKER, &call.idempotency_key);
        let before = broker.existing_client(device)?;
        // The first attempt's reading wins: a re-run must not record the
        // quarantine it already applied as a "previous" role.
        let previous: Vec<RoleGrant> = match scratch::get_json(&previous_roles_key(device))? {
            Some(previous) => previous,
            None => {
                let previous: Vec<RoleGrant> = before
                    .roles
                    .iter()
                    .filter(|(role, _)| role != QUARANTINE_ROLE)
                    .map(|(role, priority)| RoleGrant {
                        role: role.clone(),
                        priority: *priority,
                    })
                    .collect();
                scratch::set_json(&previous_roles_key(device), &previous)?;
                previous
            }
        };
        broker.add_role(device, QUARANTINE_ROLE, QUARANTINE_PRIORITY)?;
        let mut removed = Vec::new();
        if input.mode == Mode::Hard {
            for grant in &previous {
                broker.remove_role(device, &grant.role)?;
                removed.push(grant.role.clone());
            }
            broker.disable(device)?;
        }
        let after = broker.existing_client(device)?;
        verify(&after, input.mode)?;
        log::info(
            "device isolated",
            &[("device", device), ("mode", mode_name(input.mode))],
        );
        Ok(Output {
            device: device.to_string(),
            quarantined: true,
            mode: input.mode,
            previous_roles: previous,
            roles_removed: removed,
            client_disabled: after.disabled,
            sessions_dropped: 1,
            dry_run: false,
        })
    }

    fn compensate(call: &Call, input: Input, output: Output) -> Result<(), Error> {
        let device = input.device.as_str();
        intent::declare(
            "broker.release",
            device,
            &json!({"restore_roles": output.previous_roles}),
        )?;
        if call.dry_run || output.dry_run {
            return Ok(());
        }
        let broker = Dynsec::new(BROKER, &call.idempotency_key);
        for grant in &output.previous_roles {
            broker.add_role(device, &grant.role, grant.priority)?;
        }
        if output.client_disabled {
            broker.enable(device)?;
        }
        broker.remove_role(device, QUARANTINE_ROLE)?;
        let after = broker.existing_client(device)?;
        let missing: Vec<&str> = output
            .previous_roles
            .iter()
            .filter(|g| !after.has_role(&g.role))
            .map(|g| g.role.as_str())
            .collect();
        if after.has_role(QUARANTINE_ROLE) || after.disabled || !missing.is_empty() {
            return Err(Error::retryable(format!(
                "{device} is not released yet: roles {:?}, disabled {}",
                after.role_names(),
                after.disabled
            )));
        }
        log::info("device released from quarantine", &[("device", device)]);
        Ok(())
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Soft => "soft",
        Mode::Hard => "hard",
    }
}

/// The post-condition, as read back from the broker.
fn verify(client: &Client, mode: Mode) -> Result<(), Error> {
    let quarantined = client.has_role(QUARANTINE_ROLE);
    let ok = match mode {
        Mode::Soft => quarantined,
        Mode::Hard => quarantined && client.roles.len() == 1 && client.disabled,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::retryable(format!(
            "the broker does not show {} isolated ({}): roles {:?}, disabled {}",
            client.username,
            mode_name(mode),
            client.role_names(),
            client.disabled
        )))
    }
}

export_plugin!(Isolate);
