//! Sending mail: a [`Mail`] is checked, built into a MIME message with a
//! known Message-ID, and handed to the SMTP server over a pooled
//! connection.

use std::fmt;
use std::time::{Duration, Instant};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;

use crate::address;
use crate::config::{Checked, ConfigError, SmtpConfig, TlsMode};
use crate::error::MailError;

/// One mail to send: plain text, and HTML as an alternative when given
/// (`multipart/alternative`). The sender is the configuration's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mail {
    /// Recipients: `a@example.org` or `Name <a@example.org>`, at least one.
    pub to: Vec<String>,
    /// The subject: one line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// The HTML body, if any; every value in it must already be escaped.
    pub html: Option<String>,
}

/// The Message-ID of a sent mail, angle brackets included
/// (`<3f2c…@example.org>`): what a mail client threads and deduplicates by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct MessageId(String);

impl MessageId {
    /// The identifier, with its angle brackets.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sends mail through the configured SMTP server. Cheap to share behind an
/// `Arc`; connections are pooled and reused.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// `host:port`, for errors and logs.
    server: String,
    tls: TlsMode,
    timeout: Duration,
}

impl fmt::Debug for Mailer {
    // By hand: the transport holds the credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("tls", &self.tls)
            .field("from", &self.from.to_string())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The header that tells mail servers and vacation responders that no one
/// typed this mail, so they do not answer it (RFC 3834).
const AUTO_SUBMITTED: HeaderName = HeaderName::new_from_ascii_str("Auto-Submitted");

impl Mailer {
    /// A mailer for `config`, checked (see [`SmtpConfig::validate`]). It
    /// does not connect yet. Must be called, and the mailer dropped, inside
    /// a Tokio runtime: the connection pool runs a task of its own.
    pub fn new(config: &SmtpConfig) -> Result<Mailer, ConfigError> {
        let checked = config.check()?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::Invalid(
                "the mailer must be built inside a Tokio runtime".into(),
            ));
        }
        // `[::1]` is how a URL writes it; the resolver wants `::1`.
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(checked.port)
            .timeout(Some(timeout))
            .tls(tls(host, config.tls, &checked)?);
        if let Some((username, password)) = &checked.credentials {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose().to_string(),
            ));
        }
        Ok(Mailer {
            transport: builder.build(),
            server: format!("{}:{}", config.host, checked.port),
            from: checked.from,
            tls: config.tls,
            timeout,
        })
    }

    /// The sender, as it appears in the `From:` header.
    pub fn from_address(&self) -> String {
        self.from.to_string()
    }

    /// The server, `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// A new, random Message-ID in the sender's domain.
    pub fn new_message_id(&self) -> MessageId {
        self.id_in_domain(uuid::Uuid::new_v4())
    }

    /// The Message-ID derived from `seed` (an idempotency key): sending the
    /// same attempt twice after a crash gives both copies the same
    /// Message-ID, which mail clients show once.
    pub fn message_id_for(&self, seed: &str) -> MessageId {
        let name = format!("cordon-notify:{seed}");
        self.id_in_domain(uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            name.as_bytes(),
        ))
    }

    fn id_in_domain(&self, id: uuid::Uuid) -> MessageId {
        MessageId(format!("<{id}@{}>", self.from.email.domain()))
    }

    /// Sends `mail` with a new Message-ID, which it returns once the server
    /// has accepted the mail for every recipient.
    pub async fn send(&self, mail: &Mail) -> Result<MessageId, MailError> {
        self.send_as(mail, self.new_message_id()).await
    }

    /// Sends `mail` with Message-ID `id`.
    pub async fn send_as(&self, mail: &Mail, id: MessageId) -> Result<MessageId, MailError> {
        let message = self.build(mail, &id)?;
        let recipients = message.envelope().to().len();
        let started = Instant::now();
        // lettre's timeout bounds each network operation; this bounds the
        // whole exchange, so a server that trickles replies cannot hold a
        // step for longer than configured either.
        let sent = tokio::time::timeout(self.timeout, self.transport.send(message)).await;
        match sent {
            Ok(Ok(_reply)) => {
                tracing::info!(
                    server = %self.server,
                    message_id = %id,
                    recipients,
                    elapsed_ms = started.elapsed().as_millis(),
                    "mail sent"
                );
                Ok(id)
            }
            Ok(Err(e)) => {
                let error = MailError::from_smtp(&self.server, self.timeout, &e);
                tracing::warn!(server = %self.server, message_id = %id, code = error.code(), "mail not sent: {error}");
                Err(error)
            }
            Err(_elapsed) => {
                tracing::warn!(server = %self.server, message_id = %id, code = "timeout", "mail not sent: timed out");
                Err(MailError::Timeout {
                    server: self.server.clone(),
                    after: self.timeout,
                })
            }
        }
    }

    /// Checks `mail` as [`Mailer::send`] would, without sending it: what a
    /// dry run does.
    pub fn check(&self, mail: &Mail) -> Result<(), MailError> {
        self.build(mail, &self.new_message_id()).map(drop)
    }

    /// The MIME message. Addresses and the subject are checked here, before
    /// any byte reaches a header.
    fn build(&self, mail: &Mail, id: &MessageId) -> Result<Message, MailError> {
        address::header_value("subject", &mail.subject).map_err(MailError::BadMessage)?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .message_id(Some(id.0.clone()))
            .raw_header(HeaderValue::new(AUTO_SUBMITTED, "auto-generated".into()));
        let mut seen = Vec::new();
        for to in &mail.to {
            let mailbox = address::mailbox(to).map_err(|reason| MailError::BadAddress {
                address: to.clone(),
                reason,
            })?;
            // The same address twice is one delivery, not two.
            if !seen.contains(&mailbox.email) {
                seen.push(mailbox.email.clone());
                builder = builder.to(mailbox);
            }
        }
        if seen.is_empty() {
            return Err(MailError::BadMessage("it has no recipient".into()));
        }
        let built = match &mail.html {
            None => builder
                .header(ContentType::TEXT_PLAIN)
                .body(mail.text.clone()),
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                html.clone(),
            )),
        };
        built.map_err(|e| MailError::BadMessage(e.to_string()))
    }
}

/// lettre's TLS setting for a mode: STARTTLS is required, never
/// opportunistic (a server that does not offer it is refused rather than
/// sent to in plain text); the private CA, if any, is trusted in addition
/// to the webpki roots.
fn tls(host: &str, mode: TlsMode, checked: &Checked) -> Result<Tls, ConfigError> {
    let wrap: fn(TlsParameters) -> Tls = match mode {
        TlsMode::None => return Ok(Tls::None),
        TlsMode::Starttls => Tls::Required,
        TlsMode::Tls => Tls::Wrapper,
    };
    let mut parameters = TlsParameters::builder(host.to_string());
    if let Some(pem) = &checked.ca_pem {
        let certificate =
            Certificate::from_pem(pem).map_err(|e| ConfigError::Tls(e.to_string()))?;
        parameters = parameters.add_root_certificate(certificate);
    }
    let parameters = parameters
        .build_rustls()
        .map_err(|e| ConfigError::Tls(e.to_string()))?;
    Ok(wrap(parameters))
}
