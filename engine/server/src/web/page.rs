//! The frame of every server-rendered page, and HTML escaping. Pages use
//! no script: forms and links only.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::confirm::secure;

/// Escapes text for element content and quoted attributes.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

/// A whole page.
pub(crate) fn page(title: &str, body: &str) -> String {
    frame(title, "", "", body)
}

/// Who is signed in, for the frame of the signed-in pages: their name and
/// role, and the session's form token (the sign-out button is a form).
#[derive(Debug)]
pub(crate) struct Nav<'a> {
    /// The user.
    pub user: &'a str,
    /// Their token's API role.
    pub role: &'a str,
    /// The session's CSRF token.
    pub csrf: &'a str,
}

/// A page for a signed-in person: the frame with the navigation, and a
/// `refresh` every so many seconds where the page shows something live
/// (never on a page with a form someone may be filling in).
pub(crate) fn signed_in(title: &str, nav: &Nav<'_>, refresh: Option<u32>, body: &str) -> String {
    let head = refresh
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .unwrap_or_default();
    let nav = format!(
        "<nav aria-label=\"Main\"><a href=\"/ui/approvals\">Approvals</a><a href=\"/ui/runs\">Runs</a><span class=\"who\">{} <small>({})</small></span><form method=\"post\" action=\"/ui/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form></nav>",
        escape(nav.user),
        escape(nav.role),
        escape(nav.csrf),
    );
    frame(title, &head, &nav, body)
}

fn frame(title: &str, head: &str, nav: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{head}<title>{t} — Cordon</title><style>{STYLE}</style></head><body><header><a href=\"/ui/approvals\" class=\"brand\">Cordon</a>{nav}</header><main><h1>{t}</h1>{body}</main></body></html>",
        t = escape(title),
    )
}

/// An HTML answer with the headers every page carries.
pub(crate) fn respond(status: StatusCode, body: String) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// `303 See Other` to `location` (a path of this server), with the page headers.
pub(crate) fn redirect(location: &str) -> Response {
    let mut response = secure(StatusCode::SEE_OTHER.into_response());
    // Locations are built from our own paths; one that is not a valid
    // header value falls back to the inbox rather than failing.
    let value = HeaderValue::from_str(location)
        .unwrap_or_else(|_| HeaderValue::from_static("/ui/approvals"));
    response.headers_mut().insert(header::LOCATION, value);
    response
}

/// A path segment, percent-encoded (ids are plain, but a link is never
/// trusted to be).
pub(crate) fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A moment as people read it, machine-readable too.
pub(crate) fn when(at: DateTime<Utc>) -> String {
    format!(
        "<time datetime=\"{}\">{}</time>",
        at.to_rfc3339(),
        at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// A state as a word with its colour (the word carries the meaning; the
/// colour only helps).
pub(crate) fn state(status: &str) -> String {
    let class: String = status
        .chars()
        .filter(|c| c.is_ascii_lowercase() || *c == '_')
        .collect();
    format!(
        "<span class=\"state state-{class}\">{}</span>",
        escape(status)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;line-height:1.4}header{background:#1f4e8c;padding:10px 16px;display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center}header a{color:#fff;text-decoration:none;font-weight:600}header nav{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:center;flex:1}header nav a{font-weight:400;text-decoration:underline}header .who{color:#fff;margin-left:auto}header small{color:#dde6f3}header button{margin:0;padding:4px 10px;font-size:.9em}a{color:#1f4e8c}a:focus-visible,button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #f2b600;outline-offset:2px}main{max-width:960px;margin:0 auto;padding:16px}.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 6px;text-align:left;vertical-align:top;font-size:14px}code{font-size:12px;word-break:break-all}.question{font-size:1.2em;font-weight:600}.error{color:#a40000}.digest{color:#555}.muted{color:#555}form label{display:block;margin:8px 0}form.inline{display:inline;margin:0}textarea,input{display:block;width:100%;box-sizing:border-box;font-size:1em;padding:6px}button{padding:10px 18px;margin-top:8px;font-size:1em}button.deny{background:#a40000;color:#fff}ul.cards{list-style:none;padding:0}ul.cards li{border:1px solid #ccc;border-radius:6px;padding:8px 12px;margin:8px 0}ul.cards p{margin:4px 0}.filters a{margin-right:12px}.state{font-weight:600}.state-succeeded,.state-approved{color:#0a6b0a}.state-failed,.state-rejected,.state-expired{color:#a40000}.state-waiting,.state-pending,.state-paused{color:#8a5a00}.state-running,.state-compensating{color:#1f4e8c}.state-cancelled,.state-skipped{color:#555}";
