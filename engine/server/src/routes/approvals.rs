//! Approvals: the inbox, one request with the plan it guards (read fresh,
//! so a changed plan shows before anyone decides), and decisions. A
//! decision names the plan digest its author saw; the engine refuses it
//! when the plan changed since.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use cordon_runtime::approval::{ApprovalError, Ballot, Person, Verdict};
use cordon_storage::{ApprovalFilter, ApprovalRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Authorized, Principal, permits};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::state::AppState;

/// The approval routes.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show))
        .routes(routes!(approve))
        .routes(routes!(deny))
}

/// One decision on a request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DecisionView {
    /// Who decided.
    pub user: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// Their comment.
    pub comment: Option<String>,
    /// Their structured input.
    pub input: Value,
    /// The plan digest they decided on (decisions on an older plan no longer count).
    pub plan_digest: String,
    /// `api`, `cli`, `web` or `email`.
    pub channel: String,
    /// When.
    pub decided_at: chrono::DateTime<chrono::Utc>,
}

/// An approval request as people see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// Its id.
    pub id: String,
    /// The run waiting on it.
    pub run: String,
    /// The gate's step.
    pub step: String,
    /// `pending`, `approved`, `rejected`, `expired`, `cancelled`.
    pub status: String,
    /// 0 for the first approvers, 1 after an escalation.
    pub stage: u32,
    /// Who may decide now (`{users, groups, roles}`).
    pub approvers: Value,
    /// Approvals from distinct people needed.
    pub min: u32,
    /// Distinct approvals on the current plan.
    pub approvals: u32,
    /// Whether every decision needs a comment.
    pub require_comment: bool,
    /// The structured input asked for (name → spec).
    pub input: Value,
    /// Who started the run.
    pub initiator: Option<String>,
    /// The question.
    pub message: String,
    /// What approving lets happen: downstream steps and the devices they touch.
    pub plan: Value,
    /// The digest a decision must name.
    pub plan_digest: String,
    /// When the gate opened.
    pub requested_at: chrono::DateTime<chrono::Utc>,
    /// When the current stage times out.
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    /// Why it closed.
    pub outcome: Option<String>,
    /// Every decision, oldest first.
    pub decisions: Vec<DecisionView>,
}

impl From<ApprovalRecord> for ApprovalView {
    fn from(r: ApprovalRecord) -> ApprovalView {
        ApprovalView {
            approvals: r.approvals(),
            id: r.id,
            run: r.run,
            step: r.step,
            status: r.status,
            stage: r.stage,
            approvers: r.approvers,
            min: r.min,
            require_comment: r.require_comment,
            input: r.input,
            initiator: r.initiator,
            message: r.message,
            plan: r.plan,
            plan_digest: r.plan_digest,
            requested_at: r.requested_at,
            deadline: r.deadline,
            outcome: r.outcome,
            decisions: r
                .decisions
                .into_iter()
                .map(|d| DecisionView {
                    user: d.user,
                    verdict: d.verdict,
                    comment: d.comment,
                    input: d.input,
                    plan_digest: d.plan_digest,
                    channel: d.channel,
                    decided_at: d.decided_at,
                })
                .collect(),
        }
    }
}

/// A decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    /// The plan digest you reviewed (from the request): if the plan changed
    /// since, the decision is refused with `plan_changed`.
    pub plan_digest: String,
    /// Your comment (required where the gate says so).
    #[serde(default)]
    pub comment: Option<String>,
    /// The structured input the gate asks for (approvals only).
    #[serde(default)]
    pub input: BTreeMap<String, Value>,
}

/// Where the request stands after the decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DecisionOutcome {
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    /// Distinct approvals on the current plan.
    pub approvals: u32,
    /// Needed.
    pub min: u32,
}

/// Which requests to list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    /// `pending` (default), `approved`, `rejected`, `expired`, `cancelled` or `all`.
    status: Option<String>,
    /// Only this run's.
    run: Option<String>,
}

/// What one step of a gate's plan runs, in words: its pinned action
/// (`isolate@1`), its sub-playbook, or its kind (`wait`, `notify`).
pub fn plan_step_action(step: &Value) -> &str {
    step.get("uses")
        .or_else(|| step.get("playbook"))
        .or_else(|| step.get("kind"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The person behind a principal, as approval rules see them.
pub(crate) fn person(principal: &Principal) -> Person {
    Person {
        user: principal.user.clone(),
        groups: principal.groups.clone(),
        roles: principal.roles.clone(),
    }
}

/// An approval refusal as an API error.
pub(crate) fn refusal(e: ApprovalError) -> ApiError {
    let code = match &e {
        ApprovalError::NotFound(_) => ErrorCode::UnknownApproval,
        ApprovalError::Closed { .. } => ErrorCode::ApprovalClosed,
        ApprovalError::PlanChanged { .. } => ErrorCode::PlanChanged,
        ApprovalError::NotAnApprover { .. } => ErrorCode::NotAnApprover,
        ApprovalError::SelfApproval { .. } => ErrorCode::SelfApproval,
        ApprovalError::AlreadyDecided { .. } => ErrorCode::AlreadyDecided,
        ApprovalError::CommentRequired => ErrorCode::CommentRequired,
        ApprovalError::InvalidInput(_) => ErrorCode::InvalidApprovalInput,
        ApprovalError::LinkSpent => ErrorCode::LinkSpent,
        ApprovalError::Engine(inner) => return ApiError::internal(inner),
    };
    let error = ApiError::new(code, e.to_string());
    match e {
        ApprovalError::PlanChanged { current } => {
            error.with_details(serde_json::json!({"plan_digest": current}))
        }
        _ => error,
    }
}

/// Approval requests, newest first (pending ones by default).
#[utoipa::path(get, path = "/approvals", tag = "approvals", params(ListQuery),
    responses((status = 200, body = Vec<ApprovalView>)))]
async fn list(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<ApprovalView>>, ApiError> {
    let status = match q.status.as_deref() {
        None => Some("pending".to_string()),
        Some("all") => None,
        Some(s @ ("pending" | "approved" | "rejected" | "expired" | "cancelled")) => {
            Some(s.to_string())
        }
        Some(other) => {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!(
                    "`{other}` is not an approval status (pending, approved, rejected, expired, cancelled, all)"
                ),
            ));
        }
    };
    let filter = ApprovalFilter { status, run: q.run };
    let records = state.store.approvals(&filter).await?;
    let mut views = Vec::with_capacity(records.len());
    for record in records {
        // Pending ones are read through the engine: their plan is re-checked.
        let record = if record.is_pending() {
            state.engine.approval(&record.id).await.map_err(refusal)?
        } else {
            record
        };
        views.push(record.into());
    }
    Ok(Json(views))
}

/// One request with the plan it guards, as it is now.
#[utoipa::path(get, path = "/approvals/{id}", tag = "approvals",
    params(("id" = String, Path, description = "the approval request")),
    responses(
        (status = 200, body = ApprovalView),
        (status = 404, description = "`unknown_approval`", body = ErrorBody),
    ))]
async fn show(
    _: Authorized<permits::Read>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ApprovalView>, ApiError> {
    let record = state.engine.approval(&id).await.map_err(refusal)?;
    Ok(Json(record.into()))
}

async fn decide(
    state: &AppState,
    principal: &Principal,
    id: String,
    verdict: Verdict,
    body: DecideBody,
) -> Result<Json<DecisionOutcome>, ApiError> {
    let ballot = Ballot {
        request: id,
        verdict,
        comment: body.comment,
        input: body.input,
        plan_digest: body.plan_digest,
        channel: "api".into(),
        link: None,
    };
    let standing = state
        .engine
        .decide_approval(&person(principal), &ballot)
        .await
        .map_err(refusal)?;
    Ok(Json(DecisionOutcome {
        status: standing.status,
        approvals: standing.approvals,
        min: standing.min,
    }))
}

/// Approves, on the plan digest reviewed.
#[utoipa::path(post, path = "/approvals/{id}/approve", tag = "approvals",
    params(("id" = String, Path, description = "the approval request")),
    request_body = DecideBody,
    responses(
        (status = 200, body = DecisionOutcome),
        (status = 403, description = "`forbidden`, `not_an_approver`, `self_approval`", body = ErrorBody),
        (status = 409, description = "`plan_changed` (details.plan_digest is the new one), `already_decided`, `approval_closed`", body = ErrorBody),
        (status = 422, description = "`comment_required`, `invalid_approval_input`", body = ErrorBody),
    ))]
async fn approve(
    who: Authorized<permits::Decide>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecideBody>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    decide(&state, &who, id, Verdict::Approve, body).await
}

/// Denies (any deny rejects the gate).
#[utoipa::path(post, path = "/approvals/{id}/deny", tag = "approvals",
    params(("id" = String, Path, description = "the approval request")),
    request_body = DecideBody,
    responses(
        (status = 200, body = DecisionOutcome),
        (status = 403, description = "`forbidden`, `not_an_approver`", body = ErrorBody),
        (status = 409, description = "`plan_changed`, `already_decided`, `approval_closed`", body = ErrorBody),
    ))]
async fn deny(
    who: Authorized<permits::Decide>,
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<DecideBody>,
) -> Result<Json<DecisionOutcome>, ApiError> {
    decide(&state, &who, id, Verdict::Deny, body).await
}
