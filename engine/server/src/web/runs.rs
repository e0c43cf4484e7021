//! Runs on the web (SPEC §10): recent runs, and one run with its live step
//! states — the page reloads itself every few seconds until the run is
//! over (a `refresh` meta, no script). What is shown is the API's
//! [`RunView`], so secret inputs are redacted exactly as the API does.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use cordon_runtime::run_state::RunStatus;
use cordon_storage::ApprovalFilter;
use serde_json::Value;

use super::page::{escape, respond, segment, signed_in, state as state_word, when};
use super::session::{self, Session};
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{RunView, secret_inputs};

/// How many runs the list shows.
const RECENT: u64 = 50;

/// Seconds between reloads of an unfinished run's page.
const REFRESH: u32 = 3;

/// Whether a run in `status` is over (an unknown status is not: better a
/// page that keeps reloading than one that stops while a run goes on).
fn finished(status: &str) -> bool {
    RunStatus::ALL
        .iter()
        .any(|s| s.as_str() == status && s.is_terminal())
}

/// JSON in a line, for a table cell (already redacted by [`RunView`]).
fn json(value: &Value) -> String {
    format!("<code>{}</code>", escape(&value.to_string()))
}

/// `GET /ui/runs`: recent runs, newest first (`?state=` to filter).
pub(crate) async fn list(
    session: Session,
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let wanted = query
        .get("state")
        .and_then(|s| RunStatus::ALL.iter().find(|k| k.as_str() == s))
        .map(|s| s.as_str());
    let states: Vec<&str> = wanted.into_iter().collect();
    let runs = match state.store.runs(&states, RECENT).await {
        Ok(runs) => runs,
        Err(e) => return session::failure(&e.into()),
    };
    let mut filters = vec![if wanted.is_none() {
        "<strong aria-current=\"page\">all</strong>".to_string()
    } else {
        "<a href=\"/ui/runs\">all</a>".to_string()
    }];
    for s in RunStatus::ALL {
        let name = s.as_str();
        filters.push(if wanted == Some(name) {
            format!("<strong aria-current=\"page\">{name}</strong>")
        } else {
            format!("<a href=\"/ui/runs?state={name}\">{name}</a>")
        });
    }
    let mut rows = String::new();
    for run in &runs {
        rows.push_str(&format!(
            "<tr><td><a href=\"/ui/runs/{}\">{}@{}</a></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            segment(&run.id),
            escape(&run.playbook),
            escape(&run.version),
            state_word(&run.status),
            when(run.created_at),
            escape(&run.id),
        ));
    }
    let table = if runs.is_empty() {
        "<p>No runs.</p>".to_string()
    } else {
        format!(
            "<div class=\"scroll\"><table><tr><th scope=\"col\">playbook</th><th scope=\"col\">state</th><th scope=\"col\">started</th><th scope=\"col\">id</th></tr>{rows}</table></div><p class=\"muted\">The {RECENT} newest.</p>"
        )
    };
    respond(
        StatusCode::OK,
        signed_in(
            "Runs",
            &session.nav(),
            None,
            &format!("<p class=\"filters\">{}</p>{table}", filters.join(" ")),
        ),
    )
}

/// The run as the API shows it: secret inputs `[secret]`, their values
/// redacted from every state, output and trigger.
async fn view(state: &AppState, id: &str) -> Result<Option<RunView>, ApiError> {
    let Some(record) = state.store.run(id).await? else {
        return Ok(None);
    };
    let attempts = state.store.attempts(id).await?;
    // Which inputs are secret is the pinned version's say.
    let secrets = state
        .store
        .version(&record.playbook, &record.version)
        .await?
        .map(|v| secret_inputs(&v.playbook))
        .unwrap_or_default();
    Ok(Some(RunView::new(&record, &attempts, &secrets)))
}

/// `GET /ui/runs/{id}`: the run, its steps and attempts, live while it runs.
pub(crate) async fn show(
    session: Session,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Response {
    let run = match view(&state, &id).await {
        Ok(Some(run)) => run,
        Ok(None) => {
            return respond(
                StatusCode::NOT_FOUND,
                signed_in(
                    "Run",
                    &session.nav(),
                    None,
                    &format!(
                        "<p class=\"error\">No run <code>{}</code>. <code>unknown_run</code></p><p><a href=\"/ui/runs\">Recent runs</a></p>",
                        escape(&id)
                    ),
                ),
            );
        }
        Err(e) => return session::failure(&e),
    };
    let waiting = match state
        .store
        .approvals(&ApprovalFilter {
            status: Some("pending".to_string()),
            run: Some(run.id.clone()),
        })
        .await
    {
        Ok(requests) => requests,
        Err(e) => return session::failure(&e.into()),
    };
    let live = !finished(&run.status);
    let mut body = format!(
        "<p>State: {}{}{}</p><p class=\"muted\">run <code>{}</code> · digest <code>{}</code> · started {} · changed {}</p>",
        state_word(&run.status),
        if run.dry_run { " · dry run" } else { "" },
        if live {
            format!(" · this page reloads every {REFRESH} s")
        } else {
            String::new()
        },
        escape(&run.id),
        escape(&run.digest),
        when(run.created_at),
        when(run.updated_at),
    );
    // What it waits on, why it failed, who paused or cancelled it.
    body.push_str(&format!("<p>Details: {}</p>", json(&run.state)));
    for request in &waiting {
        body.push_str(&format!(
            "<p role=\"status\">Waiting for approval at <code>{}</code>: <a href=\"/ui/approvals/{}\">{}</a></p>",
            escape(&request.step),
            segment(&request.id),
            escape(&request.message),
        ));
    }
    body.push_str(&format!(
        "<p>Trigger: {}</p><h2>Inputs</h2>",
        json(&run.trigger)
    ));
    if run.inputs.is_empty() {
        body.push_str("<p>None.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><tr><th scope=\"col\">input</th><th scope=\"col\">value</th></tr>");
        for (name, value) in &run.inputs {
            body.push_str(&format!(
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(name),
                json(value)
            ));
        }
        body.push_str("</table></div>");
    }
    body.push_str("<h2>Steps</h2>");
    if run.steps.is_empty() {
        body.push_str("<p>No step has started yet.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><tr><th scope=\"col\">step</th><th scope=\"col\">state</th><th scope=\"col\">attempt</th><th scope=\"col\">changed</th><th scope=\"col\">outputs</th></tr>");
        for step in &run.steps {
            let outputs = step.outputs.as_ref().map(json).unwrap_or_default();
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{outputs}</td></tr>",
                escape(&step.key),
                state_word(&step.status),
                step.attempt,
                when(step.updated_at),
            ));
        }
        body.push_str("</table></div>");
    }
    body.push_str("<h2>Attempts</h2>");
    if run.attempts.is_empty() {
        body.push_str("<p>None yet.</p>");
    } else {
        body.push_str("<div class=\"scroll\"><table><tr><th scope=\"col\">step</th><th scope=\"col\">#</th><th scope=\"col\">state</th><th scope=\"col\">node</th><th scope=\"col\">started</th><th scope=\"col\">finished</th><th scope=\"col\">details</th></tr>");
        for attempt in &run.attempts {
            body.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&attempt.step),
                attempt.number,
                state_word(&attempt.status),
                escape(&attempt.node),
                when(attempt.started_at),
                attempt.finished_at.map(when).unwrap_or_default(),
                json(&attempt.state),
            ));
        }
        body.push_str("</table></div>");
    }
    let title = format!("{}@{}", run.playbook, run.version);
    respond(
        StatusCode::OK,
        signed_in(&title, &session.nav(), live.then_some(REFRESH), &body),
    )
}
