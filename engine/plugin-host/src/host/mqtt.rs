//! `cordon:plugin/mqtt`: publish, request/response and receive on named
//! connections, after the sandbox's checks (grant, topic syntax, size, dry run).

use std::time::Duration;

use serde_json::json;

use crate::bindings::HostError;
use crate::bindings::mqtt::{Host, Message, Qos};
use crate::capability::Interface;
use crate::host::{Connections, HostState, MqttQos, sanitise};

/// The largest payload a plugin may publish.
const PAYLOAD_BYTES: usize = 256 << 10;

/// A topic to publish on: non-empty UTF-8, no wildcard, no NUL, ≤ 65535 bytes.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && topic.len() <= 65535 && !topic.contains(['+', '#', '\0'])
}

/// A topic filter: wildcards only as whole levels, `#` only last.
fn valid_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > 65535 || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == levels.len() - 1,
        "+" => true,
        other => !other.contains(['+', '#']),
    })
}

impl HostState {
    /// Refuses a call on a connection that is not declared and granted.
    fn mqtt_granted(&mut self, connection: &str) -> Result<(), HostError> {
        if self
            .context
            .grants
            .allows_connection(Interface::Mqtt, connection)
        {
            return Ok(());
        }
        Err(self.deny(format!(
            "mqtt connection `{}` is not declared and granted",
            sanitise(connection, 64)
        )))
    }

    /// The connections service (asked for after the checks and the dry run).
    fn connections(&self) -> Result<std::sync::Arc<dyn Connections>, HostError> {
        self.context
            .services
            .connections
            .clone()
            .ok_or_else(|| HostError::Unavailable("this node has no connections configured".into()))
    }
}

impl Host for HostState {
    async fn publish(
        &mut self,
        connection: String,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
        retain: bool,
    ) -> wasmtime::Result<Result<(), HostError>> {
        if let Err(e) = self.mqtt_granted(&connection) {
            return Ok(Err(e));
        }
        if !valid_topic(&topic) {
            return Ok(Err(HostError::Invalid("not a topic to publish on".into())));
        }
        if payload.len() > PAYLOAD_BYTES {
            return Ok(Err(HostError::Invalid(format!(
                "payload over {PAYLOAD_BYTES} bytes"
            ))));
        }
        let qos = match qos {
            Qos::AtMostOnce => MqttQos::AtMostOnce,
            Qos::AtLeastOnce => MqttQos::AtLeastOnce,
            Qos::ExactlyOnce => MqttQos::ExactlyOnce,
        };
        let detail =
            json!({"qos": format!("{qos:?}"), "retain": retain, "payload_bytes": payload.len()});
        if let Some(dry) = self.dry_run("mqtt.publish", format!("{connection}:{topic}"), detail) {
            return Ok(Err(dry));
        }
        let service = match self.connections() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let budget = self.budget(None);
        Ok(service
            .mqtt_publish(connection, topic, payload, qos, retain, budget)
            .await
            .map_err(HostError::from))
    }

    async fn request(
        &mut self,
        connection: String,
        topic: String,
        payload: Vec<u8>,
        response_topic: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Message, HostError>> {
        if let Err(e) = self.mqtt_granted(&connection) {
            return Ok(Err(e));
        }
        if !valid_topic(&topic) || !valid_filter(&response_topic) {
            return Ok(Err(HostError::Invalid(
                "not a topic, or not a response topic filter".into(),
            )));
        }
        if payload.len() > PAYLOAD_BYTES || timeout_ms == 0 {
            return Ok(Err(HostError::Invalid(format!(
                "payload over {PAYLOAD_BYTES} bytes or a zero timeout"
            ))));
        }
        let detail = json!({"response_topic": response_topic, "payload_bytes": payload.len()});
        if let Some(dry) = self.dry_run("mqtt.request", format!("{connection}:{topic}"), detail) {
            return Ok(Err(dry));
        }
        let service = match self.connections() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        let budget = self.budget(Some(Duration::from_millis(u64::from(timeout_ms))));
        Ok(service
            .mqtt_request(connection, topic, payload, response_topic, budget)
            .await
            .map(|m| Message {
                topic: m.topic,
                payload: m.payload,
            })
            .map_err(HostError::from))
    }

    async fn receive(
        &mut self,
        connection: String,
        topic_filter: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Option<Message>, HostError>> {
        if let Err(e) = self.mqtt_granted(&connection) {
            return Ok(Err(e));
        }
        if !valid_filter(&topic_filter) || timeout_ms == 0 {
            return Ok(Err(HostError::Invalid(
                "not a topic filter, or a zero timeout".into(),
            )));
        }
        let service = match self.connections() {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        // Receiving only reads: performed in dry runs too.
        let budget = self.budget(Some(Duration::from_millis(u64::from(timeout_ms))));
        Ok(service
            .mqtt_receive(connection, topic_filter, budget)
            .await
            .map(|m| {
                m.map(|m| Message {
                    topic: m.topic,
                    payload: m.payload,
                })
            })
            .map_err(HostError::from))
    }
}

#[cfg(test)]
mod tests {
    use super::{valid_filter, valid_topic};

    #[test]
    fn topics_and_filters_follow_mqtt() {
        assert!(valid_topic("fleet/plc-7/cmd"));
        assert!(!valid_topic("fleet/+/cmd"));
        assert!(!valid_topic(""));
        assert!(valid_filter("fleet/+/status"));
        assert!(valid_filter("fleet/#"));
        assert!(!valid_filter("fleet/#/x"));
        assert!(!valid_filter("fleet/a+"));
    }
}
