//! Why a mail was not sent, with a stable code and whether to retry.

use std::error::Error as _;
use std::time::Duration;

/// A mail that was not sent. The code is stable; [`MailError::is_transient`]
/// says whether sending again later may succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// A recipient is not a usable address. Fix the address; retrying
    /// cannot help.
    #[error("`{address}` is not a usable email address: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// Why it is refused.
        reason: String,
    },
    /// The message cannot be built (no recipient, a line break in the
    /// subject). Fix what the mail is made from; retrying cannot help.
    #[error("the mail cannot be sent: {0}")]
    BadMessage(String),
    /// The server answered with an error reply: 4xx replies are transient
    /// (try again later), 5xx replies and replies the client cannot
    /// understand are permanent.
    #[error("the SMTP server {server} refused the mail: {reply}")]
    Refused {
        /// `host:port`.
        server: String,
        /// The reply code (`550`), when there was one.
        code: Option<u16>,
        /// The code and the server's text, or what went wrong.
        reply: String,
        /// A 4xx reply.
        transient: bool,
    },
    /// The server could not be reached, or the connection broke. Transient.
    #[error("cannot reach the SMTP server {server}: {message}")]
    Unreachable {
        /// `host:port`.
        server: String,
        /// The network error.
        message: String,
    },
    /// The TLS handshake failed (an untrusted or mismatched certificate, no
    /// common protocol). A configuration matter: retrying repeats it.
    #[error("TLS with the SMTP server {server} failed: {message}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What the TLS library said.
        message: String,
    },
    /// The server did not answer in time. Transient.
    #[error("the SMTP server {server} did not answer within {} ms", after.as_millis())]
    Timeout {
        /// `host:port`.
        server: String,
        /// The configured timeout.
        after: Duration,
    },
}

impl MailError {
    /// A stable code: `bad_address`, `bad_message`, `smtp_refused`,
    /// `smtp_unreachable`, `tls` or `timeout`.
    pub fn code(&self) -> &'static str {
        match self {
            MailError::BadAddress { .. } => "bad_address",
            MailError::BadMessage(_) => "bad_message",
            MailError::Refused { .. } => "smtp_refused",
            MailError::Unreachable { .. } => "smtp_unreachable",
            MailError::Tls { .. } => "tls",
            MailError::Timeout { .. } => "timeout",
        }
    }

    /// Whether sending the same mail again later may succeed: 4xx replies,
    /// connection failures and timeouts; never 5xx replies, bad addresses
    /// or TLS failures.
    pub fn is_transient(&self) -> bool {
        match self {
            MailError::Refused { transient, .. } => *transient,
            MailError::Unreachable { .. } | MailError::Timeout { .. } => true,
            MailError::BadAddress { .. } | MailError::BadMessage(_) | MailError::Tls { .. } => {
                false
            }
        }
    }

    /// A reply from the server: transient when its code is 4xx.
    pub(crate) fn reply(server: &str, code: Option<u16>, reply: String) -> MailError {
        MailError::Refused {
            server: server.to_string(),
            code,
            transient: code.is_some_and(|c| (400..500).contains(&c)),
            reply,
        }
    }

    /// Classifies one of lettre's SMTP errors.
    pub(crate) fn from_smtp(
        server: &str,
        timeout: Duration,
        e: &lettre::transport::smtp::Error,
    ) -> MailError {
        let server_ = server.to_string();
        if e.is_timeout() {
            return MailError::Timeout {
                server: server_,
                after: timeout,
            };
        }
        let detail = e.source().map_or_else(|| e.to_string(), |s| s.to_string());
        if let Some(code) = e.status() {
            let code = u16::from(code);
            return MailError::reply(server, Some(code), format!("{code} {detail}"));
        }
        if e.is_tls() || is_tls_failure(e) {
            return MailError::Tls {
                server: server_,
                message: detail,
            };
        }
        if e.is_client() || e.is_response() {
            // The client gave up on this server: no STARTTLS offered, no
            // usable AUTH mechanism, a reply it cannot parse. Sending again
            // to the same server repeats it.
            return MailError::reply(server, None, e.to_string());
        }
        // Connection, network and shut-down transport errors.
        MailError::Unreachable {
            server: server_,
            message: detail,
        }
    }
}

/// Whether a rustls error is somewhere in the chain: lettre reports a
/// failed handshake as a connection error wrapping an `io::Error` that
/// wraps the `rustls::Error`.
fn is_tls_failure(e: &lettre::transport::smtp::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = next {
        if err.is::<rustls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps; look at it directly.
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
        {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_hundreds_are_transient_five_hundreds_are_not() {
        let e = MailError::reply("h:25", Some(451), "451 try later".into());
        assert!(e.is_transient());
        assert_eq!(e.code(), "smtp_refused");
        let e = MailError::reply("h:25", Some(550), "550 no such user".into());
        assert!(!e.is_transient());
        let e = MailError::reply("h:25", None, "cannot parse the reply".into());
        assert!(!e.is_transient());
    }

    #[test]
    fn codes_are_stable() {
        let server = "h:25".to_string();
        let cases = [
            (
                MailError::BadAddress {
                    address: "x".into(),
                    reason: "y".into(),
                },
                "bad_address",
                false,
            ),
            (MailError::BadMessage("x".into()), "bad_message", false),
            (
                MailError::Unreachable {
                    server: server.clone(),
                    message: "refused".into(),
                },
                "smtp_unreachable",
                true,
            ),
            (
                MailError::Tls {
                    server: server.clone(),
                    message: "unknown issuer".into(),
                },
                "tls",
                false,
            ),
            (
                MailError::Timeout {
                    server,
                    after: Duration::from_millis(1500),
                },
                "timeout",
                true,
            ),
        ];
        for (e, code, transient) in cases {
            assert_eq!(e.code(), code);
            assert_eq!(e.is_transient(), transient, "{e}");
        }
    }
}
