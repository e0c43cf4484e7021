//! Email for Cordon: the only crate that knows SMTP (lettre).
//!
//! - [`SmtpConfig`] is the `smtp:` section of the configuration file;
//!   [`Mailer`] is built from it and sends a [`Mail`] over SMTP (STARTTLS
//!   or implicit TLS with rustls and ring; a private CA may be trusted in
//!   addition to the webpki roots).
//! - [`templates`] turns plain data (an approval request, a failed run, a
//!   playbook's `notify:` step) into a [`Mail`], plain text and escaped
//!   HTML, with no IO.
//! - [`NotifyingExecutor`] performs `notify:` steps for the run engine and
//!   delegates every other action.
//!
//! Failures are [`MailError`]s with stable codes; [`MailError::is_transient`]
//! decides whether a retry may help. The password is a [`Secret`]: it
//! never appears in `Debug` output or logs.

mod address;
mod config;
mod error;
mod executor;
mod mailer;
mod recipients;
mod secret;
pub mod templates;

pub use config::{ConfigError, SmtpConfig, TlsMode};
pub use error::MailError;
pub use executor::NotifyingExecutor;
pub use mailer::{Mail, Mailer, MessageId};
pub use recipients::Recipients;
pub use secret::Secret;
