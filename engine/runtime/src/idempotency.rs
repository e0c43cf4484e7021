//! The idempotency key every plugin call carries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `run/step/attempt`: the same for every execution of one attempt, so an
/// attempt re-run after a crash is recognised by the plugin (and the device)
/// as the same request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key of attempt `attempt` (1-based) of `step` in `run`; a fan-out
    /// item is part of the step name (`rollback[plc-7]`).
    pub fn new(run: &str, step: &str, attempt: u32) -> IdempotencyKey {
        IdempotencyKey(format!("{run}/{step}/{attempt}"))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
