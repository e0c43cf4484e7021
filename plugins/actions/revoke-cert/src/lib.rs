//! `revoke-cert`: revokes a device's client certificate for good.
//!
//! 1. asks the fleet CA (`fleet-ca`) for the device's current certificate;
//! 2. revokes it there. The CA builds the new CRL, validates it before it
//!    replaces the old one (a corrupt CRL makes Mosquitto fail open, an
//!    expired one locks every device out), makes the broker reload it and
//!    proves the reload with a sentinel certificate revoked in the same CRL;
//! 3. disables the client on the broker, which drops the live session: a
//!    CRL reload only affects new connections, so without this the device
//!    would stay connected;
//! 4. reads both back: the CA lists the serial in the CRL on disk, and the
//!    broker shows the client disabled.
//!
//! Irreversible: playbooks must put an approval gate before it.

#![forbid(unsafe_code)]

use cordon_fleet_kit::dynsec::Dynsec;
use cordon_fleet_kit::{BROKER, CA, known_device};
use cordon_plugin_sdk::http::{Request, send};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, intent, log};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The RFC 5280 revocation reasons, as playbooks write them.
// Variants documented with plain comments: doc comments would make
// schemars describe the enum as `oneOf` consts, and the validator's message
// for a wrong value would list schemas instead of the allowed values.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    // No reason given.
    Unspecified,
    // The device's key is, or may be, in someone else's hands.
    #[default]
    KeyCompromise,
    // The CA's key is compromised.
    CaCompromise,
    // The device changed hands.
    AffiliationChanged,
    // Replaced by a new certificate.
    Superseded,
    // The device is decommissioned.
    CessationOfOperation,
    // Suspended.
    CertificateHold,
}

impl Reason {
    /// The fleet CA's spelling.
    fn wire(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "key_compromise",
            Reason::CaCompromise => "ca_compromise",
            Reason::AffiliationChanged => "affiliation_changed",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessation_of_operation",
            Reason::CertificateHold => "certificate_hold",
        }
    }
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// Inventory id of the device whose certificate is revoked.
    #[schemars(length(min = 1))]
    pub device: String,
    /// The RFC 5280 revocation reason (default `keyCompromise`).
    #[serde(default)]
    pub reason: Reason,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The device.
    pub device: String,
    /// The revoked certificate's serial (hex), empty in a dry run.
    pub serial: String,
    /// The reason recorded on the CRL.
    pub reason: Reason,
    /// The number of the CRL that lists it.
    pub crl_number: Option<u64>,
    /// When that CRL must be replaced (RFC 3339).
    pub crl_next_update: Option<String>,
    /// The certificate had been revoked before this step.
    pub already_revoked: bool,
    /// The broker reloaded the CRL.
    pub broker_reloaded: bool,
    /// Live sessions dropped (the client was disabled, which kicks it).
    pub sessions_dropped: u32,
    /// A fresh connection with a certificate revoked in the same CRL was
    /// refused by the broker, a valid one accepted, the CA lists the serial
    /// in the CRL on disk, and the broker shows the client disabled.
    pub verified: bool,
    /// Only planned (dry run): nothing was changed.
    pub dry_run: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct RevokeCert;

impl Plugin for RevokeCert {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "revoke-cert";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Revokes the device's client certificate at the fleet CA, has the broker reload a validated CRL, proves that a revoked certificate can no longer connect, and drops the device's live session. Cannot be undone.";
    const CAPABILITIES: &'static [Capability] = &[
        Capability::Http("fleet-ca"),
        Capability::Mqtt("fleet-broker"),
        Capability::InventoryRead,
    ];
    const IDEMPOTENT: bool = true;
    const COMPENSABLE: bool = false;
    const IRREVERSIBLE: bool = true;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let device = input.device.as_str();
        let record = known_device(device)?;
        // Reading the CA is harmless, but a dry run sends nothing at all.
        let serial = if call.dry_run {
            record["cert_serial"].as_str().unwrap_or("").to_string()
        } else {
            let current: Value =
                ca_json(Request::get(format!("/v1/devices/{device}/certificate")))?;
            let serial = current["serial"].as_str().unwrap_or_default().to_string();
            if let Some(listed) = record["cert_serial"].as_str()
                && !listed.eq_ignore_ascii_case(&serial)
            {
                log::warn(
                    "the inventory lists another certificate serial than the CA",
                    &[("device", device), ("inventory", listed), ("ca", &serial)],
                );
            }
            serial
        };
        intent::declare(
            "ca.revoke",
            device,
            &json!({"serial": serial, "reason": input.reason.wire()}),
        )?;
        intent::declare("broker.disable_client", device, &json!({}))?;
        if call.dry_run {
            return Ok(Output {
                device: device.to_string(),
                serial,
                reason: input.reason,
                crl_number: None,
                crl_next_update: None,
                already_revoked: false,
                broker_reloaded: false,
                sessions_dropped: 0,
                verified: false,
                dry_run: true,
            });
        }
        if serial.is_empty() {
            return Err(Error::permanent(format!(
                "the fleet CA has no certificate for {device}"
            )));
        }
        let revoked: Value = ca_json(
            Request::post(format!("/v1/certificates/{serial}/revoke"))
                .json(&json!({"reason": input.reason.wire()}))?,
        )?;
        let probe_ok = revoked["probe"]["revoked_refused"].as_bool() == Some(true)
            && revoked["probe"]["valid_accepted"].as_bool() == Some(true);
        let reloaded = revoked["broker_reloaded"].as_bool() == Some(true);

        let broker = Dynsec::new(BROKER, &call.idempotency_key);
        broker.disable(device)?;

        let status: Value = ca_json(Request::get(format!("/v1/certificates/{serial}")))?;
        let listed = status["status"].as_str() == Some("revoked")
            && status["in_crl"].as_bool() == Some(true);
        let disabled = broker.existing_client(device)?.disabled;
        if !(probe_ok && reloaded && listed && disabled) {
            return Err(Error::retryable(format!(
                "revocation of {device} (serial {serial}) not verified: broker reloaded {reloaded}, \
                 probe {probe_ok}, listed in CRL {listed}, client disabled {disabled}"
            )));
        }
        log::info(
            "certificate revoked",
            &[("device", device), ("serial", &serial)],
        );
        Ok(Output {
            device: device.to_string(),
            serial,
            reason: input.reason,
            crl_number: revoked["crl"]["number"].as_u64(),
            crl_next_update: revoked["crl"]["next_update"].as_str().map(str::to_string),
            already_revoked: revoked["already_revoked"].as_bool().unwrap_or(false),
            broker_reloaded: reloaded,
            sessions_dropped: 1,
            verified: true,
            dry_run: false,
        })
    }
}

/// Sends `request` to the fleet CA and parses a 2xx answer; a 5xx (CA or
/// broker trouble, a CRL that failed validation) may pass, a 4xx will not.
fn ca_json<T: DeserializeOwned>(request: Request) -> Result<T, Error> {
    let response = send(CA, &request)?;
    if response.is_success() {
        return response.json();
    }
    let message = format!(
        "the fleet CA answered {}: {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    Err(if response.status >= 500 {
        Error::retryable(message)
    } else {
        Error::permanent(message)
    })
}

export_plugin!(RevokeCert);
