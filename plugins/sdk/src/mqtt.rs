//! MQTT through named connections (WIT interface `mqtt`). Needs
//! [`Capability::Mqtt`](crate::Capability::Mqtt) for every connection a call
//! names; the host refuses any other with
//! [`HostError::Denied`](crate::HostError::Denied), which ends the attempt.
//!
//! The host holds the broker's address and credentials. In a dry run,
//! [`publish`] and [`request`] send nothing and fail with
//! [`HostError::DryRun`](crate::HostError::DryRun); [`receive`] only reads and
//! is performed.
//!
//! Timeouts are rounded to whole milliseconds (at least 1, at most
//! `u32::MAX`); the host shortens them to the attempt's remaining time.

use std::time::Duration;

use crate::HostError;
use crate::bindings::cordon::plugin::mqtt as wit;

/// The delivery guarantee of a publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qos {
    /// QoS 0: sent once, no acknowledgement.
    AtMostOnce,
    /// QoS 1: acknowledged by the broker; may arrive twice.
    AtLeastOnce,
    /// QoS 2: delivered exactly once to the broker.
    ExactlyOnce,
}

/// A message received from the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The topic it was published on.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

impl From<wit::Message> for Message {
    fn from(message: wit::Message) -> Message {
        Message {
            topic: message.topic,
            payload: message.payload,
        }
    }
}

/// Publishes `payload` on `topic` with QoS 1 (at least once), not retained,
/// and returns once the broker has acknowledged it.
pub fn publish(connection: &str, topic: &str, payload: &[u8]) -> Result<(), HostError> {
    publish_with(connection, topic, payload, Qos::AtLeastOnce, false)
}

/// Publishes `payload` on `topic` with the given QoS and retain flag, and
/// returns once the broker has acknowledged it as `qos` requires.
pub fn publish_with(
    connection: &str,
    topic: &str,
    payload: &[u8],
    qos: Qos,
    retain: bool,
) -> Result<(), HostError> {
    let qos = match qos {
        Qos::AtMostOnce => wit::Qos::AtMostOnce,
        Qos::AtLeastOnce => wit::Qos::AtLeastOnce,
        Qos::ExactlyOnce => wit::Qos::ExactlyOnce,
    };
    Ok(wit::publish(connection, topic, payload, qos, retain)?)
}

/// Publishes `payload` on `topic` and waits up to `timeout` for the response
/// on `response_topic` (a topic filter). The host subscribes first, sets the
/// MQTT 5 response-topic and correlation-data properties, and skips retained
/// messages and messages with another correlation id.
pub fn request(
    connection: &str,
    topic: &str,
    payload: &[u8],
    response_topic: &str,
    timeout: Duration,
) -> Result<Message, HostError> {
    let message = wit::request(connection, topic, payload, response_topic, millis(timeout))?;
    Ok(message.into())
}

/// Waits up to `timeout` for a message on `topic_filter` (a retained message
/// counts); `None` if none arrives.
pub fn receive(
    connection: &str,
    topic_filter: &str,
    timeout: Duration,
) -> Result<Option<Message>, HostError> {
    let message = wit::receive(connection, topic_filter, millis(timeout))?;
    Ok(message.map(Message::from))
}

/// Whole milliseconds, at least 1 (the contract forbids 0), at most
/// `u32::MAX`.
pub(crate) fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis())
        .unwrap_or(u32::MAX)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_clamped_to_the_contract() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_micros(1500)), 1);
        assert_eq!(millis(Duration::from_secs(2)), 2000);
        assert_eq!(millis(Duration::MAX), u32::MAX);
    }
}
