//! The plugin's own errors and the host's.

use std::fmt;

use crate::bindings::cordon::plugin::types as wit;

/// A failure of the plugin, returned from
/// [`Plugin::execute`](crate::Plugin::execute) or
/// [`Plugin::compensate`](crate::Plugin::compensate) (WIT
/// `types.plugin-error`). The attempt fails with error kind `plugin`, and
/// the engine retries it only if the error is retryable.
///
/// `?` converts a [`HostError`] into an `Error` that is retryable exactly
/// when the host error is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
    retryable: bool,
}

impl Error {
    /// An error that trying again would only repeat: bad input, a refusal,
    /// a state of the device that needs a person.
    pub fn permanent(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            retryable: false,
        }
    }

    /// An error that may go away: a device or service that did not answer.
    pub fn retryable(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            retryable: true,
        }
    }

    /// What went wrong, for an operator.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the engine may retry the attempt.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<HostError> for Error {
    fn from(error: HostError) -> Error {
        Error {
            retryable: error.is_retryable(),
            message: error.to_string(),
        }
    }
}

impl From<Error> for wit::PluginError {
    fn from(error: Error) -> wit::PluginError {
        wit::PluginError {
            message: error.message,
            retryable: error.retryable,
        }
    }
}

/// Why the host did not carry out a call to one of its interfaces (WIT
/// `types.host-error`). Each case carries the host's message, which is for
/// people and not a stable API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The sandbox's policy refused the call (a connection not declared and
    /// granted, a header the host owns). The host ends the attempt with
    /// error kind `denied` whatever the plugin returns afterwards.
    Denied(String),
    /// The service behind the connection could not be reached. Retryable.
    Unavailable(String),
    /// The call's own timeout passed. Retryable.
    Timeout(String),
    /// The arguments break the contract or exceed a host limit.
    Invalid(String),
    /// The remote end refused (an MQTT failure reason code).
    Rejected(String),
    /// The call could change something and the attempt is a dry run: the
    /// host did not perform it and recorded it as an intent.
    DryRun(String),
}

impl HostError {
    /// Whether the same call may succeed later: only for
    /// [`Unavailable`](HostError::Unavailable) and
    /// [`Timeout`](HostError::Timeout).
    pub fn is_retryable(&self) -> bool {
        matches!(self, HostError::Unavailable(_) | HostError::Timeout(_))
    }

    /// The host's message.
    pub fn message(&self) -> &str {
        match self {
            HostError::Denied(message)
            | HostError::Unavailable(message)
            | HostError::Timeout(message)
            | HostError::Invalid(message)
            | HostError::Rejected(message)
            | HostError::DryRun(message) => message,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            HostError::Denied(_) => "denied",
            HostError::Unavailable(_) => "unavailable",
            HostError::Timeout(_) => "timeout",
            HostError::Invalid(_) => "invalid",
            HostError::Rejected(_) => "rejected",
            HostError::DryRun(_) => "not performed in a dry run",
        }
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host: {}: {}", self.kind(), self.message())
    }
}

impl std::error::Error for HostError {}

impl From<wit::HostError> for HostError {
    fn from(error: wit::HostError) -> HostError {
        match error {
            wit::HostError::Denied(message) => HostError::Denied(message),
            wit::HostError::Unavailable(message) => HostError::Unavailable(message),
            wit::HostError::Timeout(message) => HostError::Timeout(message),
            wit::HostError::Invalid(message) => HostError::Invalid(message),
            wit::HostError::Rejected(message) => HostError::Rejected(message),
            wit::HostError::DryRun(message) => HostError::DryRun(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unavailable_and_timeout_are_retryable() {
        let retryable: Vec<bool> = [
            HostError::Denied("d".into()),
            HostError::Unavailable("u".into()),
            HostError::Timeout("t".into()),
            HostError::Invalid("i".into()),
            HostError::Rejected("r".into()),
            HostError::DryRun("n".into()),
        ]
        .into_iter()
        .map(|error| Error::from(error).is_retryable())
        .collect();
        assert_eq!(retryable, [false, true, true, false, false, false]);
    }

    #[test]
    fn host_error_message_names_its_kind() {
        let error = Error::from(HostError::Denied("connection other-broker".into()));
        assert_eq!(error.message(), "host: denied: connection other-broker");
    }
}
