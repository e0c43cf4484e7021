//! Cordon's run engine.
//!
//! Today: the lifecycles of runs, steps and attempts as closed state
//! machines (SPEC §6), the injected clock and idempotency keys. Each machine
//! is a pure function `on(state, event) -> Transition`; the driver persists
//! the new state and only then performs the effects it lists. Terminal
//! states absorb late events explicitly. The scheduler that drives them
//! against storage is the next increment of this crate.

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
