//! Monitoring webhooks: `POST /hooks/{source}`.
//!
//! A source is configured by the operator ([`config`]): its format, its
//! authentication ([`auth`]), a rate limit and a body limit. A request goes
//! through, in order: the source (404 `unknown_webhook_source`), its token
//! bucket (429 `webhook_rate_limited` with `Retry-After`, before anything is
//! read, so one source's flood costs the others nothing), the body limit
//! (413), authentication over the raw body (401 `webhook_unauthorized`,
//! audited with its reason), the payload ([`payload`], 400
//! `invalid_webhook_payload`), then every published playbook binding the
//! source ([`deliver`]).

pub(crate) mod auth;
pub mod config;
pub(crate) mod deliver;
pub(crate) mod payload;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use cordon_playbook::model::WebhookBinding;

use self::auth::Auth;
use self::config::{Format, JsonMapping, RateLimit, WebhooksConfig, resolve_secret};

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// One configured source, secrets resolved.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) format: Format,
    pub(crate) mapping: Option<JsonMapping>,
    pub(crate) auth: Auth,
    pub(crate) body_limit: usize,
    rate: RateLimit,
    bucket: Mutex<Bucket>,
}

impl Source {
    /// Takes a token, or says how long until one is there.
    pub(crate) fn admit(&self, now: Instant) -> Result<(), Duration> {
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let burst = f64::from(self.rate.burst);
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate.rate_per_sec).min(burst);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.rate.rate_per_sec;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::from_secs(1)))
        }
    }
}

/// The configured sources, and the webhook bindings of published versions
/// (cached by digest: a published version never changes).
#[derive(Debug, Default)]
pub struct Webhooks {
    sources: BTreeMap<String, Arc<Source>>,
    bindings: Mutex<HashMap<String, Arc<Vec<WebhookBinding>>>>,
}

fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

impl Webhooks {
    /// The sources of a `webhooks:` section, with each secret read (inline
    /// or from the environment through `env`). Refuses, naming the source,
    /// a bad name, a missing or doubly given secret, a mapping on a native
    /// format, or a rate limit that admits nothing.
    pub fn from_config(
        config: &WebhooksConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Webhooks, String> {
        let mut sources = BTreeMap::new();
        for (name, source) in config {
            if !valid_name(name) {
                return Err(format!(
                    "webhook source `{name}`: a name is lowercase letters, digits and `-` (it is the path /hooks/{name})"
                ));
            }
            let auth = match (&source.auth.bearer, &source.auth.basic, &source.auth.hmac) {
                (Some(bearer), None, None) => Auth::Bearer(resolve_secret(
                    name,
                    "bearer token",
                    bearer.token.as_ref(),
                    bearer.token_env.as_deref(),
                    env,
                )?),
                (None, Some(basic), None) => {
                    if basic.username.is_empty() || basic.username.contains(':') {
                        return Err(format!(
                            "webhook source `{name}`: the basic-auth user name must be non-empty and without `:`"
                        ));
                    }
                    Auth::Basic {
                        username: basic.username.clone(),
                        password: resolve_secret(
                            name,
                            "basic-auth password",
                            basic.password.as_ref(),
                            basic.password_env.as_deref(),
                            env,
                        )?,
                    }
                }
                (None, None, Some(hmac)) => {
                    for h in [&hmac.header, &hmac.timestamp_header] {
                        if axum::http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                            return Err(format!(
                                "webhook source `{name}`: `{h}` is not a header name"
                            ));
                        }
                    }
                    Auth::Hmac {
                        secret: resolve_secret(
                            name,
                            "HMAC secret",
                            hmac.secret.as_ref(),
                            hmac.secret_env.as_deref(),
                            env,
                        )?,
                        header: hmac.header.to_ascii_lowercase(),
                        timestamp_header: hmac.timestamp_header.to_ascii_lowercase(),
                        tolerance_secs: hmac.tolerance_secs,
                    }
                }
                _ => {
                    return Err(format!(
                        "webhook source `{name}`: `auth` needs exactly one of `bearer`, `basic`, `hmac`"
                    ));
                }
            };
            if source.mapping.is_some() && source.format != Format::Json {
                return Err(format!(
                    "webhook source `{name}`: `mapping` is only for `format: json`"
                ));
            }
            let rate = source.rate_limit;
            if !(rate.rate_per_sec.is_finite() && rate.rate_per_sec > 0.0) || rate.burst == 0 {
                return Err(format!(
                    "webhook source `{name}`: `rate_limit` needs rate_per_sec > 0 and burst ≥ 1"
                ));
            }
            sources.insert(
                name.clone(),
                Arc::new(Source {
                    name: name.clone(),
                    format: source.format,
                    mapping: source.mapping.clone(),
                    auth,
                    body_limit: source.body_limit_kib.saturating_mul(1024).max(1),
                    rate,
                    bucket: Mutex::new(Bucket {
                        tokens: f64::from(rate.burst),
                        last: Instant::now(),
                    }),
                }),
            );
        }
        Ok(Webhooks {
            sources,
            bindings: Mutex::default(),
        })
    }

    /// A source by name.
    pub(crate) fn source(&self, name: &str) -> Option<Arc<Source>> {
        self.sources.get(name).cloned()
    }

    /// The names of the configured sources.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// The cached bindings of the version with this digest.
    pub(crate) fn cached_bindings(&self, digest: &str) -> Option<Arc<Vec<WebhookBinding>>> {
        self.bindings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(digest)
            .cloned()
    }

    /// Remembers the bindings of the version with this digest.
    pub(crate) fn cache_bindings(
        &self,
        digest: &str,
        bindings: Vec<WebhookBinding>,
    ) -> Arc<Vec<WebhookBinding>> {
        let bindings = Arc::new(bindings);
        self.bindings
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(digest.to_string(), bindings.clone());
        bindings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_admits_its_burst_then_refuses_with_a_wait() {
        let config: WebhooksConfig = serde_json::from_value(serde_json::json!({
            "am": {"format": "alertmanager", "auth": {"bearer": {"token": "t"}},
                   "rate_limit": {"rate_per_sec": 2.0, "burst": 3}}
        }))
        .expect("config");
        let hooks = Webhooks::from_config(&config, &|_| None).expect("valid");
        let source = hooks.source("am").expect("source");
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(source.admit(t0).is_ok());
        }
        let wait = source.admit(t0).expect_err("over the burst");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert!(source.admit(t0 + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn bad_sources_are_refused_naming_them() {
        for (config, needle) in [
            (
                serde_json::json!({"Bad": {"format": "json", "auth": {"bearer": {"token": "t"}}}}),
                "lowercase",
            ),
            (
                serde_json::json!({"a": {"format": "json", "auth": {"bearer": {"token_env": "NOPE_UNSET"}}}}),
                "NOPE_UNSET",
            ),
            (
                serde_json::json!({"a": {"format": "json", "auth": {"hmac": {"secret": "s", "secret_env": "X"}}}}),
                "not both",
            ),
            (
                serde_json::json!({"a": {"format": "grafana", "auth": {"bearer": {"token": "t"}}, "mapping": {}}}),
                "only for",
            ),
            (
                serde_json::json!({"a": {"format": "json", "auth": {"bearer": {"token": "t"}, "basic": {"username": "u", "password": "p"}}}}),
                "exactly one",
            ),
            (
                serde_json::json!({"a": {"format": "json", "auth": {}}}),
                "exactly one",
            ),
            (
                serde_json::json!({"a": {"format": "json", "auth": {"bearer": {"token": "t"}}, "rate_limit": {"burst": 0}}}),
                "burst",
            ),
        ] {
            let config: WebhooksConfig = serde_json::from_value(config).expect("shape");
            let err = Webhooks::from_config(&config, &|_| None).expect_err("refused");
            assert!(err.contains(needle), "{err}");
        }
        let config: WebhooksConfig = serde_json::from_value(serde_json::json!({
            "a": {"format": "json", "auth": {"hmac": {"secret": "hunter2"}}}}))
        .expect("shape");
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "secrets never print"
        );
    }
}
