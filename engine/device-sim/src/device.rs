//! One simulated device: what it holds and how it obeys. No IO and no clock
//! of its own (the caller passes `now`), so every rule is unit-tested here
//! and the MQTT session loop (`link.rs`) only moves bytes.
//!
//! A device trusts exactly one command key (its [`Gate`]) and one release
//! key (for the firmware images in its slots). It never changes its
//! anti-rollback floor: only the signed command's `allow_below_floor` lets
//! it install an image below it.

use std::time::Duration;

use cordon_fleet::command::{Command, Gate, Order, Refusal};
use cordon_fleet::firmware::{SignedImage, check_install};
use cordon_fleet::keys::VerifyingKey;
use cordon_fleet::report::{ConfigState, DeviceState, FirmwareState, Heartbeat, Outcome, Reply};

/// The running and backup configuration every simulated device starts with.
pub const GOOD_CONFIG: &str = "cfg-2";

/// The running configuration of a device started as `--compromised`.
pub const TAMPERED_CONFIG: &str = "cfg-tampered";

/// What a `--fail-install` device says when told to install.
pub const FLASH_FAILURE: &str = "flash write failed";

/// How a device is provisioned: shared by every device of one simulator run
/// except for the per-device flags.
#[derive(Debug, Clone)]
pub struct Provision {
    /// Commands must be signed by this key.
    pub command_key: VerifyingKey,
    /// Firmware manifests must be signed by this key.
    pub release_key: VerifyingKey,
    /// The images in the device's slots.
    pub images: Vec<SignedImage>,
    /// The version running at start.
    pub current: String,
    /// The anti-rollback floor.
    pub floor: u32,
    /// Every install fails (a broken flash).
    pub fail_install: bool,
    /// Starts with a tampered running configuration and unhealthy.
    pub compromised: bool,
}

/// The provisioning cannot make a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionError(pub String);

impl std::fmt::Display for ProvisionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProvisionError {}

/// What the device decided about a received payload, before acting.
#[derive(Debug)]
pub enum Decision {
    /// The gate refused it: publish this reply, change nothing.
    Refused(Reply),
    /// Signed, fresh, for this device: obey it (see [`Device::obey`]).
    Admitted(Command),
}

/// One command's record, as the state file lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Handled {
    /// The command's id.
    pub id: String,
    /// What it ordered.
    pub order: Order,
    /// What came of it.
    pub outcome: Outcome,
}

/// A simulated device.
#[derive(Debug)]
pub struct Device {
    id: String,
    gate: Gate,
    release_key: VerifyingKey,
    slots: Vec<SignedImage>,
    fail_install: bool,
    state: DeviceState,
    heartbeats: u64,
}

impl Device {
    /// A device named `id` as `provision` says. Fails when the running
    /// version is not among the images (the device could not be running it).
    pub fn new(id: &str, provision: &Provision) -> Result<Device, ProvisionError> {
        let mut slots = provision.images.clone();
        // Oldest first, as `FirmwareState::available` documents: by security
        // version, then by semantic version when the versions parse.
        slots.sort_by(|a, b| {
            let (a, b) = (&a.manifest, &b.manifest);
            a.security_version.cmp(&b.security_version).then_with(|| {
                match (
                    semver::Version::parse(&a.version),
                    semver::Version::parse(&b.version),
                ) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => a.version.cmp(&b.version),
                }
            })
        });
        let running = slots
            .iter()
            .find(|i| i.manifest.version == provision.current)
            .ok_or_else(|| {
                ProvisionError(format!(
                    "the current version {} is not among the images",
                    provision.current
                ))
            })?;
        let state = DeviceState {
            firmware: FirmwareState {
                current: running.manifest.version.clone(),
                security_version: running.manifest.security_version,
                floor: provision.floor,
                available: slots.iter().map(|i| i.manifest.version.clone()).collect(),
            },
            config: ConfigState {
                version: if provision.compromised {
                    TAMPERED_CONFIG
                } else {
                    GOOD_CONFIG
                }
                .to_string(),
                backup: GOOD_CONFIG.to_string(),
            },
            healthy: !provision.compromised,
        };
        Ok(Device {
            id: id.to_string(),
            gate: Gate::new(id, provision.command_key),
            release_key: provision.release_key,
            slots,
            fail_install: provision.fail_install,
            state,
            heartbeats: 0,
        })
    }

    /// The device id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The state as the device reports it.
    pub fn state(&self) -> &DeviceState {
        &self.state
    }

    /// The next heartbeat (its `seq` counts from 1 for this process).
    pub fn heartbeat(&mut self, now: i64) -> Heartbeat {
        self.heartbeats += 1;
        Heartbeat {
            device: self.id.clone(),
            seq: self.heartbeats,
            at: now,
            state: self.state.clone(),
        }
    }

    /// Runs a received payload through the gate. Anything the gate refuses
    /// (including bytes that are not a command at all) becomes a refusal
    /// reply naming the command when it could be read.
    pub fn decide(&mut self, payload: &[u8], now: i64) -> Decision {
        match self.gate.admit(payload, now) {
            Ok(command) => Decision::Admitted(command),
            Err((code, command)) => {
                let reason = match (&code, &command) {
                    (Refusal::Malformed, _) => "not a signed command".to_string(),
                    (Refusal::WrongDevice, Some(c)) => {
                        format!("signed for {}, not {}", c.device, self.id)
                    }
                    (Refusal::Expired, Some(c)) => {
                        format!("expired at {}, now {now}", c.expires_at)
                    }
                    (Refusal::Replayed, Some(c)) => format!("nonce {} already used", c.nonce),
                    (Refusal::UnknownKey, _) => "signed by a key this device does not trust".into(),
                    (Refusal::BadSignature, _) => "the signature does not verify".into(),
                    (Refusal::BadValidity, _) => "validity window not acceptable".into(),
                    _ => code.code().to_string(),
                };
                Decision::Refused(self.reply(command.as_deref(), Outcome::Refused { code, reason }))
            }
        }
    }

    /// How long the simulated install of an admitted command takes: 50 to
    /// 200 ms, derived from its nonce so a run is reproducible; zero for
    /// anything that does not flash.
    pub fn work_time(&self, command: &Command) -> Duration {
        match &command.order {
            Order::InstallFirmware { .. } if !self.fail_install => {
                let spread = command.nonce.bytes().fold(0u64, |acc, b| {
                    acc.wrapping_mul(31).wrapping_add(u64::from(b))
                });
                Duration::from_millis(50 + spread % 151)
            }
            _ => Duration::ZERO,
        }
    }

    /// Carries out an admitted command and says how it went.
    pub fn obey(&mut self, command: &Command) -> Reply {
        let outcome = match &command.order {
            Order::InstallFirmware {
                version,
                allow_below_floor,
            } => self.install(version, *allow_below_floor),
            Order::RestoreConfig => {
                let was = std::mem::replace(
                    &mut self.state.config.version,
                    self.state.config.backup.clone(),
                );
                self.state.healthy = true;
                Outcome::Done {
                    detail: format!(
                        "running configuration {} restored from backup (was {was})",
                        self.state.config.version
                    ),
                }
            }
            Order::Report => Outcome::Done {
                detail: "state reported, nothing changed".into(),
            },
        };
        self.reply(Some(command), outcome)
    }

    fn install(&mut self, version: &str, allow_below_floor: bool) -> Outcome {
        let image = match check_install(
            &self.slots,
            version,
            &self.release_key,
            self.state.firmware.floor,
            allow_below_floor,
        ) {
            Ok(image) => image,
            Err(refusal) => {
                return Outcome::Refused {
                    code: Refusal::Rejected,
                    reason: refusal.to_string(),
                };
            }
        };
        if self.fail_install {
            return Outcome::Failed {
                reason: FLASH_FAILURE.into(),
            };
        }
        let was = std::mem::replace(
            &mut self.state.firmware.current,
            image.manifest.version.clone(),
        );
        self.state.firmware.security_version = image.manifest.security_version;
        Outcome::Done {
            detail: format!(
                "installed {} (security version {}), was {was}",
                image.manifest.version, image.manifest.security_version
            ),
        }
    }

    fn reply(&self, command: Option<&Command>, outcome: Outcome) -> Reply {
        Reply {
            device: self.id.clone(),
            command_id: command.map(|c| c.id.clone()),
            nonce: command.map(|c| c.nonce.clone()),
            outcome,
            state: self.state.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use cordon_fleet::command::SignedCommand;
    use cordon_fleet::firmware::Manifest;
    use cordon_fleet::keys::{self, SigningKey};

    use super::*;

    const NOW: i64 = 1_700_000_000;

    struct Fixture {
        command: SigningKey,
        provision: Provision,
    }

    fn fixture() -> Fixture {
        let command = keys::generate().expect("key");
        let release = keys::generate().expect("key");
        let image = |version: &str, sv: u32| {
            SignedImage::sign(
                Manifest {
                    version: version.into(),
                    security_version: sv,
                    sha256: "ab".repeat(32),
                },
                &release,
            )
        };
        Fixture {
            provision: Provision {
                command_key: command.verifying_key(),
                release_key: release.verifying_key(),
                // Deliberately out of order: the device sorts its slots.
                images: vec![
                    image("2.1.0", 3),
                    image("1.0.0", 1),
                    image("2.0.0", 2),
                    image("1.1.0", 2),
                ],
                current: "2.0.0".into(),
                floor: 2,
                fail_install: false,
                compromised: false,
            },
            command,
        }
    }

    fn payload(key: &SigningKey, device: &str, order: Order) -> Vec<u8> {
        let command = Command::new("run-1/step/1", device, order, NOW, 60).expect("command");
        serde_json::to_vec(&SignedCommand::sign(command, key)).expect("json")
    }

    fn run(device: &mut Device, payload: &[u8]) -> Reply {
        match device.decide(payload, NOW + 1) {
            Decision::Admitted(command) => device.obey(&command),
            Decision::Refused(reply) => reply,
        }
    }

    fn install(version: &str, allow_below_floor: bool) -> Order {
        Order::InstallFirmware {
            version: version.into(),
            allow_below_floor,
        }
    }

    fn refusal(reply: &Reply) -> Refusal {
        match &reply.outcome {
            Outcome::Refused { code, .. } => *code,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn starts_as_provisioned() {
        let f = fixture();
        let device = Device::new("dev-1", &f.provision).expect("device");
        let state = device.state();
        assert_eq!(state.firmware.current, "2.0.0");
        assert_eq!(state.firmware.security_version, 2);
        assert_eq!(state.firmware.floor, 2);
        assert_eq!(
            state.firmware.available,
            ["1.0.0", "1.1.0", "2.0.0", "2.1.0"]
        );
        assert_eq!(state.config.version, GOOD_CONFIG);
        assert_eq!(state.config.backup, GOOD_CONFIG);
        assert!(state.healthy);

        let mut missing = f.provision.clone();
        missing.current = "9.9.9".into();
        assert!(Device::new("dev-1", &missing).is_err());
    }

    #[test]
    fn installs_an_image_at_or_above_the_floor() {
        let f = fixture();
        let mut device = Device::new("dev-1", &f.provision).expect("device");
        let bytes = payload(&f.command, "dev-1", install("2.1.0", false));
        let Decision::Admitted(command) = device.decide(&bytes, NOW) else {
            panic!("refused");
        };
        let work = device.work_time(&command);
        assert!((50..=200).contains(&work.as_millis()), "{work:?}");
        let reply = device.obey(&command);
        assert!(matches!(reply.outcome, Outcome::Done { .. }), "{reply:?}");
        assert_eq!(reply.command_id.as_deref(), Some("run-1/step/1"));
        assert_eq!(reply.nonce.as_deref(), Some(command.nonce.as_str()));
        assert_eq!(reply.state.firmware.current, "2.1.0");
        assert_eq!(reply.state.firmware.security_version, 3);
        // The floor is the device's own; installing never raises it.
        assert_eq!(reply.state.firmware.floor, 2);

        // Rolling back to 1.1.0 (security version 2, at the floor) is fine.
        let reply = run(
            &mut device,
            &payload(&f.command, "dev-1", install("1.1.0", false)),
        );
        assert!(matches!(reply.outcome, Outcome::Done { .. }), "{reply:?}");
        assert_eq!(device.state().firmware.current, "1.1.0");
    }

    #[test]
    fn below_the_floor_only_with_the_signed_override() {
        let f = fixture();
        let mut device = Device::new("dev-1", &f.provision).expect("device");
        let reply = run(
            &mut device,
            &payload(&f.command, "dev-1", install("1.0.0", false)),
        );
        assert_eq!(refusal(&reply), Refusal::Rejected);
        assert_eq!(device.state().firmware.current, "2.0.0");

        let reply = run(
            &mut device,
            &payload(&f.command, "dev-1", install("1.0.0", true)),
        );
        assert!(matches!(reply.outcome, Outcome::Done { .. }), "{reply:?}");
        assert_eq!(device.state().firmware.current, "1.0.0");
        assert_eq!(device.state().firmware.security_version, 1);
        assert_eq!(device.state().firmware.floor, 2);
    }

    #[test]
    fn unknown_and_unsigned_images_are_rejected() {
        let mut f = fixture();
        let rogue = keys::generate().expect("key");
        f.provision.images.push(SignedImage::sign(
            Manifest {
                version: "3.0.0".into(),
                security_version: 9,
                sha256: "cd".repeat(32),
            },
            &rogue,
        ));
        let mut device = Device::new("dev-1", &f.provision).expect("device");
        for version in ["9.9.9", "3.0.0"] {
            let reply = run(
                &mut device,
                &payload(&f.command, "dev-1", install(version, true)),
            );
            assert_eq!(refusal(&reply), Refusal::Rejected, "{version}");
        }
        assert_eq!(device.state().firmware.current, "2.0.0");
    }

    #[test]
    fn a_broken_flash_fails_and_keeps_the_image() {
        let mut f = fixture();
        f.provision.fail_install = true;
        let mut device = Device::new("dev-3", &f.provision).expect("device");
        let reply = run(
            &mut device,
            &payload(&f.command, "dev-3", install("2.1.0", false)),
        );
        assert_eq!(
            reply.outcome,
            Outcome::Failed {
                reason: FLASH_FAILURE.into()
            }
        );
        assert_eq!(device.state().firmware.current, "2.0.0");
        assert_eq!(device.state().firmware.security_version, 2);
        // The floor check still comes first: a refusal is not a failure.
        let reply = run(
            &mut device,
            &payload(&f.command, "dev-3", install("1.0.0", false)),
        );
        assert_eq!(refusal(&reply), Refusal::Rejected);
    }

    #[test]
    fn restore_config_heals_a_compromised_device() {
        let mut f = fixture();
        f.provision.compromised = true;
        let mut device = Device::new("dev-1", &f.provision).expect("device");
        assert_eq!(device.state().config.version, TAMPERED_CONFIG);
        assert!(!device.state().healthy);
        let reply = run(
            &mut device,
            &payload(&f.command, "dev-1", Order::RestoreConfig),
        );
        assert!(matches!(reply.outcome, Outcome::Done { .. }), "{reply:?}");
        assert_eq!(device.state().config.version, GOOD_CONFIG);
        assert_eq!(device.state().config.backup, GOOD_CONFIG);
        assert!(device.state().healthy);
    }

    #[test]
    fn report_changes_nothing() {
        let f = fixture();
        let mut device = Device::new("dev-1", &f.provision).expect("device");
        let before = device.state().clone();
        let reply = run(&mut device, &payload(&f.command, "dev-1", Order::Report));
        assert!(matches!(reply.outcome, Outcome::Done { .. }), "{reply:?}");
        assert_eq!(reply.state, before);
        assert_eq!(device.state(), &before);
    }

    #[test]
    fn every_gate_refusal_is_a_reply() {
        let f = fixture();
        let other = keys::generate().expect("key");
        let mut device = Device::new("dev-1", &f.provision).expect("device");

        let reply = run(&mut device, b"\xff not json");
        assert_eq!(refusal(&reply), Refusal::Malformed);
        assert_eq!(reply.command_id, None);

        let reply = run(&mut device, &payload(&other, "dev-1", Order::Report));
        assert_eq!(refusal(&reply), Refusal::UnknownKey);

        let reply = run(&mut device, &payload(&f.command, "dev-2", Order::Report));
        assert_eq!(refusal(&reply), Refusal::WrongDevice);
        assert_eq!(reply.command_id.as_deref(), Some("run-1/step/1"));

        let mut unsigned: SignedCommand =
            serde_json::from_slice(&payload(&f.command, "dev-1", Order::Report)).expect("json");
        unsigned.signature = String::new();
        let reply = run(&mut device, &serde_json::to_vec(&unsigned).expect("json"));
        assert_eq!(refusal(&reply), Refusal::BadSignature);

        let mut forged: SignedCommand =
            serde_json::from_slice(&payload(&f.command, "dev-1", Order::Report)).expect("json");
        forged.command.order = install("1.0.0", true);
        let reply = run(&mut device, &serde_json::to_vec(&forged).expect("json"));
        assert_eq!(refusal(&reply), Refusal::BadSignature);

        let old = Command::new("old", "dev-1", Order::Report, NOW - 120, 60).expect("command");
        let bytes = serde_json::to_vec(&SignedCommand::sign(old, &f.command)).expect("json");
        let reply = run(&mut device, &bytes);
        assert_eq!(refusal(&reply), Refusal::Expired);

        let bytes = payload(&f.command, "dev-1", install("2.1.0", false));
        assert!(matches!(
            run(&mut device, &bytes).outcome,
            Outcome::Done { .. }
        ));
        let reply = run(&mut device, &bytes);
        assert_eq!(refusal(&reply), Refusal::Replayed);
        // The replay changed nothing and the reply still shows the state.
        assert_eq!(reply.state.firmware.current, "2.1.0");
    }

    #[test]
    fn heartbeats_count_from_one() {
        let f = fixture();
        let mut device = Device::new("dev-1", &f.provision).expect("device");
        assert_eq!(device.heartbeat(NOW).seq, 1);
        let beat = device.heartbeat(NOW + 1);
        assert_eq!(
            (beat.seq, beat.at, beat.device.as_str()),
            (2, NOW + 1, "dev-1")
        );
    }
}
