//! Cordon's run engine.
//!
//! The lifecycles of runs, steps and attempts are closed state machines
//! (SPEC §6): each is a pure function `on(state, event) -> Transition`; the
//! driver persists the new state and only then performs the effects it
//! lists, and terminal states absorb late events explicitly. [`Engine`]
//! drives runs against storage through an [`executor::Executor`], with an
//! injected clock, idempotency keys, leases between nodes and the worker
//! loop.

pub mod approval;
pub mod attempt_state;
pub mod clock;
mod engine;
pub mod evaluate;
pub mod executor;
mod idempotency;
pub mod inventory;
pub mod machine;
pub mod run_state;
pub mod step_state;

pub use clock::{Clock, SystemClock, Timestamp};
pub use engine::{Engine, EngineError, Progress, RunRequest, StartError, WorkOptions};
pub use idempotency::IdempotencyKey;
pub use machine::{InvalidTransition, Transition};
