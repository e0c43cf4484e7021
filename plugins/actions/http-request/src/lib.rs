//! `http-request`: one HTTP request through a named connection.
//!
//! The operator's configuration holds the connection's base URL, TLS
//! settings and credentials; the playbook names the connection and a path.
//! The plugin declares `http:*`, so the operator decides which connections
//! it may use (a connection not granted is `denied`). A status outside
//! `expect_status` (default: any 2xx) fails the step; a 5xx, 408 or 429 is
//! retryable, since the service may recover.

#![forbid(unsafe_code)]

use cordon_plugin_sdk::http::{Method as HttpMethod, Request, send};
use cordon_plugin_sdk::{Call, Capability, Error, Plugin, export_plugin, intent};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The request methods.
// Variants documented with plain comments: doc comments would make
// schemars describe the enum as `oneOf` consts, and the validator's message
// for a wrong value would list schemas instead of the allowed values.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    // `GET`
    Get,
    // `POST`
    Post,
    // `PUT`
    Put,
    // `PATCH`
    Patch,
    // `DELETE`
    Delete,
}

/// The step's input.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The named connection.
    #[schemars(length(min = 1))]
    pub connection: String,
    /// The method.
    pub method: Method,
    /// Path and query, relative to the connection's base URL.
    #[schemars(regex(pattern = r"^/"))]
    pub path: String,
    /// A JSON body.
    #[serde(default)]
    pub body: Option<Value>,
    /// Statuses that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
}

/// The step's output.
#[derive(Debug, Deserialize, Serialize, JsonSchema)]
pub struct Output {
    /// The response's status (0 in a dry run).
    pub status: u16,
    /// The response body: JSON when it parses, else text.
    pub body: Value,
    /// Only planned (dry run): nothing was sent.
    pub dry_run: bool,
}

/// The plugin.
#[derive(Debug)]
pub struct HttpRequest;

impl Plugin for HttpRequest {
    type Input = Input;
    type Output = Output;
    const NAME: &'static str = "http-request";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Sends one HTTP request through a named connection from the operator's configuration (the host supplies address and credentials).";
    const CAPABILITIES: &'static [Capability] = &[Capability::Http("*")];
    const IDEMPOTENT: bool = false;
    const COMPENSABLE: bool = false;
    const IRREVERSIBLE: bool = false;

    fn execute(call: &Call, input: Input) -> Result<Output, Error> {
        let method = match input.method {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Patch => HttpMethod::Patch,
            Method::Delete => HttpMethod::Delete,
        };
        let mut request = Request::new(method, input.path.clone())
            .header("idempotency-key", call.idempotency_key.clone());
        if let Some(body) = &input.body {
            request = request.json(body)?;
        }
        if call.dry_run {
            intent::declare(
                "http.request",
                &input.connection,
                &json!({"method": input.method, "path": input.path}),
            )?;
            return Ok(Output {
                status: 0,
                body: Value::Null,
                dry_run: true,
            });
        }
        let response = send(&input.connection, &request)?;
        let body = serde_json::from_slice(&response.body).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&response.body).into_owned())
        });
        let expected = if input.expect_status.is_empty() {
            response.is_success()
        } else {
            input.expect_status.contains(&response.status)
        };
        if !expected {
            let message = format!(
                "{} {} on {} answered {}",
                serde_json::to_string(&input.method).unwrap_or_default(),
                input.path,
                input.connection,
                response.status
            );
            return Err(
                if response.status >= 500 || matches!(response.status, 408 | 429) {
                    Error::retryable(message)
                } else {
                    Error::permanent(message)
                },
            );
        }
        Ok(Output {
            status: response.status,
            body,
            dry_run: false,
        })
    }
}

export_plugin!(HttpRequest);
