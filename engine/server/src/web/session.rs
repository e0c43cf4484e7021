//! Browser sessions of the web pages.
//!
//! Someone signs in by pasting an API token (`POST /ui/login`), which is
//! checked exactly as the API checks a bearer token
//! ([`AppState::authenticate`]). The cookie they get back is not the token:
//! it is `v1.<token id>.<issued>.<signature>`, the token's public id and the
//! sign-in time signed with the server's link key. So the long-lived API
//! credential never sits in a browser's cookie jar (a copied cookie opens
//! these pages for at most [`LIFETIME`], and never the API), and a database
//! reader cannot make a session. Each request re-reads the token's record:
//! revoking or expiring the token, or removing its user from the directory,
//! ends every session opened with it at once.
//!
//! Every state-changing form carries a CSRF token derived from the session
//! value ([`LinkKeys::session_csrf`]), checked in constant time; the cookie
//! is also `SameSite=Strict`, `HttpOnly` and limited to `/ui`.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, TimeDelta, Utc};
use cordon_storage::TokenStatus;

use super::page::{Nav, escape, page, redirect, respond};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::mail::links::LinkKeys;
use crate::state::AppState;

/// The cookie's name.
pub(crate) const COOKIE: &str = "cordon_session";

/// How long a session lasts after sign-in: a long shift. The token's own
/// expiry ends it sooner.
pub(crate) const LIFETIME: TimeDelta = TimeDelta::hours(12);

/// How far in the future a session's sign-in time may be (clocks of
/// several nodes behind one address disagree a little).
const SKEW: TimeDelta = TimeDelta::minutes(1);

/// A signed-in person on a page.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Who, as the API would see them with the token they signed in with.
    pub principal: Principal,
    /// The cookie's value (the CSRF token is derived from it).
    value: String,
    csrf: String,
    keys: Arc<LinkKeys>,
}

impl Session {
    /// The form token of this session's forms.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's `csrf` field is this session's (constant time).
    pub(crate) fn check_csrf(&self, given: Option<&String>) -> bool {
        given.is_some_and(|given| self.keys.check_session_csrf(&self.value, given))
    }

    /// The frame's navigation for this session.
    pub(crate) fn nav(&self) -> Nav<'_> {
        Nav {
            user: &self.principal.user,
            role: self.principal.role.as_str(),
            csrf: &self.csrf,
        }
    }
}

/// A new session value for the token `token_id`, signed in at `now`.
pub(crate) fn issue(keys: &LinkKeys, token_id: &str, now: DateTime<Utc>) -> String {
    let issued = now.timestamp().to_string();
    let signature = keys.session_signature(token_id, &issued);
    format!("v1.{token_id}.{issued}.{signature}")
}

/// Whether cookies must be `Secure`: when people reach the server by https.
fn https(state: &AppState) -> bool {
    state.config.public_url.as_deref().is_some_and(|url| {
        url.get(..8)
            .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    })
}

fn cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if https(state) { "; Secure" } else { "" };
    let text =
        format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    // Session values are hex, digits and dots: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that opens a session.
pub(crate) fn set_cookie(state: &AppState, value: &str) -> HeaderValue {
    cookie(state, value, LIFETIME.num_seconds())
}

/// The `Set-Cookie` value that removes the session from the browser.
pub(crate) fn clear_cookie(state: &AppState) -> HeaderValue {
    cookie(state, "", 0)
}

/// The values of every `cordon_session` cookie a request carries.
fn presented(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .collect()
}

/// Why a presented session does not open; shown on the sign-in page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Not a session of this server (or its key changed).
    Invalid,
    /// Older than [`LIFETIME`].
    Expired,
    /// The token it was opened with expired, was revoked, or its user left
    /// the directory.
    TokenGone,
}

impl Ended {
    /// The code carried in the sign-in page's query.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Ended::Invalid => "invalid",
            Ended::Expired => "expired",
            Ended::TokenGone => "token",
        }
    }

    /// The sentence for a code (only these known codes are ever shown).
    pub(crate) fn sentence(code: &str) -> Option<&'static str> {
        match code {
            "invalid" => Some("Your session is not valid here; sign in again."),
            "expired" => Some("Your session ended; sign in again."),
            "token" => Some(
                "The token you signed in with no longer works (expired or revoked, or you left the directory); sign in with a current one.",
            ),
            _ => None,
        }
    }
}

/// Opens a session value at `now`: the principal, or why not.
async fn open(
    state: &AppState,
    keys: &LinkKeys,
    value: &str,
    now: DateTime<Utc>,
) -> Result<Result<Principal, Ended>, ApiError> {
    let mut fields = value.split('.');
    let (Some("v1"), Some(token_id), Some(issued), Some(signature), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Ok(Err(Ended::Invalid));
    };
    // The signature first: nothing unsigned reaches the database.
    if token_id.is_empty()
        || token_id.len() > 64
        || !keys.check_session_signature(token_id, issued, signature)
    {
        return Ok(Err(Ended::Invalid));
    }
    let Some(issued) = issued
        .parse::<i64>()
        .ok()
        .and_then(|s| DateTime::from_timestamp(s, 0))
    else {
        return Ok(Err(Ended::Invalid));
    };
    if issued > now + SKEW || now - issued >= LIFETIME {
        return Ok(Err(Ended::Expired));
    }
    // The token as it is now: the same record the API's check reads, the
    // same rule for its status, the same directory.
    let Some(record) = state.store.token_by_id(token_id).await? else {
        return Ok(Err(Ended::Invalid));
    };
    if record.status(now) != TokenStatus::Active {
        return Ok(Err(Ended::TokenGone));
    }
    Ok(state.principal_of(record)?.ok_or(Ended::TokenGone))
}

/// Where a page that needs a session sends someone without one.
fn to_login(path: &str, ended: Option<Ended>, state: &AppState) -> Response {
    let mut location = String::from("/ui/login");
    let mut sep = '?';
    if let Some(next) = next_path(path) {
        location.push_str(&format!("{sep}next={next}"));
        sep = '&';
    }
    if let Some(ended) = ended {
        location.push_str(&format!("{sep}ended={}", ended.code()));
    }
    let mut response = redirect(&location);
    if ended.is_some() {
        // A session that no longer opens is dropped from the browser too.
        response
            .headers_mut()
            .append(header::SET_COOKIE, clear_cookie(state));
    }
    response
}

/// `path` when it is a page to come back to after signing in: one of
/// ours, of plain characters (so it needs no encoding and cannot point
/// elsewhere), and not the sign-in or sign-out itself.
pub(crate) fn next_path(path: &str) -> Option<&str> {
    let plain = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.'));
    (plain
        && path.starts_with("/ui/")
        && !path.contains("//")
        && !path.contains("..")
        && path != "/ui/login"
        && path != "/ui/logout")
        .then_some(path)
}

/// The page shown when sessions cannot work: the server has no link key.
pub(crate) fn disabled() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        page(
            "Web pages disabled",
            "<p>This server has no link key, which signs web sessions; the web pages are off. Use the API or the CLI.</p>",
        ),
    )
}

/// The answer to a state-changing form without this session's form token.
pub(crate) fn csrf_refused() -> Response {
    respond(
        StatusCode::FORBIDDEN,
        page(
            "Refused",
            "<p class=\"error\">The form did not come from one of this session's pages (CSRF check failed); nothing was changed. Open the page again and resubmit. <code>csrf_failed</code></p>",
        ),
    )
}

/// A failure while reading what a page shows (storage, mostly), as a page.
pub(crate) fn failure(e: &ApiError) -> Response {
    respond(
        e.code.status(),
        page(
            "Something went wrong",
            &format!(
                "<p class=\"error\">{} <code>{}</code></p>",
                escape(&e.message),
                e.code.as_str()
            ),
        ),
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(keys) = state.links.clone() else {
            return Err(disabled());
        };
        let now = Utc::now();
        let mut ended = None;
        // A browser may hold more than one (an old one under another
        // path): the first that opens counts.
        for value in presented(&parts.headers) {
            match open(state, &keys, value, now).await {
                Ok(Ok(principal)) => {
                    tracing::Span::current()
                        .record("user", tracing::field::display(&principal.user));
                    let csrf = keys.session_csrf(value);
                    return Ok(Session {
                        principal,
                        value: value.to_string(),
                        csrf,
                        keys,
                    });
                }
                Ok(Err(why)) => ended = Some(why),
                Err(e) => return Err(failure(&e)),
            }
        }
        Err(to_login(parts.uri.path(), ended, state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_pages_of_ours_are_come_back_to() {
        assert_eq!(next_path("/ui/runs/0191-ab"), Some("/ui/runs/0191-ab"));
        for bad in [
            "/ui/login",
            "/ui/logout",
            "//evil.example/ui/",
            "/ui//evil.example",
            "/api/v1/runs",
            "/ui/../api",
            "/ui/a?b",
            "/ui/a%2F",
            "https://evil.example/ui/",
        ] {
            assert_eq!(next_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookies_are_read_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; cordon_session=x"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("cordon_session=y"));
        assert_eq!(presented(&headers), ["x", "y"]);
    }

    #[test]
    fn a_session_value_is_signed_over_token_and_time() {
        let keys = LinkKeys::new([7; 32]);
        let now = Utc::now();
        let value = issue(&keys, "0123456789abcdef", now);
        let parts: Vec<&str> = value.split('.').collect();
        assert_eq!(parts.len(), 4);
        assert!(keys.check_session_signature(parts[1], parts[2], parts[3]));
        assert!(!keys.check_session_signature("0123456789abcdee", parts[2], parts[3]));
        let later = (now.timestamp() + 1).to_string();
        assert!(!keys.check_session_signature(parts[1], &later, parts[3]));
        let other = LinkKeys::new([8; 32]);
        assert!(!other.check_session_signature(parts[1], parts[2], parts[3]));
        // The form token is bound to the session, and is not a link's.
        let csrf = keys.session_csrf(&value);
        assert!(keys.check_session_csrf(&value, &csrf));
        assert!(
            !keys.check_session_csrf(&issue(&keys, "0123456789abcdef", later_time(now)), &csrf)
        );
        assert_ne!(csrf, keys.csrf(&value));
    }

    fn later_time(now: DateTime<Utc>) -> DateTime<Utc> {
        now + TimeDelta::seconds(5)
    }
}
