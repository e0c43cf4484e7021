//! Reading requests, with every refusal an [`ApiError`]: JSON bodies
//! (content type, size, syntax, shape — each its own code), YAML bodies,
//! path and query parameters.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// A JSON request body, deserialised into `T` (whose structs should all be
/// `#[serde(deny_unknown_fields)]`). Refuses a content type other than
/// JSON (415), a body over the limit (413), text that is not JSON (400
/// `malformed_json`) and JSON of the wrong shape — wrong types, unknown or
/// missing fields — (422 `invalid_body`, with the path of the offending value).
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A playbook as the body: YAML text (`application/yaml`, `text/yaml`,
/// `text/plain`), at most the body limit.
#[derive(Debug, Clone)]
pub struct YamlBody(pub Bytes);

/// Path parameters, refused with `invalid_path`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// Query parameters, refused with `invalid_query`.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The content type's essence (`application/json` of `application/json; charset=utf-8`).
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    Some(essence)
}

/// The whole body, or 413 when it is (or says it is) over `limit`.
pub(crate) async fn body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::BodyTooLarge,
            format!("the body is larger than the server accepts ({limit} bytes)"),
        )
        .with_details(json!({"limit": limit}))
    };
    // A declared length over the limit is refused before anything is read.
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    if declared.is_some_and(|n| n > limit as u64) {
        drain(body).await;
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::new(
                ErrorCode::MalformedJson,
                "the body broke off before its end",
            ));
        };
        if let Some(data) = frame.data_ref() {
            if bytes.len() + data.len() > limit {
                drain(body).await;
                return Err(too_large());
            }
            bytes.extend_from_slice(data);
        }
    }
    Ok(Bytes::from(bytes))
}

/// How much of a refused body is read and dropped before answering.
const DRAIN_AT_MOST: usize = 8 << 20;

/// Reads and drops what is left of a refused body (up to
/// [`DRAIN_AT_MOST`]), so the client, still sending, reads the 413 rather
/// than a connection reset; a body larger still is cut off.
async fn drain(mut body: axum::body::Body) {
    let mut seen = 0;
    while seen < DRAIN_AT_MOST {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let json = media_type(request.headers())
            .is_some_and(|m| m == "application/json" || m.ends_with("+json"));
        if !json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = body(request, state.config.body_limit()).await?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut deserializer)
            .map_err(|e| refusal(&e.path().to_string(), e.inner()))?;
        // Text after the value makes the body malformed too.
        deserializer.end().map_err(|e| refusal(".", &e))?;
        Ok(ApiJson(value))
    }
}

/// A body that is not JSON (400), or JSON of the wrong shape at `path` (422).
fn refusal(path: &str, error: &serde_json::Error) -> ApiError {
    match error.classify() {
        serde_json::error::Category::Data => ApiError::new(
            ErrorCode::InvalidBody,
            if path == "." {
                format!("the body does not fit this request: {error}")
            } else {
                format!("`{path}`: {error}")
            },
        )
        .with_details(json!({"path": path})),
        _ => ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not JSON: {error}"),
        ),
    }
}

/// Content types a YAML body may come with.
const YAML_TYPES: [&str; 5] = [
    "application/yaml",
    "application/x-yaml",
    "text/yaml",
    "text/x-yaml",
    "text/plain",
];

impl FromRequest<AppState> for YamlBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let yaml = media_type(request.headers()).is_some_and(|m| YAML_TYPES.contains(&m.as_str()));
        if !yaml {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the playbook as YAML text with `Content-Type: application/yaml`",
            ));
        }
        Ok(YamlBody(body(request, state.config.body_limit()).await?))
    }
}
