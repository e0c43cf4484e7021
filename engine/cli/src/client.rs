//! The CLI's client mode: a small typed client of a Cordon server's API
//! (`--server URL --token T`, or `CORDON_SERVER` and `CORDON_TOKEN`).
//!
//! Requests and answers are the server's own types (`cordon_server::views`),
//! so the client cannot drift from the API. An API refusal is a
//! [`ClientError::Api`] carrying the server's stable code; commands print it
//! as `error[code]: message`. The token only ever travels in the
//! `Authorization` header: it is in no URL, message or log.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::anyhow;
use cordon_server::ErrorBody;
use cordon_server::views::{
    ControlOutcome, RunSummaryView, RunView, StartRun, StartedRun, VersionView,
};
use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cli::RemoteArgs;
use crate::{Output, exit};

/// A client of one server, with one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl std::fmt::Debug for Client {
    // The token stays out of any `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request with a stable code.
    #[error("error[{code}]: {message}")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The stable code (`forbidden`, `unknown_run`…).
        code: String,
        /// The server's message.
        message: String,
        /// Structured details, if any.
        details: Option<serde_json::Value>,
    },
    /// The server could not be reached, or the exchange broke off.
    #[error("cannot reach the server at {url}: {source}")]
    Transport {
        /// Where (without credentials: there are none in URLs).
        url: String,
        /// What happened.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not what Cordon's API answers.
    #[error("the server at {url} answered something unexpected ({status}): {why}")]
    Unexpected {
        /// Where.
        url: String,
        /// The HTTP status.
        status: StatusCode,
        /// What did not fit.
        why: String,
    },
}

impl Client {
    /// A client of the server at `server` (`http://host:port`), presenting `token`.
    pub fn new(server: &str, token: &str) -> anyhow::Result<Client> {
        // One TLS stack (rustls with ring) for https:// servers.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut base =
            Url::parse(server).map_err(|e| anyhow!("--server `{server}` is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(anyhow!(
                "--server must be an http:// or https:// URL, not `{server}`"
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(anyhow!("--server must not carry credentials; use --token"));
        }
        base.set_query(None);
        let http = reqwest::Client::builder()
            .user_agent(concat!("cordon/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(std::time::Duration::from_secs(5))
            .timeout(std::time::Duration::from_secs(60))
            .build()?;
        Ok(Client {
            http,
            base,
            token: token.to_string(),
        })
    }

    /// The client `--server`/`--token` ask for, if any.
    pub fn from_args(remote: &RemoteArgs) -> anyhow::Result<Option<Client>> {
        let Some(server) = &remote.server else {
            return Ok(None);
        };
        let Some(token) = remote.token.as_deref().filter(|t| !t.is_empty()) else {
            return Err(anyhow!(
                "--server needs a token: --token or CORDON_TOKEN (`cordon token create`)"
            ));
        };
        Client::new(server, token).map(Some)
    }

    /// `{base}/api/v1/{segments…}`, each segment percent-encoded.
    fn url(&self, segments: &[&str], query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(["api", "v1"]).extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }

    /// `GET /api/v1/{segments…}?{query}`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        self.call(Method::GET, segments, query, None).await
    }

    /// `POST /api/v1/{segments…}` with a JSON body.
    pub async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Unexpected {
            url: self.url(segments, &[]).to_string(),
            status: StatusCode::BAD_REQUEST,
            why: format!("the request does not serialise: {e}"),
        })?;
        self.call(Method::POST, segments, &[], Some(body)).await
    }

    /// `POST /api/v1/{segments…}` without a body (actions on a resource).
    pub async fn post_empty<T: DeserializeOwned>(
        &self,
        segments: &[&str],
    ) -> Result<T, ClientError> {
        self.call(Method::POST, segments, &[], None).await
    }

    /// One call: the bearer token, an optional JSON body, a JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let url = self.url(segments, query);
        let shown = url.as_str().to_string();
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(&self.token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let transport = |source| ClientError::Transport {
            url: shown.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Unexpected {
                url: shown.clone(),
                status,
                why: e.to_string(),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) => Err(ClientError::Api {
                status,
                code: e.code,
                message: e.message,
                details: e.details,
            }),
            Err(_) => Err(ClientError::Unexpected {
                url: shown,
                status,
                why: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            }),
        }
    }

    /// `GET /runs`.
    pub async fn runs(
        &self,
        states: &[String],
        limit: u64,
    ) -> Result<Vec<RunSummaryView>, ClientError> {
        let mut query = vec![("limit", limit.to_string())];
        if !states.is_empty() {
            query.push(("state", states.join(",")));
        }
        self.get(&["runs"], &query).await
    }

    /// `GET /runs/{id}`.
    pub async fn run(&self, id: &str) -> Result<RunView, ClientError> {
        self.get(&["runs", id], &[]).await
    }

    /// `POST /runs`.
    pub async fn start_run(&self, request: &StartRun) -> Result<StartedRun, ClientError> {
        self.post(&["runs"], request).await
    }

    /// `POST /runs/{id}/{cancel|pause|resume}`.
    pub async fn control(&self, id: &str, verb: &str) -> Result<ControlOutcome, ClientError> {
        self.post_empty(&["runs", id, verb]).await
    }

    /// `GET /playbooks/{name}/versions/{version}` (`None`: the newest).
    pub async fn version(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<VersionView, ClientError> {
        let version = version.unwrap_or("latest");
        self.get(&["playbooks", name, "versions", version], &[])
            .await
    }

    /// The input declarations of a published version.
    pub async fn inputs(
        &self,
        version: &VersionView,
    ) -> anyhow::Result<BTreeMap<String, cordon_playbook::model::InputSpec>> {
        serde_json::from_value(version.inputs.clone())
            .map_err(|e| anyhow!("the server's input declarations do not read: {e}"))
    }
}

/// Prints a failed call as `error[code]: message` (with any listed
/// details) and gives the exit code: a refused request is a usage error.
pub fn report(error: &ClientError, out: &mut Output) -> anyhow::Result<u8> {
    writeln!(out.stderr, "{error}")?;
    if let ClientError::Api {
        details: Some(serde_json::Value::Array(items)),
        ..
    } = error
    {
        for item in items {
            let line = item
                .as_str()
                .map_or_else(|| item.to_string(), str::to_string);
            writeln!(out.stderr, "  - {line}")?;
        }
    }
    Ok(exit::USAGE)
}
