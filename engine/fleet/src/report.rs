//! What devices publish: a [`Reply`] to every command (obeyed, refused or
//! failed) and periodic [`Heartbeat`]s carrying the same [`DeviceState`].

use serde::{Deserialize, Serialize};

use crate::command::Refusal;

/// The firmware side of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareState {
    /// The running image's version.
    pub current: String,
    /// Its security version.
    pub security_version: u32,
    /// The anti-rollback floor: images below it are refused without the
    /// override.
    pub floor: u32,
    /// Every image version held in the device's slots, oldest first.
    pub available: Vec<String>,
}

/// The configuration side of a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigState {
    /// The running configuration's version.
    pub version: String,
    /// The known-good backup's version.
    pub backup: String,
}

/// A device's state as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    /// Firmware slots and floor.
    pub firmware: FirmwareState,
    /// Running and backup configuration.
    pub config: ConfigState,
    /// The device's own health check passes.
    pub healthy: bool,
}

/// The result of one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Done; `detail` says what changed.
    Done {
        /// What changed, for people.
        detail: String,
    },
    /// Not done, on purpose: see the code.
    Refused {
        /// Why.
        code: Refusal,
        /// Details, for people.
        reason: String,
    },
    /// Tried and failed; the device is in `state`.
    Failed {
        /// What went wrong, for people.
        reason: String,
    },
}

/// A device's answer to a command, published on `fleet/<d>/telemetry/reply`
/// with the MQTT 5 correlation data of the command's publish copied back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The device that answers.
    pub device: String,
    /// The command's `id`, when the payload could be read.
    pub command_id: Option<String>,
    /// The command's nonce, when the payload could be read.
    pub nonce: Option<String>,
    /// What happened.
    pub outcome: Outcome,
    /// The device's state afterwards.
    pub state: DeviceState,
}

/// A periodic sign of life, on `fleet/<d>/telemetry/heartbeat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The device.
    pub device: String,
    /// Counts up from 1 each time the device starts.
    pub seq: u64,
    /// When it was sent (Unix seconds).
    pub at: i64,
    /// The state.
    pub state: DeviceState,
}
