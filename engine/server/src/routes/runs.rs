//! Runs: start, list, show (steps, attempts, secrets redacted), cancel,
//! pause, resume, rerun. The node's work loop drives what is started here.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cordon_runtime::RunRequest;
use cordon_runtime::run_state::RunStatus;
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, permits};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;
use crate::views::{
    ControlOutcome, Rerun, RerunStarted, RunSummaryView, RunView, StartRun, StartedRun,
    secret_inputs,
};

/// The run routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, start))
        .routes(routes!(show))
        .routes(routes!(cancel))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(rerun))
}

/// Which runs to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// Only runs in these states, comma-separated (`failed,cancelled`).
    state: Option<String>,
    /// At most this many (default 50, at most 1000).
    limit: Option<u64>,
}

/// Runs, newest first.
#[utoipa::path(get, path = "/runs", tag = "runs", params(ListQuery),
    responses(
        (status = 200, body = Vec<RunSummaryView>),
        (status = 400, description = "`invalid_query`: an unknown state", body = ErrorBody),
    ))]
async fn list(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<RunSummaryView>>, ApiError> {
    let states: Vec<&str> = q
        .state
        .as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    for s in &states {
        if !RunStatus::ALL.iter().any(|known| known.as_str() == *s) {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "`{s}` is not a run state (queued, running, waiting, paused, compensating, succeeded, failed, cancelled)"
                ),
            ));
        }
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let runs = state.store.runs(&states, limit).await?;
    Ok(Json(
        runs.into_iter()
            .map(|r| RunSummaryView {
                id: r.id,
                playbook: r.playbook,
                version: r.version,
                status: r.status,
                created_at: r.created_at,
            })
            .collect(),
    ))
}

/// Starts a run of a published playbook (the newest version unless one is
/// named). Nothing is written when the inputs or the limits refuse it.
#[utoipa::path(post, path = "/runs", tag = "runs", request_body = StartRun,
    responses(
        (status = 201, description = "queued", body = StartedRun),
        (status = 404, description = "`unknown_playbook`", body = ErrorBody),
        (status = 409, description = "`at_capacity`", body = ErrorBody),
        (status = 422, description = "`invalid_inputs` (details lists each problem) or `invalid_body`", body = ErrorBody),
    ))]
async fn start(
    who: Authorized<permits::Operate>,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<StartRun>,
) -> Result<(StatusCode, Json<StartedRun>), ApiError> {
    let id = state
        .engine
        .start_run(RunRequest {
            playbook: request.playbook,
            version: request.version,
            inputs: request.inputs,
            trigger: json!({"kind": "manual", "by": who.user, "via": "api"}),
            dry_run: request.dry_run,
        })
        .await?;
    let run =
        state.store.run(&id).await?.ok_or_else(|| {
            ApiError::internal(&format!("run {id} vanished after it was created"))
        })?;
    Ok((
        StatusCode::CREATED,
        Json(StartedRun {
            id: run.id,
            playbook: run.playbook,
            version: run.version,
            status: run.state.status,
        }),
    ))
}

fn unknown_run(id: &str) -> ApiError {
    ApiError::new(ErrorCode::UnknownRun, format!("no run `{id}`"))
}

/// One run: its steps and every attempt with its idempotency key. Secret
/// inputs are never shown.
#[utoipa::path(get, path = "/runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "the run id")),
    responses(
        (status = 200, body = RunView),
        (status = 404, description = "`unknown_run`", body = ErrorBody),
    ))]
async fn show(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RunView>, ApiError> {
    let record = state
        .store
        .run(&id)
        .await?
        .ok_or_else(|| unknown_run(&id))?;
    let attempts = state.store.attempts(&id).await?;
    // Which inputs are secret is the pinned version's say.
    let secrets = state
        .store
        .version(&record.playbook, &record.version)
        .await?
        .map(|v| secret_inputs(&v.playbook))
        .unwrap_or_default();
    Ok(Json(RunView::new(&record, &attempts, &secrets)))
}

/// One of the things people do to a run.
#[derive(Debug, Clone, Copy)]
enum Control {
    Cancel,
    Pause,
    Resume,
}

async fn control(
    state: &AppState,
    by: &str,
    id: &str,
    action: Control,
) -> Result<Json<ControlOutcome>, ApiError> {
    let before = state.store.run(id).await?.ok_or_else(|| unknown_run(id))?;
    let status = match action {
        Control::Cancel => state.engine.cancel(id, by).await,
        Control::Pause => state.engine.pause(id, by).await,
        Control::Resume => state.engine.resume(id, by).await,
    }?;
    tracing::info!(run = %id, action = ?action, by = %by, status = status.as_str(), "run controlled");
    Ok(Json(ControlOutcome {
        id: id.to_string(),
        previous: before.state.status,
        status: status.as_str().to_string(),
    }))
}

/// Cancels a run; completed compensable steps are undone unless the
/// playbook says otherwise. Cancelling a finished run changes nothing.
#[utoipa::path(post, path = "/runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "the run id")),
    responses(
        (status = 200, body = ControlOutcome),
        (status = 404, description = "`unknown_run`", body = ErrorBody),
    ))]
async fn cancel(
    who: Authorized<permits::Operate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ControlOutcome>, ApiError> {
    control(&state, &who.user, &id, Control::Cancel).await
}

/// Holds a run: no new step starts until it is resumed.
#[utoipa::path(post, path = "/runs/{id}/pause", tag = "runs",
    params(("id" = String, Path, description = "the run id")),
    responses(
        (status = 200, body = ControlOutcome),
        (status = 404, description = "`unknown_run`", body = ErrorBody),
        (status = 409, description = "`refused`: the run cannot be paused now", body = ErrorBody),
    ))]
async fn pause(
    who: Authorized<permits::Operate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ControlOutcome>, ApiError> {
    control(&state, &who.user, &id, Control::Pause).await
}

/// Releases a paused run.
#[utoipa::path(post, path = "/runs/{id}/resume", tag = "runs",
    params(("id" = String, Path, description = "the run id")),
    responses(
        (status = 200, body = ControlOutcome),
        (status = 404, description = "`unknown_run`", body = ErrorBody),
        (status = 409, description = "`refused`: the run is not paused", body = ErrorBody),
    ))]
async fn resume(
    who: Authorized<permits::Operate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ControlOutcome>, ApiError> {
    control(&state, &who.user, &id, Control::Resume).await
}

/// Starts a new run of a finished run's pinned version from one of its
/// steps; earlier successes that do not depend on it are carried over.
#[utoipa::path(post, path = "/runs/{id}/rerun", tag = "runs",
    params(("id" = String, Path, description = "the finished run")),
    request_body = Rerun,
    responses(
        (status = 201, body = RerunStarted),
        (status = 404, description = "`unknown_run`", body = ErrorBody),
        (status = 409, description = "`refused`: still running, or no such step", body = ErrorBody),
    ))]
async fn rerun(
    who: Authorized<permits::Operate>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(request): ApiJson<Rerun>,
) -> Result<(StatusCode, Json<RerunStarted>), ApiError> {
    let new = state.engine.rerun(&id, &request.from, &who.user).await?;
    Ok((
        StatusCode::CREATED,
        Json(RerunStarted {
            id: new,
            of: id,
            from: request.from,
        }),
    ))
}
