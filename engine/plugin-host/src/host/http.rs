//! `cordon:plugin/http`: requests on named connections. The plugin gives a
//! path, never a host; headers that carry credentials or framing belong to
//! the host.

use std::time::Duration;

use serde_json::json;

use crate::bindings::HostError;
use crate::bindings::http::{Header, Host, Method, Request, Response};
use crate::capability::Interface;
use crate::host::{HostState, HttpRequest, sanitise};

/// The largest request body.
const BODY_BYTES: usize = 1 << 20;

/// Headers the host owns (lowercase); `x-forwarded-*` too.
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "forwarded",
    "connection",
    "content-length",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
];

fn forbidden_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    FORBIDDEN_HEADERS.contains(&name.as_str()) || name.starts_with("x-forwarded-")
}

/// A path the contract allows: starts with `/` but not `//`; no `.` or `..`
/// segment (also percent-encoded), no `#`, whitespace or control character.
pub(crate) fn valid_path(path: &str) -> bool {
    if !path.starts_with('/') || path.starts_with("//") || path.len() > 8192 {
        return false;
    }
    if path
        .chars()
        .any(|c| c == '#' || c.is_whitespace() || c.is_control())
    {
        return false;
    }
    let path_part = path.split('?').next().unwrap_or("");
    let decoded = path_part.to_ascii_lowercase().replace("%2e", ".");
    !decoded
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

impl Host for HostState {
    async fn send(
        &mut self,
        connection: String,
        request: Request,
    ) -> wasmtime::Result<Result<Response, HostError>> {
        if !self
            .context
            .grants
            .allows_connection(Interface::Http, &connection)
        {
            let why = format!(
                "http connection `{}` is not declared and granted",
                sanitise(&connection, 64)
            );
            return Ok(Err(self.deny(why)));
        }
        if let Some(header) = request.headers.iter().find(|h| forbidden_header(&h.name)) {
            let why = format!(
                "header `{}` belongs to the host",
                sanitise(&header.name, 64)
            );
            return Ok(Err(self.deny(why)));
        }
        if !valid_path(&request.path) {
            return Ok(Err(HostError::Invalid(
                "the path breaks the contract's rules".into(),
            )));
        }
        if request.body.len() > BODY_BYTES {
            return Ok(Err(HostError::Invalid(format!(
                "body over {BODY_BYTES} bytes"
            ))));
        }
        let method = method_name(request.method);
        let detail = json!({"body_bytes": request.body.len()});
        if let Some(dry) = self.dry_run(
            "http.request",
            format!("{connection}:{method} {}", request.path),
            detail,
        ) {
            return Ok(Err(dry));
        }
        let Some(service) = self.context.services.connections.clone() else {
            return Ok(Err(HostError::Unavailable(
                "this node has no connections configured".into(),
            )));
        };
        let budget = self.budget(
            request
                .timeout_ms
                .map(|ms| Duration::from_millis(u64::from(ms))),
        );
        let call = HttpRequest {
            method,
            path: request.path,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: request.body,
        };
        Ok(service
            .http_send(connection, call, budget)
            .await
            .map(|r| Response {
                status: r.status,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(name, value)| Header { name, value })
                    .collect(),
                body: r.body,
            })
            .map_err(HostError::from))
    }
}

#[cfg(test)]
mod tests {
    use super::{forbidden_header, valid_path};

    #[test]
    fn paths_cannot_escape_the_base_url() {
        assert!(valid_path("/api/v1/revoke?serial=1f"));
        for bad in [
            "api",
            "//evil.example/x",
            "/a/../b",
            "/a/%2E%2e/b",
            "/a#frag",
            "/a b",
            "/./x",
        ] {
            assert!(!valid_path(bad), "{bad} accepted");
        }
    }

    #[test]
    fn credential_and_framing_headers_belong_to_the_host() {
        for h in [
            "Authorization",
            "cookie",
            "X-Forwarded-For",
            "Host",
            "transfer-encoding",
        ] {
            assert!(forbidden_header(h), "{h}");
        }
        assert!(!forbidden_header("content-type"));
    }
}
