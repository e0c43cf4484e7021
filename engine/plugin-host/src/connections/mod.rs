//! The real [`Connections`]: named MQTT brokers (rumqttc, MQTT 5) and HTTP
//! servers (reqwest), configured by the operator. The sandbox has already
//! checked grants, arguments and dry runs when a call arrives here; this
//! module turns it into network traffic and every failure into a
//! [`HostFailure`] whose message names the connection, never its address or
//! credentials (those go to the host's own log at most).

mod config;
mod http;
mod mqtt;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use cordon_runtime::executor::BoxFuture;

pub use config::{
    ConnectionConfig, ConnectionsConfig, ConnectionsError, HttpTlsConfig, MqttTlsConfig, Secret,
};

use crate::host::{
    Connections, HostFailure, HttpRequest, HttpResponse, MqttMessage, MqttQos, sanitise,
};
use http::HttpConnection;
use mqtt::MqttConnection;

/// One configured connection, ready to use.
#[derive(Debug)]
enum Connection {
    Mqtt(Arc<MqttConnection>),
    Http(Arc<HttpConnection>),
}

/// Every named connection of this node: what [`crate::Services`] hands the
/// sandbox as its `connections`. Cheap to clone.
///
/// Each MQTT call runs in its own short broker session (clean start, a
/// fresh client id, disconnected at the end), so calls never see each
/// other's subscriptions or messages; HTTP calls share one pooled client per
/// connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectionHub {
    connections: Arc<BTreeMap<String, Connection>>,
}

impl ConnectionHub {
    /// Checks `config` and prepares every connection: TLS files are read
    /// and HTTP clients built now, so a broken setting fails at start-up
    /// rather than in a plugin's call. Nothing is connected yet.
    pub fn new(config: &ConnectionsConfig) -> Result<ConnectionHub, ConnectionsError> {
        // rustls needs a process-wide crypto provider for reqwest's TLS set-up
        // (the MQTT side passes ring explicitly). Installing it again, or
        // after someone else did, fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut connections = BTreeMap::new();
        for (name, settings) in &config.connections {
            config::check_name(name)?;
            let connection = match settings {
                ConnectionConfig::Mqtt { .. } => {
                    Connection::Mqtt(Arc::new(MqttConnection::new(name, settings)?))
                }
                ConnectionConfig::Http { .. } => {
                    Connection::Http(Arc::new(HttpConnection::new(name, settings)?))
                }
            };
            connections.insert(name.clone(), connection);
        }
        Ok(ConnectionHub {
            connections: Arc::new(connections),
        })
    }

    /// The configured connection names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.connections.keys().map(String::as_str)
    }

    fn mqtt(&self, name: &str) -> Result<Arc<MqttConnection>, HostFailure> {
        match self.connections.get(name) {
            Some(Connection::Mqtt(connection)) => Ok(Arc::clone(connection)),
            Some(Connection::Http(_)) => Err(HostFailure::Invalid(format!(
                "connection `{}` is an HTTP connection, not MQTT",
                sanitise(name, 64)
            ))),
            None => Err(not_configured(name)),
        }
    }

    fn http(&self, name: &str) -> Result<Arc<HttpConnection>, HostFailure> {
        match self.connections.get(name) {
            Some(Connection::Http(connection)) => Ok(Arc::clone(connection)),
            Some(Connection::Mqtt(_)) => Err(HostFailure::Invalid(format!(
                "connection `{}` is an MQTT connection, not HTTP",
                sanitise(name, 64)
            ))),
            None => Err(not_configured(name)),
        }
    }
}

fn not_configured(name: &str) -> HostFailure {
    HostFailure::Unavailable(format!(
        "connection `{}` is not configured on this node",
        sanitise(name, 64)
    ))
}

/// The plugin-facing message for a connection that cannot be used: the
/// name and the kind of failure, nothing that locates the service.
pub(crate) fn unavailable(name: &str, why: &str) -> HostFailure {
    HostFailure::Unavailable(format!("connection `{name}` is unavailable: {why}"))
}

/// The kind of a transport failure, for a plugin: found by walking the
/// error's sources, including the errors I/O errors wrap (an I/O error's
/// `source` skips the error it wraps, and TLS errors travel inside I/O
/// errors). Never the error's own text, which may hold the address.
pub(crate) fn transport_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut kind = None;
    let mut source = Some(error);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls_failure(tls));
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if let Some(found) = io.get_ref().and_then(|inner| transport_failure(inner)) {
                return Some(found);
            }
            kind = kind.or_else(|| io_failure(io.kind()));
        }
        source = current.source();
    }
    kind.map(str::to_string)
}

fn tls_failure(error: &rustls::Error) -> String {
    match error {
        rustls::Error::InvalidCertificate(why) => {
            use rustls::CertificateError as E;
            // Coarse on purpose: the detailed variants carry the server name.
            let why = match why {
                E::UnknownIssuer | E::BadSignature => "not issued by a trusted authority",
                E::Expired
                | E::ExpiredContext { .. }
                | E::NotValidYet
                | E::NotValidYetContext { .. } => "outside its validity period",
                E::NotValidForName | E::NotValidForNameContext { .. } => {
                    "not valid for the configured host"
                }
                E::Revoked => "revoked",
                _ => "invalid",
            };
            format!("TLS: the server's certificate is not accepted ({why})")
        }
        rustls::Error::AlertReceived(alert) => {
            format!("TLS: the server refused the handshake ({alert:?})")
        }
        _ => "TLS handshake failed".into(),
    }
}

fn io_failure(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind;
    Some(match kind {
        ErrorKind::ConnectionRefused => "connection refused",
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => "the connection was closed",
        ErrorKind::TimedOut => "the connection timed out",
        ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable => "the network is unreachable",
        _ => return None,
    })
}

impl Connections for ConnectionHub {
    fn mqtt_publish(
        &self,
        connection: String,
        topic: String,
        payload: Vec<u8>,
        qos: MqttQos,
        retain: bool,
        timeout: Duration,
    ) -> BoxFuture<Result<(), HostFailure>> {
        let found = self.mqtt(&connection);
        Box::pin(async move { found?.publish(topic, payload, qos, retain, timeout).await })
    }

    fn mqtt_request(
        &self,
        connection: String,
        topic: String,
        payload: Vec<u8>,
        response_topic: String,
        timeout: Duration,
    ) -> BoxFuture<Result<MqttMessage, HostFailure>> {
        let found = self.mqtt(&connection);
        Box::pin(async move {
            found?
                .request(topic, payload, response_topic, timeout)
                .await
        })
    }

    fn mqtt_receive(
        &self,
        connection: String,
        topic_filter: String,
        timeout: Duration,
    ) -> BoxFuture<Result<Option<MqttMessage>, HostFailure>> {
        let found = self.mqtt(&connection);
        Box::pin(async move { found?.receive(topic_filter, timeout).await })
    }

    fn http_send(
        &self,
        connection: String,
        request: HttpRequest,
        timeout: Duration,
    ) -> BoxFuture<Result<HttpResponse, HostFailure>> {
        let found = self.http(&connection);
        Box::pin(async move { found?.send(request, timeout).await })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{ConnectionHub, ConnectionsConfig, ConnectionsError};
    use crate::host::{Connections, HostFailure, MqttQos};

    fn hub(entries: serde_json::Value) -> Result<ConnectionHub, ConnectionsError> {
        let config: ConnectionsConfig =
            serde_json::from_value(serde_json::json!({ "connections": entries })).expect("config");
        ConnectionHub::new(&config)
    }

    #[tokio::test]
    async fn unknown_and_wrong_kind_connections_are_refused_before_any_traffic() {
        let hub = hub(serde_json::json!({
            "fleet-ca": {"kind": "http", "base_url": "http://127.0.0.1:9/api"},
            "fleet-broker": {"kind": "mqtt", "host": "127.0.0.1", "port": 9}
        }))
        .expect("hub");
        assert_eq!(
            hub.names().collect::<Vec<_>>(),
            ["fleet-broker", "fleet-ca"]
        );
        let second = Duration::from_secs(1);
        let unknown = hub
            .mqtt_publish(
                "x".into(),
                "t".into(),
                vec![],
                MqttQos::AtMostOnce,
                false,
                second,
            )
            .await;
        assert_eq!(
            unknown,
            Err(HostFailure::Unavailable(
                "connection `x` is not configured on this node".into()
            ))
        );
        let wrong = hub
            .mqtt_receive("fleet-ca".into(), "t/#".into(), second)
            .await;
        assert!(matches!(wrong, Err(HostFailure::Invalid(_))), "{wrong:?}");
    }

    #[test]
    fn bad_names_and_settings_are_refused_without_secrets() {
        let name = hub(serde_json::json!({"Fleet": {"kind": "mqtt", "host": "h", "port": 1}}));
        assert!(matches!(name, Err(ConnectionsError::Name(_))), "{name:?}");
        for (bad, reason) in [
            (
                serde_json::json!({"kind": "http", "base_url": "http://user:hunter2@h/api"}),
                "credentials",
            ),
            (
                serde_json::json!({"kind": "http", "base_url": "ftp://h/api"}),
                "http",
            ),
            (
                serde_json::json!({"kind": "http", "base_url": "http://h/api?x=1"}),
                "query",
            ),
            (
                serde_json::json!({"kind": "http", "base_url": "http://h", "headers": {"x-key": "hunter2\n"}}),
                "x-key",
            ),
            (
                serde_json::json!({"kind": "mqtt", "host": "", "port": 1883, "password": "hunter2"}),
                "host",
            ),
            (
                serde_json::json!({"kind": "mqtt", "host": "h", "port": 1883, "tls": {"ca_file": "/nonexistent/ca.pem"}}),
                "/nonexistent/ca.pem",
            ),
        ] {
            let error = hub(serde_json::json!({ "c": bad })).expect_err("refused");
            let text = error.to_string();
            assert!(text.contains(reason), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }
}
