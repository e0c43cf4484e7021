//! The approvals inbox (SPEC §7, §10): what waits for a decision, one
//! request with the exact plan it guards, and the decision itself — a form
//! posted with the session's CSRF token and the plan digest the person was
//! shown, decided by the engine like any other channel's (`web`).

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cordon_runtime::approval::{ApprovalError, Ballot, Verdict};
use cordon_storage::{ApprovalFilter, ApprovalRecord};
use serde_json::Value;

use super::confirm::{decision_form, request_summary};
use super::page::{escape, respond, segment, signed_in, state as state_word, when};
use super::session::{self, Session};
use crate::config::Permission;
use crate::routes::approvals::{ApprovalView, person, refusal};
use crate::state::AppState;

/// The statuses the inbox filters on, `pending` first (the default).
const STATUSES: [&str; 6] = [
    "pending",
    "approved",
    "rejected",
    "expired",
    "cancelled",
    "all",
];

/// A request as it is now: pending ones through the engine, which
/// re-binds a changed plan (so nobody reviews a stale one).
async fn current(
    state: &AppState,
    record: ApprovalRecord,
) -> Result<ApprovalRecord, ApprovalError> {
    if !record.is_pending() {
        return Ok(record);
    }
    match state.engine.approval(&record.id).await {
        Ok(fresh) => Ok(fresh),
        // Closed or gone since it was listed: show it as listed.
        Err(ApprovalError::NotFound(_) | ApprovalError::Closed { .. }) => Ok(record),
        Err(e) => Err(e),
    }
}

/// Who may decide, as the gate names them (`{users, groups, roles}`).
fn approvers(spec: &Value) -> String {
    let mut parts = Vec::new();
    for kind in ["users", "groups", "roles"] {
        let names: Vec<&str> = spec
            .get(kind)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if !names.is_empty() {
            parts.push(format!("{kind}: {}", escape(&names.join(", "))));
        }
    }
    if parts.is_empty() {
        "nobody named".to_string()
    } else {
        parts.join("; ")
    }
}

/// `GET /ui/approvals`: the inbox, newest first (`?status=` to see others).
pub(crate) async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wanted = query.get("status").map_or("pending", String::as_str);
    let Some(wanted) = STATUSES.into_iter().find(|s| *s == wanted) else {
        return respond(
            StatusCode::BAD_REQUEST,
            signed_in(
                "Approvals",
                &session.nav(),
                None,
                "<p class=\"error\">Unknown status. <a href=\"/ui/approvals\">Show pending requests</a>.</p>",
            ),
        );
    };
    let filter = ApprovalFilter {
        status: (wanted != "all").then(|| wanted.to_string()),
        run: None,
    };
    let records = match state.store.approvals(&filter).await {
        Ok(records) => records,
        Err(e) => return session::failure(&e.into()),
    };
    let mut items = String::new();
    for record in records {
        let record = match current(&state, record).await {
            Ok(record) => record,
            Err(e) => return session::failure(&refusal(e)),
        };
        let view = ApprovalView::from(record);
        let deadline = view
            .deadline
            .filter(|_| view.status == "pending")
            .map(|d| format!(" · decide before {}", when(d)))
            .unwrap_or_default();
        items.push_str(&format!(
            "<li><p><a href=\"/ui/approvals/{}\"><strong>{}</strong></a></p><p>{} · approvals {} of {}</p><p class=\"muted\">run <a href=\"/ui/runs/{}\"><code>{}</code></a> · gate <code>{}</code> · requested {}{deadline}</p></li>",
            segment(&view.id),
            escape(&view.message),
            state_word(&view.status),
            view.approvals,
            view.min,
            segment(&view.run),
            escape(&view.run),
            escape(&view.step),
            when(view.requested_at),
        ));
    }
    let filters: String = STATUSES
        .iter()
        .map(|s| {
            if *s == wanted {
                format!("<strong aria-current=\"page\">{s}</strong>")
            } else {
                format!("<a href=\"/ui/approvals?status={s}\">{s}</a>")
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let body = if items.is_empty() {
        let none = if wanted == "pending" {
            "Nothing waits for a decision."
        } else {
            "No requests."
        };
        format!("<p class=\"filters\">{filters}</p><p>{none}</p>")
    } else {
        format!("<p class=\"filters\">{filters}</p><ul class=\"cards\">{items}</ul>")
    };
    respond(
        StatusCode::OK,
        signed_in("Approvals", &session.nav(), None, &body),
    )
}

/// The decisions on a request, and whether each still counts.
fn decisions(request: &ApprovalRecord) -> String {
    if request.decisions.is_empty() {
        return "<p>No decisions yet.</p>".to_string();
    }
    let mut rows = String::new();
    for d in &request.decisions {
        let counts = if d.plan_digest == request.plan_digest {
            "yes"
        } else {
            "no: made on an earlier plan"
        };
        let input = match &d.input {
            Value::Object(map) if map.is_empty() => String::new(),
            Value::Null => String::new(),
            other => format!("<code>{}</code>", escape(&other.to_string())),
        };
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{input}</td><td>{}</td><td>{}</td><td>{counts}</td></tr>",
            escape(&d.user),
            state_word(&d.verdict),
            escape(d.comment.as_deref().unwrap_or("")),
            escape(&d.channel),
            when(d.decided_at),
        ));
    }
    format!(
        "<div class=\"scroll\"><table><tr><th scope=\"col\">who</th><th scope=\"col\">decision</th><th scope=\"col\">comment</th><th scope=\"col\">input</th><th scope=\"col\">channel</th><th scope=\"col\">when</th><th scope=\"col\">counts</th></tr>{rows}</table></div>"
    )
}

fn refused_page(session: &Session, id: &str, e: ApprovalError) -> Response {
    let api = refusal(e);
    let again = if api.code == crate::error::ErrorCode::PlanChanged {
        format!(
            "<p><a href=\"/ui/approvals/{}\">Review the new plan</a> and decide again.</p>",
            segment(id)
        )
    } else {
        format!(
            "<p><a href=\"/ui/approvals/{}\">Back to the request</a> · <a href=\"/ui/approvals\">inbox</a></p>",
            segment(id)
        )
    };
    respond(
        api.code.status(),
        signed_in(
            "Decision refused",
            &session.nav(),
            None,
            &format!(
                "<p class=\"error\" role=\"alert\">{} <code>{}</code></p>{again}",
                escape(&api.message),
                api.code.as_str()
            ),
        ),
    )
}

/// `GET /ui/approvals/{id}`: the request, its plan and decisions, and the
/// decision form for those whose token may decide.
pub(crate) async fn show(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let request = match state.engine.approval(&id).await {
        Ok(request) => request,
        Err(e) => {
            let api = refusal(e);
            return respond(
                api.code.status(),
                signed_in(
                    "Approval request",
                    &session.nav(),
                    None,
                    &format!(
                        "<p class=\"error\">{} <code>{}</code></p><p><a href=\"/ui/approvals\">Back to the inbox</a></p>",
                        escape(&api.message),
                        api.code.as_str()
                    ),
                ),
            );
        }
    };
    let mut body = request_summary(&request);
    body.push_str(&format!(
        "<p>Who may decide{}: {}. Requested {}.</p>",
        if request.stage > 0 {
            " (escalated)"
        } else {
            ""
        },
        approvers(&request.approvers),
        when(request.requested_at),
    ));
    if let Some(outcome) = &request.outcome {
        body.push_str(&format!("<p>Outcome: {}</p>", escape(outcome)));
    }
    body.push_str("<h2>Decisions</h2>");
    body.push_str(&decisions(&request));
    if request.is_pending() {
        body.push_str("<h2>Your decision</h2>");
        if session.principal.can(Permission::Decide) {
            body.push_str(&decision_form(
                &format!("/ui/approvals/{}", segment(&request.id)),
                &[
                    ("csrf", session.csrf()),
                    ("plan_digest", &request.plan_digest),
                ],
                &request,
            ));
        } else {
            body.push_str(&format!(
                "<p>This session's token has the <code>{}</code> role, which cannot decide approvals. Sign in with an <code>approver</code> token to decide.</p>",
                escape(session.principal.role.as_str())
            ));
        }
    }
    // No refresh here: it would wipe a comment being typed.
    respond(
        StatusCode::OK,
        signed_in("Approval request", &session.nav(), None, &body),
    )
}

/// `POST /ui/approvals/{id}`: the decision from the page's form.
pub(crate) async fn decide(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !session.check_csrf(form.get("csrf")) {
        return session::csrf_refused();
    }
    if let Err(e) = session.principal.require(Permission::Decide) {
        return respond(
            e.code.status(),
            signed_in(
                "Refused",
                &session.nav(),
                None,
                &format!(
                    "<p class=\"error\" role=\"alert\">{} <code>{}</code></p>",
                    escape(&e.message),
                    e.code.as_str()
                ),
            ),
        );
    }
    let verdict = match form.get("verdict").map(String::as_str) {
        Some("approve") => Verdict::Approve,
        Some("deny") => Verdict::Deny,
        _ => {
            return respond(
                StatusCode::UNPROCESSABLE_ENTITY,
                signed_in(
                    "Refused",
                    &session.nav(),
                    None,
                    "<p class=\"error\">Choose approve or deny.</p>",
                ),
            );
        }
    };
    let input: BTreeMap<String, Value> = form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("input.")?;
            (!v.is_empty()).then(|| (name.to_string(), Value::String(v.clone())))
        })
        .collect();
    let ballot = Ballot {
        request: id.clone(),
        verdict,
        comment: form
            .get("comment")
            .filter(|c| !c.trim().is_empty())
            .cloned(),
        input,
        plan_digest: form.get("plan_digest").cloned().unwrap_or_default(),
        channel: "web".into(),
        link: None,
    };
    match state
        .engine
        .decide_approval(&person(&session.principal), &ballot)
        .await
    {
        Ok(standing) => {
            tracing::info!(request = %id, user = %session.principal.user, verdict = verdict.as_str(), "approval decided on the web page");
            respond(
                StatusCode::OK,
                signed_in(
                    "Decision recorded",
                    &session.nav(),
                    None,
                    &format!(
                        "<p role=\"status\">Your decision (<strong>{}</strong>) is recorded. The request is {} ({} of {} approvals).</p><p><a href=\"/ui/approvals/{}\">Back to the request</a> · <a href=\"/ui/approvals\">inbox</a></p>",
                        verdict.as_str(),
                        state_word(&standing.status),
                        standing.approvals,
                        standing.min,
                        segment(&id),
                    ),
                ),
            )
        }
        Err(e) => refused_page(&session, &id, e),
    }
}
