//! Each device's state file, `DIR/<id>.json`: what tests and operators read
//! to see a device from the outside without an MQTT client of their own.
//!
//! The file is rewritten after every change (connect, disconnect,
//! subscription result, command, refusal) by writing a temporary file next
//! to it and renaming it over the old one, so a reader never sees half a
//! file. Writes are small and synchronous: a few hundred bytes per event.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use cordon_fleet::command::Refusal;
use cordon_fleet::report::DeviceState;
use serde::Serialize;

use crate::device::Handled;

/// How many commands and refusals a state file keeps (the latest).
pub const KEEP: usize = 50;

/// One refusal in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefusalRecord {
    /// The stable refusal code (`replayed`, `bad_signature`, …).
    pub code: Refusal,
    /// The refused command's id, when its payload could be read.
    pub command_id: Option<String>,
}

/// The content of a state file.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The device id.
    pub device: String,
    /// A session with the broker is open (CONNACK received, not yet lost).
    pub connected: bool,
    /// The last SUBACK for the command topic granted it. False while
    /// disconnected and when the broker refused it (a quarantined device).
    pub subscribed: bool,
    /// Sessions opened (CONNACK success) since start.
    pub connects: u64,
    /// Connection attempts that failed before a session was open: TLS
    /// refused (a revoked certificate), broker down, CONNACK refused.
    pub refused_connects: u64,
    /// The last connection or subscription problem, cleared by a
    /// successful subscription.
    pub last_error: Option<String>,
    /// The device's state, as in its heartbeats.
    pub state: DeviceState,
    /// Commands that passed the gate, oldest first (at most [`KEEP`]).
    pub commands: VecDeque<Handled>,
    /// Every refused command, gate refusals and `rejected` installs alike,
    /// oldest first (at most [`KEEP`]).
    pub refusals: VecDeque<RefusalRecord>,
}

impl Status {
    /// The status of a device that has not connected yet.
    pub fn new(device: &str, state: DeviceState) -> Status {
        Status {
            device: device.to_string(),
            connected: false,
            subscribed: false,
            connects: 0,
            refused_connects: 0,
            last_error: None,
            state,
            commands: VecDeque::new(),
            refusals: VecDeque::new(),
        }
    }

    /// Records an admitted command.
    pub fn command(&mut self, handled: Handled) {
        push_bounded(&mut self.commands, handled);
    }

    /// Records a refusal.
    pub fn refusal(&mut self, code: Refusal, command_id: Option<String>) {
        push_bounded(&mut self.refusals, RefusalRecord { code, command_id });
    }
}

fn push_bounded<T>(list: &mut VecDeque<T>, item: T) {
    while list.len() >= KEEP {
        list.pop_front();
    }
    list.push_back(item);
}

/// Where state files go; `None` writes nothing.
#[derive(Debug, Clone)]
pub struct StateDir(Option<PathBuf>);

impl StateDir {
    /// State files in `dir` (created if missing), or none.
    pub fn new(dir: Option<PathBuf>) -> std::io::Result<StateDir> {
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
        }
        Ok(StateDir(dir))
    }

    /// Writes `status` to `<dir>/<device>.json` atomically. A failure is
    /// logged, not fatal: the simulated device keeps working without it.
    pub fn write(&self, status: &Status) {
        let Some(dir) = &self.0 else { return };
        if let Err(e) = write_atomically(dir, &status.device, status) {
            tracing::warn!(device = %status.device, error = %e, "cannot write the state file");
        }
    }
}

fn write_atomically(dir: &Path, device: &str, status: &Status) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(status).map_err(std::io::Error::other)?;
    let path = dir.join(format!("{device}.json"));
    let temp = dir.join(format!(".{device}.json.tmp"));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, &path)
}

#[cfg(test)]
mod tests {
    use cordon_fleet::command::Order;
    use cordon_fleet::report::{ConfigState, FirmwareState, Outcome};

    use super::*;

    fn state() -> DeviceState {
        DeviceState {
            firmware: FirmwareState {
                current: "2.0.0".into(),
                security_version: 2,
                floor: 2,
                available: vec!["2.0.0".into()],
            },
            config: ConfigState {
                version: "cfg-2".into(),
                backup: "cfg-2".into(),
            },
            healthy: true,
        }
    }

    #[test]
    fn writes_the_documented_shape_and_keeps_the_latest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = StateDir::new(Some(dir.path().join("state"))).expect("dir");
        let mut status = Status::new("dev-1", state());
        for i in 0..(KEEP + 5) {
            status.command(Handled {
                id: format!("c{i}"),
                order: Order::Report,
                outcome: Outcome::Done { detail: "x".into() },
            });
            status.refusal(Refusal::Replayed, Some(format!("c{i}")));
        }
        status.refusal(Refusal::Malformed, None);
        files.write(&status);

        let text =
            std::fs::read_to_string(dir.path().join("state/dev-1.json")).expect("state file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["device"], "dev-1");
        assert_eq!(json["connected"], false);
        assert_eq!(json["subscribed"], false);
        assert_eq!(json["connects"], 0);
        assert_eq!(json["refused_connects"], 0);
        assert!(json["last_error"].is_null());
        assert_eq!(json["state"]["firmware"]["current"], "2.0.0");
        let commands = json["commands"].as_array().expect("commands");
        assert_eq!(commands.len(), KEEP);
        assert_eq!(commands[0]["id"], "c5");
        assert_eq!(commands[0]["order"]["kind"], "report");
        assert_eq!(commands[0]["outcome"]["status"], "done");
        let refusals = json["refusals"].as_array().expect("refusals");
        assert_eq!(refusals.len(), KEEP);
        assert_eq!(refusals[KEEP - 1]["code"], "malformed");
        assert!(refusals[KEEP - 1]["command_id"].is_null());
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("state"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["dev-1.json"]);
    }
}
