//! Signed device commands.
//!
//! A device obeys a command only if it is signed by the command key it was
//! provisioned with, names this device, is inside its validity window (at
//! most [`MAX_VALIDITY_SECS`] long) and carries a nonce the device has not
//! seen while that window was open. Everything the device acts on is inside
//! the signature, including the override of the firmware security floor.
//!
//! The signed bytes are `cordon-device-command/v1\n` followed by the RFC 8785
//! (JCS) serialisation of the [`Command`]. The prefix separates these
//! signatures from any other use of an Ed25519 key; JCS makes the bytes the
//! same in every implementation. Timestamps are Unix seconds, so there is no
//! date formatting to disagree on.

use std::collections::HashMap;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::keys;

/// The longest validity window a device accepts. It also bounds how long a
/// device must remember nonces.
pub const MAX_VALIDITY_SECS: i64 = 600;

/// How far a device tolerates a command issued in its future (clock skew).
pub const MAX_SKEW_SECS: i64 = 30;

const DOMAIN: &[u8] = b"cordon-device-command/v1\n";

/// What a device is told to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Order {
    /// Install the firmware image `version` from the device's slots (an
    /// earlier image for a rollback, a later one to roll forward).
    InstallFirmware {
        /// The image's version, as in its signed manifest.
        version: String,
        /// Install even if the image's security version is below the
        /// device's anti-rollback floor. Only an approval grants it.
        #[serde(default)]
        allow_below_floor: bool,
    },
    /// Replace the running configuration with the known-good backup.
    RestoreConfig,
    /// Reply with the current state and change nothing.
    Report,
}

impl Order {
    /// The last level of the command's topic (`fleet/<d>/cmd/<name>`).
    pub fn name(&self) -> &'static str {
        match self {
            Order::InstallFirmware { .. } => "install-firmware",
            Order::RestoreConfig => "restore-config",
            Order::Report => "report",
        }
    }

    /// Whether obeying changes the device.
    pub fn changes_device(&self) -> bool {
        !matches!(self, Order::Report)
    }
}

/// A command before signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The requester's id for it (Cordon uses the step attempt's idempotency
    /// key), echoed in the device's reply.
    pub id: String,
    /// The device it is for.
    pub device: String,
    /// What to do.
    pub order: Order,
    /// 16 random bytes in hex; a device refuses a nonce it has seen.
    pub nonce: String,
    /// When it was signed (Unix seconds).
    pub issued_at: i64,
    /// When it stops being valid (Unix seconds).
    pub expires_at: i64,
}

impl Command {
    /// A command valid from `now` for `validity_secs` seconds, with a fresh
    /// nonce.
    #[cfg(feature = "random")]
    pub fn new(
        id: impl Into<String>,
        device: impl Into<String>,
        order: Order,
        now: i64,
        validity_secs: i64,
    ) -> Result<Command, keys::KeyError> {
        Ok(Command {
            id: id.into(),
            device: device.into(),
            order,
            nonce: keys::random_hex(16)?,
            issued_at: now,
            expires_at: now + validity_secs.clamp(1, MAX_VALIDITY_SECS),
        })
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut bytes = DOMAIN.to_vec();
        // A struct of strings, integers and booleans always serialises.
        bytes.extend(serde_jcs::to_vec(self).unwrap_or_default());
        bytes
    }
}

/// A command with its signature: what travels on `fleet/<d>/cmd/<order>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedCommand {
    /// The command.
    pub command: Command,
    /// [`keys::key_id`] of the signing key.
    pub key_id: String,
    /// The Ed25519 signature, hex.
    pub signature: String,
}

impl SignedCommand {
    /// Signs `command`.
    pub fn sign(command: Command, key: &SigningKey) -> SignedCommand {
        let signature = key.sign(&command.signed_bytes());
        SignedCommand {
            key_id: keys::key_id(&key.verifying_key()),
            signature: hex::encode(signature.to_bytes()),
            command,
        }
    }
}

/// Why a device refused a command. The codes are stable; devices report
/// them in their [`Reply`](crate::report::Reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// Not a signed command at all (bad JSON, no signature, unknown fields).
    Malformed,
    /// Signed by a key the device does not trust.
    UnknownKey,
    /// The signature does not verify: the command was altered or forged.
    BadSignature,
    /// Signed for another device.
    WrongDevice,
    /// Its validity window has passed.
    Expired,
    /// Issued in the device's future, or valid for longer than allowed.
    BadValidity,
    /// Its nonce was already used.
    Replayed,
    /// Signed and valid, but the device will not do it (say, an image below
    /// the security floor without the override).
    Rejected,
}

impl Refusal {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed",
            Refusal::UnknownKey => "unknown_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongDevice => "wrong_device",
            Refusal::Expired => "expired",
            Refusal::BadValidity => "bad_validity",
            Refusal::Replayed => "replayed",
            Refusal::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// What a device keeps to check commands: the trusted key and the nonces
/// seen inside still-open validity windows.
#[derive(Debug)]
pub struct Gate {
    device: String,
    key: VerifyingKey,
    seen: HashMap<String, i64>,
}

impl Gate {
    /// The gate of `device`, trusting commands signed by `key`.
    pub fn new(device: impl Into<String>, key: VerifyingKey) -> Gate {
        Gate {
            device: device.into(),
            key,
            seen: HashMap::new(),
        }
    }

    /// Checks a command as received (the MQTT payload) at `now`. On success
    /// its nonce is remembered, so the same command is refused next time.
    /// On refusal, returns the parsed command too when there was one, so the
    /// device can say which command it refused.
    pub fn admit(
        &mut self,
        payload: &[u8],
        now: i64,
    ) -> Result<Command, (Refusal, Option<Box<Command>>)> {
        let signed: SignedCommand =
            serde_json::from_slice(payload).map_err(|_| (Refusal::Malformed, None))?;
        let command = signed.command.clone();
        let refuse = |r: Refusal| (r, Some(Box::new(command.clone())));
        if signed.key_id != keys::key_id(&self.key) {
            return Err(refuse(Refusal::UnknownKey));
        }
        let signature = hex::decode(&signed.signature)
            .ok()
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .map(|b| Signature::from_bytes(&b))
            .ok_or_else(|| refuse(Refusal::BadSignature))?;
        self.key
            .verify_strict(&command.signed_bytes(), &signature)
            .map_err(|_| refuse(Refusal::BadSignature))?;
        if command.device != self.device {
            return Err(refuse(Refusal::WrongDevice));
        }
        if command.expires_at <= now {
            return Err(refuse(Refusal::Expired));
        }
        if command.issued_at > now + MAX_SKEW_SECS
            || command.expires_at - command.issued_at > MAX_VALIDITY_SECS
        {
            return Err(refuse(Refusal::BadValidity));
        }
        self.seen.retain(|_, expires| *expires > now);
        if self.seen.contains_key(&command.nonce) {
            return Err(refuse(Refusal::Replayed));
        }
        self.seen.insert(command.nonce.clone(), command.expires_at);
        Ok(command)
    }
}

#[cfg(all(test, feature = "random"))]
#[allow(clippy::unwrap_used)] // a failed unwrap is the test failing
mod tests {
    use super::*;

    fn signed(key: &SigningKey, device: &str, now: i64) -> Vec<u8> {
        let command = Command::new("run/step/1", device, Order::RestoreConfig, now, 60).expect("c");
        serde_json::to_vec(&SignedCommand::sign(command, key)).expect("json")
    }

    #[test]
    fn a_signed_command_is_obeyed_once() {
        let key = keys::generate().expect("key");
        let mut gate = Gate::new("dev-1", key.verifying_key());
        let payload = signed(&key, "dev-1", 1000);
        let command = gate.admit(&payload, 1001).expect("admitted");
        assert_eq!(command.order, Order::RestoreConfig);
        assert_eq!(gate.admit(&payload, 1002).unwrap_err().0, Refusal::Replayed);
    }

    #[test]
    fn every_kind_of_bad_command_is_refused_with_its_code() {
        let key = keys::generate().expect("key");
        let other = keys::generate().expect("key");
        let mut gate = Gate::new("dev-1", key.verifying_key());
        let refusal =
            |gate: &mut Gate, payload: &[u8], now| gate.admit(payload, now).unwrap_err().0;

        assert_eq!(refusal(&mut gate, b"{}", 1000), Refusal::Malformed);
        assert_eq!(refusal(&mut gate, b"not json", 1000), Refusal::Malformed);
        assert_eq!(
            refusal(&mut gate, &signed(&other, "dev-1", 1000), 1000),
            Refusal::UnknownKey
        );
        assert_eq!(
            refusal(&mut gate, &signed(&key, "dev-2", 1000), 1000),
            Refusal::WrongDevice
        );
        assert_eq!(
            refusal(&mut gate, &signed(&key, "dev-1", 1000), 1060),
            Refusal::Expired
        );
        assert_eq!(
            refusal(&mut gate, &signed(&key, "dev-1", 2000), 1000),
            Refusal::BadValidity
        );

        // Altered after signing: the order, the device, the window.
        let mut tampered: SignedCommand =
            serde_json::from_slice(&signed(&key, "dev-1", 1000)).expect("json");
        tampered.command.order = Order::InstallFirmware {
            version: "0.9.0".into(),
            allow_below_floor: true,
        };
        let bytes = serde_json::to_vec(&tampered).expect("json");
        assert_eq!(refusal(&mut gate, &bytes, 1000), Refusal::BadSignature);

        let mut stretched: SignedCommand =
            serde_json::from_slice(&signed(&key, "dev-1", 1000)).expect("json");
        stretched.command.expires_at += 5;
        let bytes = serde_json::to_vec(&stretched).expect("json");
        assert_eq!(refusal(&mut gate, &bytes, 1000), Refusal::BadSignature);

        // A signature over a window longer than allowed is refused even
        // though it verifies.
        let mut long = Command::new("x", "dev-1", Order::Report, 1000, 60).expect("c");
        long.expires_at = 1000 + MAX_VALIDITY_SECS + 1;
        let bytes = serde_json::to_vec(&SignedCommand::sign(long, &key)).expect("json");
        assert_eq!(refusal(&mut gate, &bytes, 1000), Refusal::BadValidity);
    }

    #[test]
    fn nonces_are_forgotten_only_after_their_window() {
        let key = keys::generate().expect("key");
        let mut gate = Gate::new("dev-1", key.verifying_key());
        for i in 0..100 {
            gate.admit(&signed(&key, "dev-1", 1000 + i), 1000 + i)
                .expect("fresh");
        }
        assert!(gate.seen.len() <= 61, "{}", gate.seen.len());
    }

    #[test]
    fn order_names_are_topic_levels() {
        let orders = [
            Order::InstallFirmware {
                version: "1".into(),
                allow_below_floor: false,
            },
            Order::RestoreConfig,
            Order::Report,
        ];
        for order in orders {
            assert!(!order.name().contains(['/', '+', '#']));
        }
    }
}
