//! What the operator writes for named connections (a section of the
//! server's YAML configuration), and the checks made before any is used.
//!
//! ```yaml
//! connections:
//!   fleet-broker:
//!     kind: mqtt
//!     host: broker.plant.example
//!     port: 8883
//!     username: cordon
//!     password: s3cret
//!     tls: { ca_file: /etc/cordon/broker-ca.pem }
//!   fleet-ca:
//!     kind: http
//!     base_url: https://ca.plant.example/api
//!     headers: { authorization: "Bearer …" }
//!     timeout_ms: 10000
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use crate::capability::valid_connection_name;

/// Text that must never be shown: a password, a token, an authorization
/// header. `Debug` and `Display` print `***`, it is not serialisable, and no
/// error message of this crate contains one (not even a parse error: a
/// number or boolean is taken as its text rather than refused with its
/// value in the message).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Accepts any scalar as text; serde's default errors would quote the value.
struct SecretVisitor;

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret as text")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(E::custom("a secret must be text (value not shown)"))
    }
}

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Every named connection of this node, by name (the name a plugin's
/// `mqtt:<name>` or `http:<name>` capability uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionsConfig {
    /// The connections, by name.
    #[serde(default)]
    pub connections: BTreeMap<String, ConnectionConfig>,
}

/// One named connection: where it goes and with which credentials.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ConnectionConfig {
    /// An MQTT broker, spoken to with MQTT 5.
    Mqtt {
        /// The broker's host name or IP address (also the TLS server name).
        host: String,
        /// Its port.
        port: u16,
        /// The start of every client id this node uses on the broker (a
        /// random suffix makes each unique); `cordon-` when absent. Brokers
        /// often authorise by client-id pattern.
        #[serde(default)]
        client_id_prefix: Option<String>,
        /// The user name to log in with.
        #[serde(default)]
        username: Option<String>,
        /// The password to log in with.
        #[serde(default)]
        password: Option<Secret>,
        /// TLS settings; absent means plain TCP.
        #[serde(default)]
        tls: Option<MqttTlsConfig>,
    },
    /// An HTTP(S) server below a base URL.
    Http {
        /// `http://` or `https://` URL without credentials, query or
        /// fragment; each request's path is appended to its path.
        base_url: String,
        /// Headers the host adds to every request (for instance
        /// `authorization`); a plugin's header of the same name is replaced.
        #[serde(default)]
        headers: BTreeMap<String, Secret>,
        /// The longest a request may take, in milliseconds: the timeout of a
        /// request that names none, and the cap of one that names a longer one.
        #[serde(default = "default_http_timeout_ms")]
        timeout_ms: u64,
        /// TLS settings for an `https://` base URL.
        #[serde(default)]
        tls: Option<HttpTlsConfig>,
    },
}

/// The default HTTP timeout: ten seconds.
fn default_http_timeout_ms() -> u64 {
    10_000
}

/// TLS to an MQTT broker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttTlsConfig {
    /// PEM file of the certificate authorities to trust; absent means the
    /// system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// PEM file of the client certificate chain (mutual TLS).
    #[serde(default)]
    pub client_cert_file: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    #[serde(default)]
    pub client_key_file: Option<PathBuf>,
}

/// TLS to an HTTPS server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTlsConfig {
    /// PEM file of the only certificate authorities to trust; absent means
    /// the system's roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The connections configuration cannot be used. Messages name the
/// connection and the setting, never a secret's value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionsError {
    /// A name that capabilities cannot refer to.
    #[error(
        "{0:?} is not a connection name (lowercase letters, digits and `-`, starting with a letter, at most 63 bytes)"
    )]
    Name(String),
    /// A setting of one connection is wrong.
    #[error("connection `{name}`: {reason}")]
    Invalid {
        /// The connection.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

impl ConnectionsError {
    pub(crate) fn invalid(name: &str, reason: impl Into<String>) -> ConnectionsError {
        ConnectionsError::Invalid {
            name: name.to_string(),
            reason: reason.into(),
        }
    }
}

/// Checks a connection's name (its settings are checked when it is built).
pub(crate) fn check_name(name: &str) -> Result<(), ConnectionsError> {
    if valid_connection_name(name) {
        Ok(())
    } else {
        Err(ConnectionsError::Name(name.to_string()))
    }
}

/// Reads a PEM file named in the configuration; the error names the file
/// and the kind of failure (the operator's own path, not a secret).
pub(crate) fn read_pem(
    name: &str,
    what: &str,
    path: &PathBuf,
) -> Result<Vec<u8>, ConnectionsError> {
    std::fs::read(path).map_err(|e| {
        ConnectionsError::invalid(
            name,
            format!(
                "cannot read the {what} file {}: {}",
                path.display(),
                e.kind()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::{ConnectionConfig, ConnectionsConfig, Secret};

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?}"), "*** ***");
        let config: ConnectionsConfig = serde_json::from_value(serde_json::json!({
            "connections": {"b": {"kind": "mqtt", "host": "h", "port": 1883, "password": "hunter2"}}
        }))
        .expect("parses");
        assert!(!format!("{config:?}").contains("hunter2"));
        let number: Secret = serde_json::from_value(serde_json::json!(123456)).expect("number");
        assert_eq!(number.expose(), "123456");
    }

    #[test]
    fn both_kinds_parse_with_defaults_and_unknown_fields_are_refused() {
        let config: ConnectionsConfig = serde_json::from_value(serde_json::json!({
            "connections": {
                "fleet-broker": {"kind": "mqtt", "host": "broker", "port": 8883, "tls": {"ca_file": "/ca.pem"}},
                "fleet-ca": {"kind": "http", "base_url": "https://ca/api", "headers": {"authorization": "Bearer t"}}
            }
        }))
        .expect("parses");
        let Some(ConnectionConfig::Http {
            timeout_ms,
            headers,
            ..
        }) = config.connections.get("fleet-ca")
        else {
            panic!("http connection missing: {config:?}");
        };
        assert_eq!(*timeout_ms, 10_000);
        assert_eq!(headers["authorization"].expose(), "Bearer t");
        assert!(matches!(
            config.connections.get("fleet-broker"),
            Some(ConnectionConfig::Mqtt {
                port: 8883,
                tls: Some(_),
                ..
            })
        ));
        let typo = serde_json::from_value::<ConnectionsConfig>(serde_json::json!({
            "connections": {"b": {"kind": "mqtt", "host": "h", "port": 1, "pasword": "x"}}
        }));
        assert!(typo.is_err());
        let kind = serde_json::from_value::<ConnectionsConfig>(serde_json::json!({
            "connections": {"b": {"kind": "amqp", "host": "h"}}
        }));
        assert!(kind.is_err());
    }
}
