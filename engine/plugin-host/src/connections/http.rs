//! HTTP on named connections with reqwest: one pooled client per
//! connection, no redirects, host-owned headers added to every request,
//! bounded responses.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Certificate, Client, Method, Url};

use super::config::{ConnectionConfig, ConnectionsError, read_pem};
use super::{transport_failure, unavailable};
use crate::host::{HostFailure, HttpRequest, HttpResponse};

/// The largest response body a plugin gets; a larger one fails the call.
const BODY_BYTES: usize = 4 << 20;

/// Response headers that carry credentials and never reach a plugin.
const HIDDEN_RESPONSE_HEADERS: &[&str] = &[
    "set-cookie",
    "set-cookie2",
    "authorization",
    "proxy-authorization",
];

/// Headers an operator cannot configure: the HTTP client owns framing.
const FRAMING_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "te",
    "trailer",
    "upgrade",
    "keep-alive",
    "proxy-connection",
];

/// One configured server.
#[derive(Debug)]
pub(crate) struct HttpConnection {
    name: String,
    client: Client,
    base: Url,
    /// The base URL as text without its trailing `/`: a request's path is
    /// appended to it as text, never resolved against it.
    prefix: String,
    /// Headers added to every request, marked sensitive (hidden in `Debug`).
    headers: HeaderMap,
    timeout: Duration,
}

impl HttpConnection {
    /// Checks the settings and builds the client (reading the CA file now).
    pub(crate) fn new(
        name: &str,
        settings: &ConnectionConfig,
    ) -> Result<HttpConnection, ConnectionsError> {
        let ConnectionConfig::Http {
            base_url,
            headers,
            timeout_ms,
            tls,
        } = settings
        else {
            return Err(ConnectionsError::invalid(name, "not an HTTP connection"));
        };
        let invalid = |reason: String| ConnectionsError::invalid(name, reason);
        let base =
            Url::parse(base_url).map_err(|e| invalid(format!("base_url is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(invalid(
                "base_url must be an http:// or https:// URL".into(),
            ));
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(invalid(
                "base_url must not carry credentials (configure headers instead)".into(),
            ));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("base_url must not have a query or fragment".into()));
        }
        if *timeout_ms == 0 {
            return Err(invalid("timeout_ms must be at least 1".into()));
        }
        let mut host_headers = HeaderMap::new();
        for (header, value) in headers {
            let lower = header.to_ascii_lowercase();
            if FRAMING_HEADERS.contains(&lower.as_str()) {
                return Err(invalid(format!(
                    "header `{lower}` is set by the HTTP client"
                )));
            }
            let header_name = HeaderName::from_bytes(lower.as_bytes())
                .map_err(|_| invalid(format!("{header:?} is not a header name")))?;
            let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
                invalid(format!(
                    "header `{lower}` has a value that is not valid in HTTP"
                ))
            })?;
            value.set_sensitive(true);
            host_headers.insert(header_name, value);
        }
        let mut builder = Client::builder()
            .redirect(Policy::none())
            // Only the configured address is ever contacted: a proxy from
            // the environment would see every credential.
            .no_proxy()
            .user_agent(concat!("cordon/", env!("CARGO_PKG_VERSION")));
        if let Some(tls) = tls {
            if base.scheme() != "https" {
                return Err(invalid("tls is set but base_url is not https://".into()));
            }
            if let Some(path) = &tls.ca_file {
                let certs = Certificate::from_pem_bundle(&read_pem(name, "CA", path)?)
                    .ok()
                    .filter(|certs| !certs.is_empty())
                    .ok_or_else(|| {
                        invalid(format!("{} holds no PEM certificate", path.display()))
                    })?;
                builder = builder.tls_certs_only(certs);
            }
        }
        let client = builder
            .build()
            .map_err(|e| invalid(format!("the HTTP client cannot be built: {e}")))?;
        Ok(HttpConnection {
            name: name.to_string(),
            client,
            prefix: base.as_str().trim_end_matches('/').to_string(),
            base,
            headers: host_headers,
            timeout: Duration::from_millis(*timeout_ms),
        })
    }

    /// `http.send`. The whole exchange (connect, request, response body) is
    /// bounded by the shorter of `timeout` and the connection's own.
    pub(crate) async fn send(
        &self,
        request: HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, HostFailure> {
        let timeout = timeout.min(self.timeout);
        let url = self.url(&request.path)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| HostFailure::Invalid("not an HTTP method".into()))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HostFailure::Invalid("a header name is not valid in HTTP".into()))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| HostFailure::Invalid("a header value is not valid in HTTP".into()))?;
            headers.append(name, value);
        }
        // The host's headers replace any of the same name the plugin sent.
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        let mut call = self.client.request(method, url).headers(headers);
        if !request.body.is_empty() {
            call = call.body(request.body);
        }
        match tokio::time::timeout(timeout, self.exchange(call)).await {
            Ok(result) => result,
            Err(_) => Err(HostFailure::Timeout(format!(
                "connection `{}`: no complete response within {} ms",
                self.name,
                timeout.as_millis()
            ))),
        }
    }

    /// The request URL: the base URL's text plus the (already validated)
    /// path, checked again to be below the base URL on the same origin.
    fn url(&self, path: &str) -> Result<Url, HostFailure> {
        let escapes =
            || HostFailure::Invalid("the path would leave the connection's base URL".into());
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(escapes());
        }
        let url = Url::parse(&format!("{}{path}", self.prefix)).map_err(|_| escapes())?;
        let below = format!("{}/", self.base.path().trim_end_matches('/'));
        if url.scheme() != self.base.scheme()
            || url.host() != self.base.host()
            || url.port_or_known_default() != self.base.port_or_known_default()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
            || !url.path().starts_with(&below)
        {
            return Err(escapes());
        }
        Ok(url)
    }

    async fn exchange(&self, call: reqwest::RequestBuilder) -> Result<HttpResponse, HostFailure> {
        let mut response = call.send().await.map_err(|e| self.failure(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(name, _)| {
                !HIDDEN_RESPONSE_HEADERS.contains(&name.as_str())
                    && !self.headers.contains_key(*name)
            })
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let too_large = || {
            HostFailure::Invalid(format!(
                "connection `{}`: the response body is over {BODY_BYTES} bytes",
                self.name
            ))
        };
        if response
            .content_length()
            .is_some_and(|length| length > BODY_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failure(&e))? {
            if body.len() + chunk.len() > BODY_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// A failed exchange as the plugin sees it. reqwest's own message
    /// contains the URL, so it only goes to the host's log.
    fn failure(&self, error: &reqwest::Error) -> HostFailure {
        tracing::warn!(connection = %self.name, error = %error, "http request failed");
        if error.is_timeout() {
            return HostFailure::Timeout(format!(
                "connection `{}`: the server did not answer in time",
                self.name
            ));
        }
        if error.is_connect() {
            let why = transport_failure(error)
                .unwrap_or_else(|| "could not connect (name resolution or network)".into());
            return unavailable(&self.name, &why);
        }
        let why = transport_failure(error).unwrap_or_else(|| "the exchange failed".into());
        unavailable(&self.name, &format!("no complete response ({why})"))
    }
}

#[cfg(test)]
mod tests {
    use super::HttpConnection;
    use crate::connections::ConnectionConfig;

    fn connection(base_url: &str) -> HttpConnection {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = ConnectionConfig::Http {
            base_url: base_url.into(),
            headers: Default::default(),
            timeout_ms: 1000,
            tls: None,
        };
        HttpConnection::new("c", &settings).expect("connection")
    }

    #[test]
    fn paths_are_appended_as_text_and_stay_below_the_base() {
        let api = connection("http://127.0.0.1:8080/api/");
        let url = api.url("/x/y?z=1&w=%2F").expect("url");
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/api/x/y?z=1&w=%2F");
        let root = connection("https://ca.example");
        assert_eq!(
            root.url("/health").expect("url").as_str(),
            "https://ca.example/health"
        );
        for bad in [
            "//evil.example/x",
            "x",
            "/../x",
            "/%2e%2e/x",
            "/@evil.example",
        ] {
            match api.url(bad) {
                Err(_) => {}
                Ok(url) => assert!(
                    url.host_str() == Some("127.0.0.1") && url.path().starts_with("/api/"),
                    "{bad} -> {url}"
                ),
            }
        }
        // A backslash is a path separator to URL parsers: still the same host.
        let url = root.url("/\\evil.example/x").expect("url");
        assert_eq!(url.host_str(), Some("ca.example"));
    }
}
