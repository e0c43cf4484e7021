//! The executor interface: how the engine has a step's action performed.
//! The plugin host implements it for WebAssembly plugins; until it lands,
//! tests use a scripted executor. Built-in steps (`wait`, gates) never reach
//! it; `notify` does, so the mailer can implement it.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::IdempotencyKey;
use crate::attempt_state::AttemptError;

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What a step asks the executor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Call a plugin, `name@major`.
    Plugin(String),
    /// Send an email (`to`, `subject`, `body` are in the inputs).
    Notify,
}

/// One call: a step's action with its rendered inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct StepCall {
    /// The run.
    pub run: String,
    /// The step key.
    pub step: String,
    /// What to do.
    pub action: Action,
    /// The rendered `with` (or the notify fields).
    pub inputs: Value,
    /// `run/step/attempt`: the same for every execution of this attempt.
    pub key: IdempotencyKey,
    /// Record the intended side effects instead of performing them.
    pub dry_run: bool,
    /// For a plugin: the component digest the run's playbook version pinned
    /// (`sha256:<hex>`); `None` if the version was published without one.
    pub pin: Option<String>,
    /// The values of the run's secret inputs: whatever records this call
    /// (the audit log) must redact them.
    pub secrets: Vec<String>,
}

/// Performs steps' actions.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Performs the action; its outputs, or a typed error the retry policy understands.
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>>;

    /// Undoes a completed action, given the outputs it produced.
    fn compensate(&self, call: StepCall, outputs: Value) -> BoxFuture<Result<(), String>>;
}
