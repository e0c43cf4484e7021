//! Server-rendered pages (no script; forms and links only): the page a
//! mailed approval link opens, and the signed-in pages under `/ui` — the
//! approvals inbox with each request's plan, and runs with their live step
//! states. Every `/ui` page but the sign-in needs a session
//! ([`session::Session`]); every form that changes something carries the
//! session's CSRF token.

mod confirm;
mod inbox;
mod login;
mod page;
mod runs;
mod session;

use axum::Router;
use axum::response::Response;
use axum::routing::{get, post};

use crate::state::AppState;

/// The page routes (outside `/api/v1`: a mailed link, or the session
/// cookie, is their credential).
pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/approve/{token}", get(confirm::show).post(confirm::decide))
        .route("/ui", get(home))
        .route("/ui/", get(home))
        .route("/ui/login", get(login::form).post(login::sign_in))
        .route("/ui/logout", post(login::sign_out))
        .route("/ui/approvals", get(inbox::list))
        .route("/ui/approvals/{id}", get(inbox::show).post(inbox::decide))
        .route("/ui/runs", get(runs::list))
        .route("/ui/runs/{id}", get(runs::show))
}

/// `GET /ui`: the inbox is the home page.
async fn home() -> Response {
    page::redirect("/ui/approvals")
}
