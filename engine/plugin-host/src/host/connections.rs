//! Named connections: the host holds every broker and server address and
//! every credential; a plugin only names a connection. This trait is what
//! the host interfaces call once a call has passed the sandbox's checks.

use std::time::Duration;

use cordon_runtime::executor::BoxFuture;

/// Why a connection call failed (the non-policy cases of `host-error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostFailure {
    /// The service could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The call's own timeout passed.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The arguments break the contract or a size limit.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The remote end refused the operation.
    #[error("rejected: {0}")]
    Rejected(String),
}

/// MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttQos {
    /// QoS 0.
    AtMostOnce,
    /// QoS 1.
    AtLeastOnce,
    /// QoS 2.
    ExactlyOnce,
}

/// A message received from a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttMessage {
    /// Its topic.
    pub topic: String,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// An HTTP request relative to a connection's base URL (already checked:
/// the path is safe and no header is one the host owns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, without credential-carrying ones.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// Performs calls on named connections. Implementations must never expose
/// an address or a credential in an error message meant for the plugin.
pub trait Connections: Send + Sync + std::fmt::Debug {
    /// Publishes a message; returns when the broker acknowledged it as `qos` requires.
    fn mqtt_publish(
        &self,
        connection: String,
        topic: String,
        payload: Vec<u8>,
        qos: MqttQos,
        retain: bool,
        timeout: Duration,
    ) -> BoxFuture<Result<(), HostFailure>>;

    /// Publishes a request and waits for the first response on `response_topic`.
    fn mqtt_request(
        &self,
        connection: String,
        topic: String,
        payload: Vec<u8>,
        response_topic: String,
        timeout: Duration,
    ) -> BoxFuture<Result<MqttMessage, HostFailure>>;

    /// Waits for one message on a topic filter.
    fn mqtt_receive(
        &self,
        connection: String,
        topic_filter: String,
        timeout: Duration,
    ) -> BoxFuture<Result<Option<MqttMessage>, HostFailure>>;

    /// Sends an HTTP request.
    fn http_send(
        &self,
        connection: String,
        request: HttpRequest,
        timeout: Duration,
    ) -> BoxFuture<Result<HttpResponse, HostFailure>>;
}
