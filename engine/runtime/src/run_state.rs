//! The run lifecycle (SPEC §6).
//!
//! ```text
//! queued ──start──► running ◄──wake── waiting
//!   │                 │ ├──wait──────────►┘
//!   │                 │ ├──pause──► paused ──resume──► running
//!   │                 │ ├──complete──► succeeded
//!   │        fail / cancel / time out (any active state)
//!   │                 ├── with compensation ──► compensating ──compensated──► failed | cancelled
//!   │                 └── without ───────────────────────────────────────────► failed | cancelled
//!   └──cancel──► cancelled
//! ```

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::machine::{InvalidTransition, Transition};

/// Who did something to a run.
pub type Actor = String;

/// Why a run is waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum WaitReason {
    /// Every runnable step waits for an approval gate.
    Approval {
        /// The gate.
        step: String,
    },
    /// Every runnable step waits for a timer (a `wait`, a retry backoff or a wave pause).
    Timer {
        /// The earliest timer.
        until: Timestamp,
    },
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunError {
    /// A step failed for good and did not let the run continue.
    StepFailed {
        /// The step.
        step: String,
        /// Its error.
        message: String,
    },
    /// An approval gate was rejected (denied, or timed out with `on_timeout: reject`).
    Rejected {
        /// The gate.
        step: String,
    },
    /// The run's `timeout` passed.
    TimedOut,
    /// The pinned version can no longer be planned (a plugin it uses is
    /// gone or changed); nothing more of it can run, nor be undone.
    Unplannable {
        /// Why.
        message: String,
    },
}

/// How an ending run got there; it decides the final state after compensation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cause", rename_all = "snake_case")]
pub enum Ending {
    /// The run failed.
    Failure {
        /// Why.
        error: RunError,
    },
    /// Someone cancelled it.
    Cancellation {
        /// Who.
        by: Actor,
    },
}

/// A run's state, with exactly the data valid in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    /// Created, not yet picked up by a scheduler.
    Queued {
        /// When it was created.
        queued_at: Timestamp,
    },
    /// Steps are being dispatched.
    Running {
        /// When it first started.
        started_at: Timestamp,
    },
    /// Nothing can run until a gate is decided or a timer fires.
    Waiting {
        /// When it first started.
        started_at: Timestamp,
        /// What it waits for.
        on: WaitReason,
    },
    /// Held by a person: no new step starts until resumed.
    Paused {
        /// When it first started.
        started_at: Timestamp,
        /// Who paused it.
        by: Actor,
    },
    /// Undoing completed compensable steps, newest first.
    Compensating {
        /// When it first started.
        started_at: Timestamp,
        /// Why it is ending.
        ending: Ending,
    },
    /// Every step finished as planned.
    Succeeded {
        /// When it first started.
        started_at: Timestamp,
        /// When it finished.
        finished_at: Timestamp,
    },
    /// It failed (after compensation, if any).
    Failed {
        /// Why.
        error: RunError,
        /// When it finished.
        finished_at: Timestamp,
    },
    /// It was cancelled (after compensation, if any).
    Cancelled {
        /// Who cancelled it.
        by: Actor,
        /// When it finished.
        finished_at: Timestamp,
    },
}

/// Something that happens to a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEvent {
    /// A scheduler picked the run up.
    Start {
        /// When.
        at: Timestamp,
    },
    /// Every runnable step is blocked on a gate or a timer.
    Wait {
        /// On what.
        on: WaitReason,
    },
    /// The gate was decided or the timer fired.
    Wake,
    /// A person holds the run.
    Pause {
        /// Who.
        by: Actor,
    },
    /// A person releases the run.
    Resume,
    /// Every step is finished and none failed the run.
    Complete {
        /// When.
        at: Timestamp,
    },
    /// The run fails (a step failed, a gate was rejected, the run timed out).
    Fail {
        /// Why.
        error: RunError,
        /// Whether completed compensable steps are to be undone.
        compensate: bool,
        /// When.
        at: Timestamp,
    },
    /// A person cancels the run.
    Cancel {
        /// Who.
        by: Actor,
        /// Whether completed compensable steps are to be undone.
        compensate: bool,
        /// When.
        at: Timestamp,
    },
    /// Every compensation has finished.
    Compensated {
        /// When.
        at: Timestamp,
    },
}

/// What the driver does after committing a run transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEffect {
    /// Start every step whose needs are met.
    DispatchReadySteps,
    /// Stop attempts in flight (their results will be absorbed).
    CancelActiveAttempts,
    /// Undo completed compensable steps, newest first.
    CompensateCompletedSteps,
    /// Run the playbook's `on_failure.handlers`.
    RunFailureHandlers,
    /// The run is over: release its lease, sign a checkpoint, notify.
    Finish,
}

/// The name of a state, as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// See [`RunState::Queued`].
    Queued,
    /// See [`RunState::Running`].
    Running,
    /// See [`RunState::Waiting`].
    Waiting,
    /// See [`RunState::Paused`].
    Paused,
    /// See [`RunState::Compensating`].
    Compensating,
    /// See [`RunState::Succeeded`].
    Succeeded,
    /// See [`RunState::Failed`].
    Failed,
    /// See [`RunState::Cancelled`].
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Waiting,
        RunStatus::Paused,
        RunStatus::Compensating,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Paused => "paused",
            RunStatus::Compensating => "compensating",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the run is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// The name of an event, for the transition table and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEventKind {
    /// [`RunEvent::Start`]
    Start,
    /// [`RunEvent::Wait`]
    Wait,
    /// [`RunEvent::Wake`]
    Wake,
    /// [`RunEvent::Pause`]
    Pause,
    /// [`RunEvent::Resume`]
    Resume,
    /// [`RunEvent::Complete`]
    Complete,
    /// [`RunEvent::Fail`]
    Fail,
    /// [`RunEvent::Cancel`]
    Cancel,
    /// [`RunEvent::Compensated`]
    Compensated,
}

impl RunEventKind {
    fn as_str(self) -> &'static str {
        match self {
            RunEventKind::Start => "start",
            RunEventKind::Wait => "wait",
            RunEventKind::Wake => "wake",
            RunEventKind::Pause => "pause",
            RunEventKind::Resume => "resume",
            RunEventKind::Complete => "complete",
            RunEventKind::Fail => "fail",
            RunEventKind::Cancel => "cancel",
            RunEventKind::Compensated => "compensated",
        }
    }
}

use RunEventKind as E;
use RunStatus as S;

/// Every allowed transition: from a status, on an event, to one of these
/// statuses. Terminal statuses are absent: they absorb every event. The
/// machine below is tested against this table for every pair.
pub const TRANSITIONS: &[(RunStatus, RunEventKind, &[RunStatus])] = &[
    (S::Queued, E::Start, &[S::Running]),
    (S::Queued, E::Cancel, &[S::Cancelled]),
    (S::Running, E::Wait, &[S::Waiting]),
    (S::Running, E::Pause, &[S::Paused]),
    (S::Running, E::Complete, &[S::Succeeded]),
    (S::Running, E::Fail, &[S::Compensating, S::Failed]),
    (S::Running, E::Cancel, &[S::Compensating, S::Cancelled]),
    (S::Waiting, E::Wake, &[S::Running]),
    (S::Waiting, E::Wait, &[S::Waiting]),
    (S::Waiting, E::Pause, &[S::Paused]),
    (S::Waiting, E::Fail, &[S::Compensating, S::Failed]),
    (S::Waiting, E::Cancel, &[S::Compensating, S::Cancelled]),
    (S::Paused, E::Resume, &[S::Running]),
    (S::Paused, E::Fail, &[S::Compensating, S::Failed]),
    (S::Paused, E::Cancel, &[S::Compensating, S::Cancelled]),
    (S::Compensating, E::Compensated, &[S::Failed, S::Cancelled]),
    // A cancel during compensation changes nothing: the run is already ending.
    (S::Compensating, E::Cancel, &[S::Compensating]),
];

impl RunEvent {
    /// The event's name.
    pub fn kind(&self) -> RunEventKind {
        match self {
            RunEvent::Start { .. } => E::Start,
            RunEvent::Wait { .. } => E::Wait,
            RunEvent::Wake => E::Wake,
            RunEvent::Pause { .. } => E::Pause,
            RunEvent::Resume => E::Resume,
            RunEvent::Complete { .. } => E::Complete,
            RunEvent::Fail { .. } => E::Fail,
            RunEvent::Cancel { .. } => E::Cancel,
            RunEvent::Compensated { .. } => E::Compensated,
        }
    }
}

impl RunState {
    /// The state's name.
    pub fn status(&self) -> RunStatus {
        match self {
            RunState::Queued { .. } => S::Queued,
            RunState::Running { .. } => S::Running,
            RunState::Waiting { .. } => S::Waiting,
            RunState::Paused { .. } => S::Paused,
            RunState::Compensating { .. } => S::Compensating,
            RunState::Succeeded { .. } => S::Succeeded,
            RunState::Failed { .. } => S::Failed,
            RunState::Cancelled { .. } => S::Cancelled,
        }
    }

    /// Feeds `event` to the run. Pure: the caller persists the returned
    /// state, then performs the effects.
    pub fn on(self, event: RunEvent) -> Result<Transition<RunState, RunEffect>, InvalidTransition> {
        use RunEffect::{
            CancelActiveAttempts, CompensateCompletedSteps, DispatchReadySteps, Finish,
            RunFailureHandlers,
        };
        if self.status().is_terminal() {
            return Ok(Transition::Absorbed { state: self });
        }
        let to = |state, effects| Ok(Transition::To { state, effects });
        match (self, event) {
            (RunState::Queued { .. }, RunEvent::Start { at }) => to(
                RunState::Running { started_at: at },
                vec![DispatchReadySteps],
            ),
            (RunState::Queued { .. }, RunEvent::Cancel { by, at, .. }) => to(
                RunState::Cancelled {
                    by,
                    finished_at: at,
                },
                vec![Finish],
            ),
            (
                RunState::Running { started_at } | RunState::Waiting { started_at, .. },
                RunEvent::Wait { on },
            ) => to(RunState::Waiting { started_at, on }, vec![]),
            (RunState::Waiting { started_at, .. }, RunEvent::Wake)
            | (RunState::Paused { started_at, .. }, RunEvent::Resume) => {
                to(RunState::Running { started_at }, vec![DispatchReadySteps])
            }
            (
                RunState::Running { started_at } | RunState::Waiting { started_at, .. },
                RunEvent::Pause { by },
            ) => to(RunState::Paused { started_at, by }, vec![]),
            (RunState::Running { started_at }, RunEvent::Complete { at }) => to(
                RunState::Succeeded {
                    started_at,
                    finished_at: at,
                },
                vec![Finish],
            ),
            (
                RunState::Running { started_at }
                | RunState::Waiting { started_at, .. }
                | RunState::Paused { started_at, .. },
                RunEvent::Fail {
                    error,
                    compensate,
                    at,
                },
            ) => {
                if compensate {
                    let ending = Ending::Failure { error };
                    to(
                        RunState::Compensating { started_at, ending },
                        vec![CancelActiveAttempts, CompensateCompletedSteps],
                    )
                } else {
                    to(
                        RunState::Failed {
                            error,
                            finished_at: at,
                        },
                        vec![CancelActiveAttempts, RunFailureHandlers, Finish],
                    )
                }
            }
            (
                RunState::Running { started_at }
                | RunState::Waiting { started_at, .. }
                | RunState::Paused { started_at, .. },
                RunEvent::Cancel { by, compensate, at },
            ) => {
                if compensate {
                    let ending = Ending::Cancellation { by };
                    to(
                        RunState::Compensating { started_at, ending },
                        vec![CancelActiveAttempts, CompensateCompletedSteps],
                    )
                } else {
                    to(
                        RunState::Cancelled {
                            by,
                            finished_at: at,
                        },
                        vec![CancelActiveAttempts, Finish],
                    )
                }
            }
            (state @ RunState::Compensating { .. }, RunEvent::Cancel { .. }) => to(state, vec![]),
            (RunState::Compensating { ending, .. }, RunEvent::Compensated { at }) => match ending {
                Ending::Failure { error } => to(
                    RunState::Failed {
                        error,
                        finished_at: at,
                    },
                    vec![RunFailureHandlers, Finish],
                ),
                Ending::Cancellation { by } => to(
                    RunState::Cancelled {
                        by,
                        finished_at: at,
                    },
                    vec![Finish],
                ),
            },
            (state, event) => Err(InvalidTransition {
                machine: "run",
                state: state.status().as_str(),
                event: event.kind().as_str(),
            }),
        }
    }
}
