//! Signing in and out of the web pages: paste an API token, get a session
//! cookie ([`super::session`]). The token travels only in a POST body:
//! never in a URL, never into a log, never back into a page.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::Utc;

use super::page::{escape, page, redirect, respond};
use super::session::{self, Ended, Session};
use crate::state::AppState;

/// Where someone lands after signing in, unless they came from a page.
const HOME: &str = "/ui/approvals";

fn login_page(status: StatusCode, next: Option<&str>, notice: &str) -> Response {
    let hidden = next
        .map(|n| {
            format!(
                "<input type=\"hidden\" name=\"next\" value=\"{}\">",
                escape(n)
            )
        })
        .unwrap_or_default();
    // A mailed link opened from another site arrives without the
    // `SameSite=Strict` cookie; a same-site click on this link carries it.
    let resume = next
        .map(|n| {
            format!(
                "<p class=\"muted\">Already signed in in this browser? <a href=\"{}\">Continue to the page you opened</a>.</p>",
                escape(n)
            )
        })
        .unwrap_or_default();
    respond(
        status,
        page(
            "Sign in",
            &format!(
                "{notice}<form method=\"post\" action=\"/ui/login\"><label for=\"token\">API token <small>(from <code>cordon token create</code>; it is not stored in this browser)</small></label><input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" spellcheck=\"false\" required>{hidden}<button>Sign in</button></form>{resume}"
            ),
        ),
    )
}

/// `GET /ui/login`: the form.
pub(crate) async fn form(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if state.links.is_none() {
        return session::disabled();
    }
    let next = query
        .get("next")
        .and_then(|n| session::next_path(n))
        .map(str::to_string);
    let notice = query
        .get("ended")
        .and_then(|c| Ended::sentence(c))
        .map(|s| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(s)))
        .unwrap_or_default();
    login_page(StatusCode::OK, next.as_deref(), &notice)
}

/// `POST /ui/login`: checks the token as the API does and opens a session.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(keys) = state.links.clone() else {
        return session::disabled();
    };
    let next = form
        .get("next")
        .and_then(|n| session::next_path(n))
        .map(str::to_string);
    let refuse = |message: &str, code: &str| {
        login_page(
            StatusCode::UNAUTHORIZED,
            next.as_deref(),
            &format!(
                "<p class=\"error\" role=\"alert\">{} <code>{}</code></p>",
                escape(message),
                escape(code)
            ),
        )
    };
    let token = form.get("token").map(|t| t.trim()).unwrap_or_default();
    if token.is_empty() {
        return refuse("Paste an API token.", "unauthenticated");
    }
    // The API's own check, fed the token as the bearer header it reads:
    // one code path decides what a valid token is (hash, expiry,
    // revocation, the directory). The value is marked sensitive.
    let Ok(mut bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return refuse("That is not an API token.", "unauthenticated");
    };
    bearer.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, bearer);
    let principal = match state.authenticate(&headers).await {
        Ok(principal) => principal,
        Err(e) => return refuse(&e.message, e.code.as_str()),
    };
    let value = session::issue(&keys, &principal.token, Utc::now());
    tracing::info!(user = %principal.user, token_id = %principal.token, "web session opened");
    let mut response = redirect(next.as_deref().unwrap_or(HOME));
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::set_cookie(&state, &value));
    response
}

/// `POST /ui/logout`: drops the session from the browser (with the
/// session's form token, so another site cannot sign someone out).
pub(crate) async fn sign_out(
    session: Session,
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !session.check_csrf(form.get("csrf")) {
        return session::csrf_refused();
    }
    tracing::info!(user = %session.principal.user, "web session closed");
    let mut response = redirect("/ui/login");
    response
        .headers_mut()
        .append(header::SET_COOKIE, session::clear_cookie(&state));
    response
}
