//! Cordon's HTTP API: the only crate that serves HTTP (axum).
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on a
//! listener until a shutdown signal, finishing requests in flight. Every
//! route under `/api/v1` except `/healthz` and `/readyz` is authenticated
//! by bearer token ([`auth`]) and authorised by the token's role
//! ([`config::Permission`]); errors are `{code, message, details}` with
//! stable codes ([`error`]); request bodies are size-limited and strictly
//! typed ([`extract`]); `GET /openapi.json` describes it all ([`openapi`]).
//! Monitoring systems deliver alerts to `POST /hooks/{source}` ([`hooks`]),
//! outside `/api/v1`: each source authenticates by its own configured
//! scheme (bearer, basic or an HMAC signature), never by an API token.

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod hooks;
pub mod mail;
pub mod openapi;
pub mod publishing;
mod routes;
pub mod state;
pub mod views;
mod web;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, Request, header};
use axum::response::IntoResponse;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;

pub use auth::{Authorized, Principal, permits};
pub use config::{ApiRole, Directory, Permission, ServerConfig, UserEntry};
pub use error::{ApiError, ErrorBody, ErrorCode};
pub use hooks::Webhooks;
pub use hooks::config::WebhooksConfig;
pub use publishing::Catalog;
pub use routes::approvals::{
    ApprovalView, DecideBody, DecisionOutcome, DecisionView, plan_step_action,
};
pub use state::AppState;

/// The API's path prefix.
pub const API_PREFIX: &str = "/api/v1";

/// The router with its OpenAPI document (also for tests and tools that
/// want the document without serving).
pub fn app_and_openapi(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (api, openapi) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest(API_PREFIX, routes::api(&state))
        .split_for_parts();
    (api.with_state(state), openapi)
}

/// The whole server: the API, `GET /openapi.json`, JSON answers for
/// unknown routes and methods, request ids, request logs without headers.
pub fn app(state: AppState) -> Router {
    let pages = web::router().with_state(state.clone());
    let hooks = routes::hooks::router().with_state(state.clone());
    let (api, openapi) = app_and_openapi(state);
    let api = api.merge(pages).merge(hooks);
    let document: Arc<str> = openapi
        .to_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        .into();
    let request_id = HeaderName::from_static("x-request-id");
    api.route(
        "/openapi.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    document.to_string(),
                )
            }
        }),
    )
    .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route (see /openapi.json)") })
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            ErrorCode::MethodNotAllowed,
            "this route does not take this method (see /openapi.json)",
        )
    })
    .layer(CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            ApiError::internal(&"a handler panicked").into_response()
        },
    ))
    .layer(
        TraceLayer::new_for_http()
            // The span names the request, never its headers (tokens) or query.
            .make_span_with(|request: &Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                // A mailed link's path is a credential: never logged.
                let path = request.uri().path();
                let path = if path.starts_with("/approve/") {
                    "/approve/[link]"
                } else {
                    path
                };
                tracing::info_span!(
                    "request",
                    method = %request.method(),
                    path = %path,
                    id = %id,
                    user = tracing::field::Empty,
                )
            })
            .on_request(())
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
    )
    .layer(PropagateRequestIdLayer::new(request_id.clone()))
    .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
    // Outermost: nothing below can print the Authorization header's value.
    .layer(SetSensitiveRequestHeadersLayer::new([
        header::AUTHORIZATION,
        header::COOKIE,
    ]))
    .layer(
        tower_http::sensitive_headers::SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]),
    )
}

/// Serves [`app`] on `listener` until `shutdown` completes, then stops
/// accepting connections and finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
