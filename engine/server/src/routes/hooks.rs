//! `POST /hooks/{source}`: monitoring systems deliver alerts here (see
//! [`crate::hooks`]). Outside `/api/v1` and its token middleware: each
//! source authenticates by its own scheme, checked here before the body
//! is believed.

use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cordon_storage::NewEvent;
use serde_json::json;

use crate::error::{ApiError, ErrorCode};
use crate::hooks::payload;
use crate::state::AppState;

/// The header a generic JSON sender names a delivery with.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The webhook route.
pub(crate) fn router() -> Router<AppState> {
    Router::new().route("/hooks/{source}", axum::routing::post(receive))
}

/// Records the refusal (`webhook.rejected`, with its reason, never what
/// was presented) and answers 401.
async fn unauthorized(state: &AppState, source: &str, reason: &str) -> Response {
    let event = NewEvent {
        actor: format!("webhook:{source}"),
        kind: "webhook.rejected".into(),
        run: None,
        step: None,
        device: None,
        data: json!({"source": source, "reason": reason}),
    };
    if let Err(e) = state.store.append_events(&[event], &[], Utc::now()).await {
        return ApiError::from(e).into_response();
    }
    tracing::warn!(%source, %reason, "webhook refused");
    ApiError::new(
        ErrorCode::WebhookUnauthorized,
        "the delivery is not authenticated as this source; nothing was started",
    )
    .with_details(json!({"reason": reason}))
    .into_response()
}

async fn receive(
    State(state): State<AppState>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let Some(source) = state.webhooks.source(&name) else {
        return ApiError::new(
            ErrorCode::UnknownWebhookSource,
            "no webhook source of this name is configured",
        )
        .into_response();
    };
    // Before anything is read: a flood costs one lock per request.
    if let Err(wait) = source.admit(Instant::now()) {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let mut response = ApiError::new(
            ErrorCode::WebhookRateLimited,
            format!("source `{name}` is over its rate limit; retry later"),
        )
        .with_details(json!({"retry_after_secs": seconds.max(1)}))
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let headers = request.headers().clone();
    let body = match crate::extract::body(request, source.body_limit).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let now = Utc::now();
    match source.auth.check(&headers, &body, now.timestamp()) {
        Err(refusal) => return unauthorized(&state, &name, refusal.as_str()).await,
        Ok(None) => {}
        Ok(Some(signed)) => {
            let expires = chrono::DateTime::from_timestamp(signed.expires_at, 0).unwrap_or(now);
            match state
                .store
                .spend_webhook_signature(&name, &signed.signature, expires, now)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return unauthorized(
                        &state,
                        &name,
                        crate::hooks::auth::Refusal::Replayed.as_str(),
                    )
                    .await;
                }
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    }
    let delivery = match payload::parse(source.format, source.mapping.as_ref(), &body) {
        Ok(delivery) => delivery,
        Err(e) => {
            return ApiError::new(ErrorCode::InvalidWebhookPayload, e.0).into_response();
        }
    };
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY) {
        None => None,
        Some(value) => match value.to_str() {
            Ok(key) if !key.is_empty() && key.len() <= 255 => Some(key.to_string()),
            _ => {
                return ApiError::new(
                    ErrorCode::InvalidWebhookPayload,
                    "`Idempotency-Key` must be 1 to 255 visible ASCII characters",
                )
                .into_response();
            }
        },
    };
    match crate::hooks::deliver::deliver(&state, &source, &delivery, idempotency_key.as_deref())
        .await
    {
        Ok(outcome) => (StatusCode::ACCEPTED, axum::Json(outcome)).into_response(),
        Err(e) => e.into_response(),
    }
}
