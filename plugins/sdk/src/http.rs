//! HTTP through named connections (WIT interface `http`). Needs
//! [`Capability::Http`](crate::Capability::Http) for every connection a call
//! names; the host refuses any other with
//! [`HostError::Denied`](crate::HostError::Denied), which ends the attempt.
//!
//! The host adds the connection's base URL and credentials. Paths start with
//! `/` and are appended to the base URL as text. Headers the host owns
//! (`authorization`, `cookie`, `host`, framing and hop-by-hop headers) are
//! refused with `Denied`. Redirects are not followed. In a dry run nothing is
//! sent, whatever the method: [`send`] fails with
//! [`HostError::DryRun`](crate::HostError::DryRun).
//!
//! ```no_run
//! use cordon_plugin_sdk::http::{self, Request};
//!
//! # fn revoke() -> Result<(), cordon_plugin_sdk::Error> {
//! let request = Request::post("/api/v1/revoke").json(&serde_json::json!({"serial": "1003"}))?;
//! let response = http::send("fleet-ca", &request)?;
//! if !response.is_success() {
//!     return Err(cordon_plugin_sdk::Error::retryable(format!("CA answered {}", response.status)));
//! }
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::cordon::plugin::http as wit;
use crate::mqtt::millis;
use crate::{Error, HostError};

/// The request methods a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
}

/// A request relative to a connection's base URL; build it with
/// [`Request::new`] or a method shortcut, then the builder methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
}

impl Request {
    /// A request with no headers, no body and the connection's default
    /// timeout. `path` (with an optional query) starts with `/`.
    pub fn new(method: Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
        }
    }

    /// A `GET` request.
    pub fn get(path: impl Into<String>) -> Request {
        Request::new(Method::Get, path)
    }

    /// A `POST` request.
    pub fn post(path: impl Into<String>) -> Request {
        Request::new(Method::Post, path)
    }

    /// A `PUT` request.
    pub fn put(path: impl Into<String>) -> Request {
        Request::new(Method::Put, path)
    }

    /// A `PATCH` request.
    pub fn patch(path: impl Into<String>) -> Request {
        Request::new(Method::Patch, path)
    }

    /// A `DELETE` request.
    pub fn delete(path: impl Into<String>) -> Request {
        Request::new(Method::Delete, path)
    }

    /// A `HEAD` request.
    pub fn head(path: impl Into<String>) -> Request {
        Request::new(Method::Head, path)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `content-type: application/json`.
    pub fn json<T: Serialize + ?Sized>(self, body: &T) -> Result<Request, Error> {
        let body = serde_json::to_vec(body).map_err(|error| {
            Error::permanent(format!("request body does not serialize: {error}"))
        })?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Sets how long to wait for the whole response (the host shortens it to
    /// the attempt's remaining time).
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }
}

/// The response to a request, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code (a 3xx is returned as is; redirects are not followed).
    pub status: u16,
    /// The headers, minus those that carry credentials.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|error| {
            Error::permanent(format!(
                "response (status {}) is not the expected JSON: {error}",
                self.status
            ))
        })
    }
}

/// Sends `request` on `connection`. Any status, 4xx and 5xx included, is a
/// response; an error means no response was obtained.
pub fn send(connection: &str, request: &Request) -> Result<Response, HostError> {
    let request = wit::Request {
        method: match request.method {
            Method::Get => wit::Method::Get,
            Method::Head => wit::Method::Head,
            Method::Post => wit::Method::Post,
            Method::Put => wit::Method::Put,
            Method::Patch => wit::Method::Patch,
            Method::Delete => wit::Method::Delete,
        },
        path: request.path.clone(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| wit::Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body: request.body.clone(),
        timeout_ms: request.timeout.map(millis),
    };
    let response = wit::send(connection, &request)?;
    Ok(Response {
        status: response.status,
        headers: response
            .headers
            .into_iter()
            .map(|header| (header.name, header.value))
            .collect(),
        body: response.body,
    })
}
