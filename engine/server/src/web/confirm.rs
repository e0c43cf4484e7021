//! The page a mailed approval link opens. A GET only shows the request and
//! the plan (mail scanners and link previews follow links: they must
//! decide nothing); the decision is a POST of the page's form, carrying a
//! CSRF token bound to the link, and it spends the link in the same commit.

use std::collections::{BTreeMap, HashMap};

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use cordon_runtime::approval::{Ballot, Person, Verdict};
use cordon_storage::ApprovalRecord;
use serde_json::Value;

use super::page::{escape, page};
use crate::mail::links::{LinkOpenError, LinkRefusal};
use crate::state::AppState;

/// Headers every page carries: never cached, never framed, never leaking
/// the link through `Referer`, no script at all.
pub(crate) fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn html(status: StatusCode, body: String) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

fn refused(e: LinkOpenError) -> Response {
    match e {
        LinkOpenError::Refused(r) => {
            let status = match r {
                LinkRefusal::Forged => StatusCode::FORBIDDEN,
                LinkRefusal::Spent | LinkRefusal::Expired => StatusCode::GONE,
            };
            html(
                status,
                page(
                    "Approval link refused",
                    &format!(
                        "<p class=\"error\">{} <code>{}</code></p>",
                        escape(&r.to_string()),
                        r.code()
                    ),
                ),
            )
        }
        LinkOpenError::Storage(e) => {
            tracing::error!(error = %e, "approval link: storage failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                page(
                    "Try again",
                    "<p>The server cannot read its database right now.</p>",
                ),
            )
        }
    }
}

/// The plan as an HTML table: each downstream step, what it runs, on which devices.
pub(crate) fn plan_table(plan: &Value) -> String {
    let mut rows = String::new();
    for step in plan
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let what = crate::plan_step_action(step);
        let inputs = step.get("with").map(Value::to_string).unwrap_or_default();
        let items = step
            .get("foreach")
            .map(Value::to_string)
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            escape(step.get("id").and_then(Value::as_str).unwrap_or("")),
            escape(what),
            escape(&inputs),
            escape(&items),
        ));
    }
    let devices: Vec<&str> = plan
        .get("devices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "<table><tr><th>step</th><th>runs</th><th>inputs</th><th>for each</th></tr>{rows}</table><p><strong>Devices touched ({}):</strong> {}</p>",
        devices.len(),
        escape(&devices.join(", "))
    )
}

/// The request's summary and plan, shared by the mail page and the inbox.
pub(crate) fn request_summary(request: &ApprovalRecord) -> String {
    let approvals = request.approvals();
    format!(
        "<p class=\"question\">{}</p><p>Run <code>{}</code>, gate <code>{}</code>, started by {}. Approvals: {approvals} of {}. Status: <strong>{}</strong>{}.</p><h2>What approving lets happen</h2>{}<p class=\"digest\">plan digest <code>{}</code></p>",
        escape(&request.message),
        escape(&request.run),
        escape(&request.step),
        escape(request.initiator.as_deref().unwrap_or("a trigger")),
        request.min,
        escape(&request.status),
        request
            .deadline
            .map(|d| format!(", decide before {}", d.format("%Y-%m-%d %H:%M UTC")))
            .unwrap_or_default(),
        plan_table(&request.plan),
        escape(&request.plan_digest),
    )
}

/// The decision form: comment, the gate's inputs, approve and deny.
pub(crate) fn decision_form(
    action: &str,
    hidden: &[(&str, &str)],
    request: &ApprovalRecord,
) -> String {
    let mut fields = String::new();
    for (name, value) in hidden {
        fields.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        ));
    }
    if let Value::Object(inputs) = &request.input {
        for (name, spec) in inputs {
            let description = spec
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("");
            fields.push_str(&format!(
                "<label>{} <small>{}</small><input name=\"input.{}\"></label>",
                escape(name),
                escape(description),
                escape(name)
            ));
        }
    }
    format!(
        "<form method=\"post\" action=\"{}\">{fields}<label>Comment{}<textarea name=\"comment\"></textarea></label><button name=\"verdict\" value=\"approve\">Approve</button> <button name=\"verdict\" value=\"deny\" class=\"deny\">Deny</button></form>",
        escape(action),
        if request.require_comment {
            " (required)"
        } else {
            ""
        },
    )
}

/// `GET /approve/{token}`: shows the request; decides nothing.
pub(crate) async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(keys) = state.links.clone() else {
        return html(
            StatusCode::NOT_FOUND,
            page("Not found", "<p>Mailed links are not enabled.</p>"),
        );
    };
    let link = match keys.open(&state.store, &token, Utc::now()).await {
        Ok(link) => link,
        Err(e) => return refused(e),
    };
    let request = match state.engine.approval(&link.request).await {
        Ok(r) => r,
        Err(e) => {
            return html(
                StatusCode::NOT_FOUND,
                page(
                    "Approval request",
                    &format!("<p class=\"error\">{}</p>", escape(&e.to_string())),
                ),
            );
        }
    };
    let mut body = format!(
        "<p>For <strong>{}</strong>. Opening this page decided nothing.</p>{}",
        escape(&link.user),
        request_summary(&request)
    );
    if request.is_pending() {
        let csrf = keys.csrf(&link.id);
        body.push_str(&decision_form(
            &format!("/approve/{token}"),
            &[("csrf", &csrf), ("plan_digest", &request.plan_digest)],
            &request,
        ));
    }
    html(StatusCode::OK, page("Approval request", &body))
}

/// `POST /approve/{token}`: the decision, from the page's form.
pub(crate) async fn decide(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(keys) = state.links.clone() else {
        return html(
            StatusCode::NOT_FOUND,
            page("Not found", "<p>Mailed links are not enabled.</p>"),
        );
    };
    let link = match keys.open(&state.store, &token, Utc::now()).await {
        Ok(link) => link,
        Err(e) => return refused(e),
    };
    if !form
        .get("csrf")
        .is_some_and(|c| keys.check_csrf(&link.id, c))
    {
        return html(
            StatusCode::FORBIDDEN,
            page(
                "Refused",
                "<p class=\"error\">The form did not come from this link's page (CSRF check failed). <code>csrf_failed</code></p>",
            ),
        );
    }
    let verdict = match form.get("verdict").map(String::as_str) {
        Some("approve") => Verdict::Approve,
        Some("deny") => Verdict::Deny,
        _ => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                page("Refused", "<p class=\"error\">Choose approve or deny.</p>"),
            );
        }
    };
    // The link names the person; the directory says what they are now.
    let Some(entry) = state.directory.user(&link.user) else {
        return html(
            StatusCode::FORBIDDEN,
            page(
                "Refused",
                "<p class=\"error\">This link's approver is no longer in the directory. <code>unknown_user</code></p>",
            ),
        );
    };
    let person = Person {
        user: link.user.clone(),
        groups: entry.groups.clone(),
        roles: entry.roles.clone(),
    };
    let fields: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("input.")?;
            (!v.is_empty()).then(|| (name.to_string(), v.clone()))
        })
        .collect();
    let spec = match state.store.approval(&link.request).await {
        Ok(Some(request)) => request.input,
        _ => Value::Null,
    };
    let input = cordon_runtime::approval::typed_input(&spec, &fields);
    let ballot = Ballot {
        request: link.request.clone(),
        verdict,
        comment: form.get("comment").cloned(),
        input,
        plan_digest: form.get("plan_digest").cloned().unwrap_or_default(),
        channel: "email".into(),
        link: Some(link.id.clone()),
    };
    match state.engine.decide_approval(&person, &ballot).await {
        Ok(standing) => html(
            StatusCode::OK,
            page(
                "Decision recorded",
                &format!(
                    "<p>Your decision ({}) is recorded. The request is <strong>{}</strong> ({} of {} approvals). This link cannot be used again.</p>",
                    verdict.as_str(),
                    escape(&standing.status),
                    standing.approvals,
                    standing.min
                ),
            ),
        ),
        Err(e) => {
            let api = crate::routes::approvals::refusal(e);
            html(
                api.code.status(),
                page(
                    "Decision refused",
                    &format!(
                        "<p class=\"error\">{} <code>{}</code></p>",
                        escape(&api.message),
                        api.code.as_str()
                    ),
                ),
            )
        }
    }
}
