//! The `webhooks:` section of the node's configuration: one entry per
//! monitoring source, each with its payload format, how it authenticates,
//! its rate limit and its body limit. Secrets are read (inline or from the
//! environment) once, at start, into [`Secret`]s that never print.
//!
//! ```yaml
//! webhooks:
//!   alertmanager:
//!     format: alertmanager
//!     auth: {bearer: {token_env: CORDON_AM_TOKEN}}
//!     rate_limit: {rate_per_sec: 20, burst: 40}
//!   grafana:
//!     format: grafana
//!     auth: {basic: {username: grafana, password_env: CORDON_GRAFANA_PASSWORD}}
//!   scanner:
//!     format: json
//!     auth: {hmac: {secret_env: CORDON_SCANNER_SECRET, tolerance_secs: 300}}
//!     mapping: {alerts: /findings, fingerprint: /id, status: /state}
//!     body_limit_kib: 64
//! ```

use std::collections::BTreeMap;

use cordon_notify::Secret;
use serde::Deserialize;

/// One source as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// How its payloads are shaped.
    pub format: Format,
    /// How its requests prove where they come from.
    pub auth: AuthConfig,
    /// For `format: json`: where the alerts are.
    #[serde(default)]
    pub mapping: Option<JsonMapping>,
    /// Requests per second, with a burst; over it the source gets 429.
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// The largest body accepted, KiB (default 1024).
    #[serde(default = "default_body_limit_kib")]
    pub body_limit_kib: usize,
}

fn default_body_limit_kib() -> usize {
    1024
}

/// A payload format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Prometheus Alertmanager's webhook, `version: "4"`.
    Alertmanager,
    /// Grafana-managed alerting's webhook contact point.
    Grafana,
    /// Any JSON, read through a [`JsonMapping`].
    Json,
}

/// Where a generic JSON payload keeps its alerts: JSON Pointers (RFC 6901).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonMapping {
    /// The array of alerts in the body (`/findings`); the whole body is one alert when absent.
    #[serde(default)]
    pub alerts: Option<String>,
    /// Inside an alert: its labels object (default `/labels`; the alert itself when missing).
    #[serde(default)]
    pub labels: Option<String>,
    /// Inside an alert: its stable identity (`/id`); with an `Idempotency-Key` header, the header wins.
    #[serde(default)]
    pub fingerprint: Option<String>,
    /// Inside an alert: its status (`/state`); every alert is firing when absent.
    #[serde(default)]
    pub status: Option<String>,
    /// The status values that mean resolved (default `["resolved"]`).
    #[serde(default)]
    pub resolved: Vec<String>,
}

/// How a source authenticates: exactly one of `bearer`, `basic`, `hmac`.
/// Alertmanager cannot sign, so bearer and basic are offered beside HMAC.
/// (A struct of options rather than an enum: YAML writes `{bearer: {…}}`.)
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer: Option<BearerConfig>,
    /// `Authorization: Basic …`.
    #[serde(default)]
    pub basic: Option<BasicConfig>,
    /// HMAC-SHA256 over `"{timestamp}.{raw body}"`, hex, with a replay window.
    #[serde(default)]
    pub hmac: Option<HmacConfig>,
}

/// A bearer token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerConfig {
    /// The token, inline.
    #[serde(default)]
    pub token: Option<Secret>,
    /// The environment variable holding it.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// Basic credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicConfig {
    /// The user name.
    pub username: String,
    /// The password, inline.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The environment variable holding it.
    #[serde(default)]
    pub password_env: Option<String>,
}

/// A shared HMAC key and where the signature and timestamp travel.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacConfig {
    /// The shared secret, inline.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The environment variable holding it.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The header carrying the signature (default `X-Cordon-Signature`; `sha256=` prefix allowed).
    #[serde(default = "default_signature_header")]
    pub header: String,
    /// The header carrying the Unix timestamp (default `X-Cordon-Timestamp`).
    #[serde(default = "default_timestamp_header")]
    pub timestamp_header: String,
    /// How far the timestamp may be from now, seconds (default 300).
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_signature_header() -> String {
    "X-Cordon-Signature".to_string()
}

fn default_timestamp_header() -> String {
    "X-Cordon-Timestamp".to_string()
}

fn default_tolerance() -> u64 {
    300
}

/// A token bucket: `burst` requests at once, refilled at `rate_per_sec`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (default 20).
    #[serde(default = "default_rate")]
    pub rate_per_sec: f64,
    /// Requests allowed at once (default 40).
    #[serde(default = "default_burst")]
    pub burst: u32,
}

fn default_rate() -> f64 {
    20.0
}

fn default_burst() -> u32 {
    40
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            rate_per_sec: default_rate(),
            burst: default_burst(),
        }
    }
}

/// The `webhooks:` section: sources by name (`POST /hooks/<name>`).
pub type WebhooksConfig = BTreeMap<String, SourceConfig>;

/// A secret given inline or by environment variable — exactly one.
pub(crate) fn resolve_secret(
    source: &str,
    what: &str,
    inline: Option<&Secret>,
    env: Option<&str>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, String> {
    match (inline, env) {
        (Some(secret), None) if !secret.expose().is_empty() => Ok(secret.clone()),
        (None, Some(var)) => match lookup(var) {
            Some(value) if !value.is_empty() => Ok(Secret::new(value)),
            _ => Err(format!(
                "webhook source `{source}`: the environment variable `{var}` ({what}) is not set"
            )),
        },
        (Some(_), Some(_)) => Err(format!(
            "webhook source `{source}`: give the {what} inline or by `_env`, not both"
        )),
        _ => Err(format!("webhook source `{source}`: the {what} is missing")),
    }
}
