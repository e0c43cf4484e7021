//! The `smtp:` section of Cordon's configuration file, and its checks.
//!
//! ```yaml
//! smtp:
//!   host: smtp.example.org
//!   tls: starttls            # none | starttls | tls (default starttls)
//!   port: 587                # default by tls: 25 / 587 / 465
//!   username: cordon
//!   password_env: CORDON_SMTP_PASSWORD   # or `password: "…"`
//!   from: "Cordon <cordon@example.org>"
//!   ca_file: /etc/cordon/smtp-ca.pem     # trusted in addition to the webpki roots
//!   timeout_ms: 10000
//! ```

use std::net::IpAddr;
use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::Deserialize;

use crate::address;
use crate::secret::Secret;

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text. Only for a relay on this machine: credentials over it are
    /// refused unless the host is a loopback address.
    None,
    /// Plain connection upgraded with STARTTLS, which is required: a server
    /// that does not offer it is refused (port 587 by default).
    #[default]
    Starttls,
    /// TLS from the first byte, "implicit TLS" (port 465 by default).
    Tls,
}

impl TlsMode {
    /// The usual port for this mode: 25, 587 or 465.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        }
    }

    /// The name used in the configuration file.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::None => "none",
            TlsMode::Starttls => "starttls",
            TlsMode::Tls => "tls",
        }
    }
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// The SMTP server mail is sent through, and as whom.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name or IP address; with TLS, the name its
    /// certificate must carry.
    pub host: String,
    /// The port (default by `tls`: 25, 587 or 465).
    #[serde(default)]
    pub port: Option<u16>,
    /// `none`, `starttls` (the default) or `tls`.
    #[serde(default)]
    pub tls: TlsMode,
    /// The user to authenticate as; with a password, or not at all.
    #[serde(default)]
    pub username: Option<String>,
    /// The password, written in the file. Prefer `password_env`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// The environment variable that holds the password (read when the
    /// mailer is built), so the file can be shared without it.
    #[serde(default)]
    pub password_env: Option<String>,
    /// The sender: `Cordon <cordon@example.org>` or `cordon@example.org`.
    pub from: String,
    /// A PEM file of CA certificates trusted in addition to the webpki
    /// roots, for a server with a certificate from a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long one send may take, connecting included, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

/// A configuration that cannot work, found before anything is sent.
/// Every variant is the operator's to fix in the `smtp:` section.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `host` is empty or contains spaces or control characters.
    #[error("smtp.host `{0}` is not a host name or IP address")]
    Host(String),
    /// `from` is not a mailbox.
    #[error("smtp.from `{address}` is not a usable sender address: {reason}")]
    Sender {
        /// What was written.
        address: String,
        /// Why it is refused.
        reason: String,
    },
    /// The credentials are incomplete or given twice.
    #[error("smtp credentials: {0}")]
    Credentials(String),
    /// `password_env` names a variable that is not set.
    #[error(
        "smtp.password_env names the environment variable `{0}`, which is not set (or empty) in this process"
    )]
    PasswordEnv(String),
    /// Credentials would cross the network in plain text.
    #[error(
        "smtp: refusing to send the password for `{username}` in plain text to {host}: with `tls: none` credentials are only allowed to a loopback host; use `tls: starttls` or `tls: tls`"
    )]
    PlaintextCredentials {
        /// The user.
        username: String,
        /// The non-loopback host.
        host: String,
    },
    /// `ca_file` cannot be read or holds no certificate.
    #[error("smtp.ca_file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting that contradicts another, or is out of range.
    #[error("smtp: {0}")]
    Invalid(String),
    /// The TLS client could not be set up with these settings.
    #[error("smtp: cannot set up TLS: {0}")]
    Tls(String),
}

impl ConfigError {
    /// A stable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Host(_) => "smtp_host",
            ConfigError::Sender { .. } => "smtp_from",
            ConfigError::Credentials(_) => "smtp_credentials",
            ConfigError::PasswordEnv(_) => "smtp_password_env",
            ConfigError::PlaintextCredentials { .. } => "smtp_plaintext_credentials",
            ConfigError::CaFile { .. } => "smtp_ca_file",
            ConfigError::Invalid(_) => "smtp_invalid",
            ConfigError::Tls(_) => "smtp_tls",
        }
    }
}

/// A checked configuration, with the password read and the CA file loaded.
pub(crate) struct Checked {
    pub(crate) port: u16,
    pub(crate) from: Mailbox,
    pub(crate) credentials: Option<(String, Secret)>,
    pub(crate) ca_pem: Option<Vec<u8>>,
}

impl SmtpConfig {
    /// The port: the one given, or the usual one for the TLS mode.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    /// Checks everything that can be checked without connecting: the host,
    /// the sender, the credentials (reading `password_env`), plain-text
    /// credentials to a remote host, and the CA file.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check().map(drop)
    }

    pub(crate) fn check(&self) -> Result<Checked, ConfigError> {
        let host = self.host.as_str();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::Host(self.host.clone()));
        }
        if self.port == Some(0) {
            return Err(ConfigError::Invalid("port 0 is not a port".into()));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "timeout_ms must be more than 0".into(),
            ));
        }
        let from = address::mailbox(&self.from).map_err(|reason| ConfigError::Sender {
            address: self.from.clone(),
            reason,
        })?;
        let credentials = self.credentials()?;
        if let Some((username, _)) = &credentials
            && self.tls == TlsMode::None
            && !is_loopback(host)
        {
            return Err(ConfigError::PlaintextCredentials {
                username: username.clone(),
                host: host.to_string(),
            });
        }
        let ca_pem = match &self.ca_file {
            None => None,
            Some(_) if self.tls == TlsMode::None => {
                return Err(ConfigError::Invalid(
                    "ca_file is set but tls is `none`: no certificate would ever be checked".into(),
                ));
            }
            Some(path) => Some(read_ca(path)?),
        };
        Ok(Checked {
            port: self.port(),
            from,
            credentials,
            ca_pem,
        })
    }

    /// The username and password, if any; both or neither.
    fn credentials(&self) -> Result<Option<(String, Secret)>, ConfigError> {
        let password = match (&self.password, &self.password_env) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Credentials(
                    "give either `password` or `password_env`, not both".into(),
                ));
            }
            (Some(p), None) => Some(p.clone()),
            (None, Some(var)) => match std::env::var(var) {
                Ok(value) if !value.is_empty() => Some(Secret::new(value)),
                _ => return Err(ConfigError::PasswordEnv(var.clone())),
            },
            (None, None) => None,
        };
        match (&self.username, password) {
            (Some(user), Some(password)) if !user.is_empty() => Ok(Some((user.clone(), password))),
            (Some(_), Some(_)) => Err(ConfigError::Credentials("`username` is empty".into())),
            (Some(_), None) => Err(ConfigError::Credentials(
                "`username` is set but no password (`password` or `password_env`)".into(),
            )),
            (None, Some(_)) => Err(ConfigError::Credentials(
                "a password is set but no `username`".into(),
            )),
            (None, None) => Ok(None),
        }
    }
}

/// Whether `host` names this machine: `localhost` or a loopback address.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reads a PEM file and checks that it holds at least one certificate.
fn read_ca(path: &PathBuf) -> Result<Vec<u8>, ConfigError> {
    let error = |reason: String| ConfigError::CaFile {
        path: path.clone(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    // A file without any certificate parses as an empty list: say so here
    // rather than fail every handshake later.
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(error("holds no PEM certificate".into()));
    }
    lettre::transport::smtp::client::Certificate::from_pem(&pem)
        .map_err(|e| error(format!("not a PEM certificate file: {e}")))?;
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<SmtpConfig, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    fn config(yaml: &str) -> SmtpConfig {
        match parse(yaml) {
            Ok(c) => c,
            Err(e) => panic!("{yaml}: {e}"),
        }
    }

    fn refusal(yaml: &str) -> ConfigError {
        match config(yaml).validate() {
            Err(e) => e,
            Ok(()) => panic!("accepted: {yaml}"),
        }
    }

    #[test]
    fn defaults_follow_the_tls_mode() {
        let c = config("{host: mail.example.org, from: cordon@example.org}");
        assert_eq!(c.tls, TlsMode::Starttls);
        assert_eq!(c.port(), 587);
        assert_eq!(c.timeout_ms, 10_000);
        let c = config("{host: h, tls: none, from: a@b.c}");
        assert_eq!(c.port(), 25);
        let c = config("{host: h, tls: tls, from: a@b.c}");
        assert_eq!(c.port(), 465);
        let c = config("{host: h, tls: tls, port: 2465, from: a@b.c}");
        assert_eq!(c.port(), 2465);
        c.validate().unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn unknown_fields_and_modes_are_refused() {
        let e = parse("{host: h, from: a@b.c, pasword: x}").err();
        assert!(e.is_some_and(|e| e.contains("unknown field `pasword`")));
        let e = parse("{host: h, from: a@b.c, tls: ssl}").err();
        assert!(e.is_some_and(|e| e.contains("unknown variant `ssl`")));
    }

    #[test]
    fn the_password_never_shows_in_debug() {
        let c = config("{host: h, from: a@b.c, username: u, password: hunter2}");
        let debug = format!("{c:?}");
        assert!(debug.contains("[secret]"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn a_bad_sender_is_refused_with_the_reason() {
        let e = refusal("{host: h, from: 'Cordon <not an address>'}");
        assert_eq!(e.code(), "smtp_from");
        assert!(e.to_string().contains("not an address"), "{e}");
        let e = refusal("{host: h, from: \"a@b.c\\r\\nBcc: x@y.z\"}");
        assert_eq!(e.code(), "smtp_from");
        assert!(e.to_string().contains("line break"), "{e}");
    }

    #[test]
    fn credentials_in_plain_text_go_only_to_loopback() {
        let e =
            refusal("{host: smtp.example.org, tls: none, from: a@b.c, username: u, password: p}");
        assert_eq!(e.code(), "smtp_plaintext_credentials");
        let message = e.to_string();
        assert!(
            message.contains("plain text to smtp.example.org"),
            "{message}"
        );
        assert!(message.contains("tls: starttls"), "{message}");
        assert!(!message.contains(": p"), "{message}");
        for host in ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.53"] {
            let yaml =
                format!("{{host: '{host}', tls: none, from: a@b.c, username: u, password: p}}");
            config(&yaml)
                .validate()
                .unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        // Without credentials, plain text to anywhere is the operator's call.
        config("{host: relay.example.org, tls: none, from: a@b.c}")
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn credentials_come_whole_and_once() {
        let e = refusal("{host: h, from: a@b.c, username: u}");
        assert_eq!(e.code(), "smtp_credentials");
        let e = refusal("{host: h, from: a@b.c, password: p}");
        assert_eq!(e.code(), "smtp_credentials");
        let e = refusal("{host: h, from: a@b.c, username: u, password: p, password_env: P}");
        assert_eq!(e.code(), "smtp_credentials");
    }

    #[test]
    fn the_password_can_come_from_the_environment() {
        // A variable name no other test uses: tests share the environment.
        let var = "CORDON_NOTIFY_TEST_PASSWORD_ENV_UNSET";
        let e = refusal(&format!(
            "{{host: h, from: a@b.c, username: u, password_env: {var}}}"
        ));
        assert_eq!(e.code(), "smtp_password_env");
        assert!(e.to_string().contains(var), "{e}");
        let var = "PATH"; // set in every test process
        let c = config(&format!(
            "{{host: h, from: a@b.c, username: u, password_env: {var}}}"
        ));
        let checked = c.check().unwrap_or_else(|e| panic!("{e}"));
        let (user, password) = checked
            .credentials
            .unwrap_or_else(|| panic!("no credentials"));
        assert_eq!(user, "u");
        assert_eq!(Some(password.expose().to_string()), std::env::var(var).ok());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_refused() {
        let e = refusal("{host: h, from: a@b.c, ca_file: /nonexistent/ca.pem}");
        assert_eq!(e.code(), "smtp_ca_file");
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap_or_else(|e| panic!("{e}"));
        let e = refusal(&format!(
            "{{host: h, from: a@b.c, ca_file: '{}'}}",
            empty.display()
        ));
        assert_eq!(e.code(), "smtp_ca_file");
        let e = refusal(&format!(
            "{{host: h, tls: none, from: a@b.c, ca_file: '{}'}}",
            empty.display()
        ));
        assert_eq!(e.code(), "smtp_invalid");
    }

    #[test]
    fn hosts_ports_and_timeouts_are_checked() {
        assert_eq!(refusal("{host: '', from: a@b.c}").code(), "smtp_host");
        assert_eq!(refusal("{host: 'a b', from: a@b.c}").code(), "smtp_host");
        assert_eq!(
            refusal("{host: h, port: 0, from: a@b.c}").code(),
            "smtp_invalid"
        );
        assert_eq!(
            refusal("{host: h, timeout_ms: 0, from: a@b.c}").code(),
            "smtp_invalid"
        );
    }
}
