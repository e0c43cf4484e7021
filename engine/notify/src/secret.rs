//! A value that must never be printed: the SMTP password.

use std::fmt;

use serde::Deserialize;

/// A secret string. `Debug` and `Display` print `[secret]`, so a secret
/// cannot leak through `{:?}` of a configuration, a log field or a panic
/// message; only [`Secret::expose`] reads it, at the one place that hands
/// it to the SMTP client.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself. Call it only to hand the secret to whatever needs
    /// it, never to print or record it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[secret]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "[secret]");
        assert_eq!(format!("{s}"), "[secret]");
        assert_eq!(format!("{:?}", Some(&s)), "Some([secret])");
        assert_eq!(s.expose(), "hunter2");
    }
}
