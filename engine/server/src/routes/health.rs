//! Liveness and readiness, for load balancers and orchestrators (no token needed).

use axum::Json;
use axum::extract::State;
use cordon_storage::Backend;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;
use crate::views::{Health, Ready};

/// The health routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()),
    responses((status = 200, description = "alive", body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()),
    responses(
        (status = 200, description = "ready", body = Ready),
        (status = 503, description = "the database is unreachable or not migrated", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let readiness = state.store.readiness().await.map_err(|e| {
        tracing::warn!(error = %e, "not ready");
        ApiError::new(ErrorCode::NotReady, "the database does not answer")
    })?;
    if readiness.pending > 0 {
        return Err(ApiError::new(
            ErrorCode::NotReady,
            format!("{} migration(s) are not applied", readiness.pending),
        ));
    }
    Ok(Json(Ready {
        status: "ready".into(),
        database: match state.store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .into(),
        migrations: readiness.applied,
    }))
}
