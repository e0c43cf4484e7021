//! Commands to devices: signed by the fleet CA, carried over MQTT, answered
//! by the device's [`Reply`].
//!
//! A plugin asks the CA (`POST /v1/commands` on the `fleet-ca` connection)
//! to sign a command whose id is the step attempt's idempotency key, then
//! publishes it on the device's command topic and waits for the reply that
//! echoes the MQTT 5 correlation data of that publish. The plugin never sees
//! a signing key; the device obeys nothing unsigned.

use std::time::{Duration, Instant};

pub use cordon_fleet::command::{Order, SignedCommand};
pub use cordon_fleet::report::{DeviceState, Heartbeat, Outcome, Reply};
use cordon_fleet::topics;
use cordon_plugin_sdk::http::{Request, send as http_send};
use cordon_plugin_sdk::{Error, HostError, intent, mqtt};
use serde_json::json;

use crate::{BROKER, CA};

/// How long a signed command stays valid: long enough for a device that is
/// reconnecting, short enough that a captured command is soon useless.
const VALIDITY_SECS: i64 = 120;

/// Declares the command as an intent (the dry-run plan and the audit record
/// both show exactly what the device would be told).
pub fn declare(device: &str, order: &Order) -> Result<(), Error> {
    intent::declare(
        "device.command",
        device,
        &json!({"order": order, "topic": topics::command(device, order.name())}),
    )
}

/// Has the CA sign `order` for `device` under the id `id`.
pub fn sign(id: &str, device: &str, order: &Order) -> Result<SignedCommand, Error> {
    let request = Request::post("/v1/commands").json(&json!({
        "id": id, "device": device, "order": order, "validity_secs": VALIDITY_SECS
    }))?;
    let response = http_send(CA, &request)?;
    if !response.is_success() {
        let body = String::from_utf8_lossy(&response.body);
        let message = format!("the fleet CA refused to sign: {} {body}", response.status);
        return Err(if response.status >= 500 {
            Error::retryable(message)
        } else {
            Error::permanent(message)
        });
    }
    response.json()
}

/// Sends `order` to `device` and returns its reply. The command is signed
/// afresh for every send (a device refuses a nonce twice); a device that
/// does not answer within `wait` (offline, reconnecting after a role change)
/// is asked again until `deadline`, then the error is retryable.
pub fn send(
    id: &str,
    device: &str,
    order: &Order,
    wait: Duration,
    deadline: Instant,
) -> Result<Reply, Error> {
    declare(device, order)?;
    loop {
        let signed = sign(id, device, order)?;
        let payload = serde_json::to_vec(&signed)
            .map_err(|e| Error::permanent(format!("cannot encode the command: {e}")))?;
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = mqtt::request(
            BROKER,
            &topics::command(device, order.name()),
            &payload,
            &topics::reply(device),
            wait.min(left).max(Duration::from_millis(1)),
        );
        match outcome {
            Ok(message) => {
                let reply: Reply = serde_json::from_slice(&message.payload).map_err(|e| {
                    Error::permanent(format!("{device} sent a reply that is not one: {e}"))
                })?;
                return Ok(reply);
            }
            Err(HostError::Timeout(_)) if Instant::now() < deadline => continue,
            Err(HostError::Timeout(_)) => {
                return Err(Error::retryable(format!(
                    "{device} did not answer the {} command in time",
                    order.name()
                )));
            }
            Err(other) => return Err(other.into()),
        }
    }
}

/// Requires a reply that says `Done`; turns a refusal or failure into a
/// permanent error that names the device's reason.
pub fn done(device: &str, order: &Order, reply: Reply) -> Result<Reply, Error> {
    match &reply.outcome {
        Outcome::Done { .. } => Ok(reply),
        Outcome::Refused { code, reason } => Err(Error::permanent(format!(
            "{device} refused the {} command ({code}): {reason}",
            order.name()
        ))),
        Outcome::Failed { reason } => Err(Error::permanent(format!(
            "{device} failed the {} command: {reason}",
            order.name()
        ))),
    }
}

/// Waits until `device` publishes a heartbeat that `accept` takes, or until
/// `timeout` passes (`None`).
pub fn heartbeat_until(
    device: &str,
    timeout: Duration,
    mut accept: impl FnMut(&Heartbeat) -> bool,
) -> Result<Option<Heartbeat>, Error> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let Some(message) = mqtt::receive(BROKER, &topics::heartbeat(device), left)? else {
            return Ok(None);
        };
        if let Ok(beat) = serde_json::from_slice::<Heartbeat>(&message.payload)
            && accept(&beat)
        {
            return Ok(Some(beat));
        }
    }
}
