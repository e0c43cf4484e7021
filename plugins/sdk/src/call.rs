//! The context of one `execute` or `compensate` call.

use crate::bindings::cordon::plugin::types as wit;

/// The context of one call of [`Plugin::execute`](crate::Plugin::execute) or
/// [`Plugin::compensate`](crate::Plugin::compensate) (WIT `types.call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The run the call belongs to.
    pub run_id: String,
    /// The step's key in the run; a fan-out item is part of it, as in
    /// `rollback[plc-7]`.
    pub step_id: String,
    /// Which attempt of the step this is, counting from 1.
    pub attempt: u32,
    /// Identifies this attempt to the outside world (for `execute`,
    /// `<run>/<step>/<attempt>`). Send it as is, for example as the request
    /// id of a device command, so that a device can recognise a repeated
    /// attempt; never rebuild it from the other fields. An attempt re-run
    /// after a crash gets the same key.
    pub idempotency_key: String,
    /// Plan, do not act: read what you need, declare each side effect with
    /// [`intent::declare`](crate::intent::declare), and return an output that
    /// describes the plan. The host refuses every call that could change
    /// something outside it anyway ([`HostError::DryRun`](crate::HostError::DryRun)).
    pub dry_run: bool,
}

impl From<wit::Call> for Call {
    fn from(call: wit::Call) -> Call {
        Call {
            run_id: call.run_id,
            step_id: call.step_id,
            attempt: call.attempt,
            idempotency_key: call.idempotency_key,
            dry_run: call.dry_run,
        }
    }
}
