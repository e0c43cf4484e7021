//! Diagnostics: one problem, where it is, and what to do about it (SPEC §3.2).

use std::fmt::Write as _;

use serde::Serialize;

use crate::codes::{Code, Severity};
use crate::yaml::Pos;

/// One problem found in a playbook. Serialises to exactly the SPEC §3.2
/// JSON shape: `{code, severity, message, file, line, col, hint}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The stable code, such as `G203`.
    pub code: Code,
    /// `error` or `warning`.
    pub severity: Severity,
    /// What is wrong, naming the offending values.
    pub message: String,
    /// The file, as given to the validator.
    pub file: String,
    /// 1-based line of the offending key or value.
    pub line: u32,
    /// 1-based column of the offending key or value.
    pub col: u32,
    /// What to do about it.
    pub hint: String,
}

impl Diagnostic {
    /// A diagnostic with the code's severity and default hint.
    pub fn new(code: Code, file: &str, pos: Pos, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            file: file.to_string(),
            line: pos.line,
            col: pos.col,
            hint: code.hint().to_string(),
        }
    }

    /// Replaces the default hint with a more specific one.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = hint.into();
        self
    }

    /// Whether the diagnostic blocks publishing and running.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The human form: `FILE:LINE:COL: error[CODE]: message` and an indented `help:` line.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}:{}:{}: {}[{}]: {}",
            self.file, self.line, self.col, self.severity, self.code, self.message
        );
        let _ = writeln!(out, "  help: {}", self.hint);
        out
    }
}

/// Sorts diagnostics by file, position and code, so output is stable.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (&a.file, a.line, a.col, a.code, &a.message)
            .cmp(&(&b.file, b.line, b.col, b.code, &b.message))
    });
}
