//! The HTTP API (axum). Every route but `/healthz` needs the bearer token;
//! every error is `{"code": "...", "message": "..."}` with a stable code
//! (plus `details` when something was done despite the failure).
//!
//! Requests that change the CA are serialised by one lock: a revocation
//! holds it through publish, reload and probe, so two CRLs never race for
//! `crl.pem` or for the broker's reload.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cordon_fleet::command::Order;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;

use crate::authority::{Authority, CertView, Failure};
use crate::registry::{Reason, parse_serial};

/// Shared state of the routes.
#[derive(Debug, Clone)]
pub struct AppState {
    authority: Arc<Mutex<Authority>>,
    /// SHA-256 of the token: comparing digests in constant time hides
    /// the token's length as well as its bytes.
    token_digest: [u8; 32],
}

impl AppState {
    /// State for `authority`, accepting `token`.
    pub fn new(authority: Authority, token: &str) -> AppState {
        AppState {
            authority: Arc::new(Mutex::new(authority)),
            token_digest: Sha256::digest(token.trim().as_bytes()).into(),
        }
    }
}

/// A [`Failure`] as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub Failure);

impl From<Failure> for ApiError {
    fn from(f: Failure) -> ApiError {
        ApiError(f)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Failure {
            status,
            code,
            message,
            details,
        } = self.0;
        let mut body = json!({ "code": code, "message": message });
        if let Some(details) = details {
            body["details"] = details;
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(body)).into_response()
    }
}

fn bad_json(rejection: JsonRejection) -> ApiError {
    ApiError(Failure::new(400, "bad_request", rejection.body_text()))
}

async fn require_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Sha256::digest(t.trim().as_bytes()));
    let ok = presented.is_some_and(|d| bool::from(d.as_slice().ct_eq(&state.token_digest)));
    if !ok {
        return ApiError(Failure::new(
            401,
            "unauthorized",
            "missing or wrong bearer token",
        ))
        .into_response();
    }
    next.run(request).await
}

/// The router.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route(
            "/v1/devices/{id}/certificate",
            post(issue_device).get(device_certificate),
        )
        .route("/v1/certificates/{serial}", get(certificate))
        .route("/v1/certificates/{serial}/revoke", post(revoke))
        .route("/v1/crl", post(republish))
        .route("/v1/commands", post(sign_command))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .merge(protected)
        .fallback(|| async { ApiError(Failure::new(404, "not_found", "no such route")) })
        .with_state(state)
}

async fn issue_device(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let record = state.authority.lock().await.issue_device(&id)?;
    Ok(Json(json!({
        "serial": record.serial,
        "cn": record.cn,
        "not_after": record.not_after,
    })))
}

async fn device_certificate(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<CertView>, ApiError> {
    let authority = state.authority.lock().await;
    let record = authority
        .registry()
        .device(&id)
        .ok_or_else(|| Failure::new(404, "unknown_device", format!("no device {id}")))?;
    Ok(Json(CertView::from(record)))
}

fn serial(text: &str) -> Result<u64, ApiError> {
    parse_serial(text).ok_or_else(|| {
        ApiError(Failure::new(
            404,
            "unknown_certificate",
            format!("`{text}` is not a serial number (hex)"),
        ))
    })
}

async fn certificate(
    State(state): State<AppState>,
    Path(text): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let serial = serial(&text)?;
    let authority = state.authority.lock().await;
    let record = authority.registry().by_serial(serial).ok_or_else(|| {
        Failure::new(404, "unknown_certificate", format!("no certificate {text}"))
    })?;
    let crl = authority.crl_on_disk();
    let mut body = json!(CertView::from(record));
    body["in_crl"] = json!(crl.as_ref().is_some_and(|c| c.lists(&record.serial)));
    body["crl_number"] = json!(crl.map(|c| c.number));
    Ok(Json(body))
}

/// Body of `POST /v1/certificates/{serial}/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default = "unspecified")]
    reason: Reason,
}

fn unspecified() -> Reason {
    Reason::Unspecified
}

async fn revoke(
    State(state): State<AppState>,
    Path(text): Path<String>,
    body: Result<Json<RevokeBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let serial = serial(&text)?;
    let (view, already, published) = state
        .authority
        .lock()
        .await
        .revoke(serial, body.reason)
        .await?;
    let mut out = json!(view);
    out["already_revoked"] = json!(already);
    out["crl"] = json!(published.crl);
    out["broker_reloaded"] = json!(published.broker_reloaded);
    out["probe"] = json!(published.probe);
    Ok(Json(out))
}

async fn republish(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let published = state.authority.lock().await.republish().await?;
    Ok(Json(json!(published)))
}

/// Body of `POST /v1/commands`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandBody {
    id: String,
    device: String,
    order: Order,
    #[serde(default = "default_validity")]
    validity_secs: i64,
}

fn default_validity() -> i64 {
    60
}

async fn sign_command(
    State(state): State<AppState>,
    body: Result<Json<CommandBody>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let signed = state.authority.lock().await.sign(
        &body.id,
        &body.device,
        body.order,
        body.validity_secs,
    )?;
    Ok(Json(json!(signed)))
}
