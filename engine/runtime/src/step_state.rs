//! One step of one run (one item of a fan-out counts as one step).
//!
//! ```text
//! pending ──start──► running ──attempt ok──► succeeded ──compensate──► compensating ──► compensated
//!    │                  │  ├──attempt failed, retry──► waiting(backoff) ──timer──► running (attempt+1)
//!    │                  │  ├──attempt failed, no retry──► failed                      └──► compensation_failed
//!    │                  │  └──wait (gate / timer)──► waiting ──approved / timer──► succeeded
//!    │                  │                                 └──rejected──► failed
//!    ├──skip──► skipped                   running / waiting ──cancel──► cancelled
//!    └──cancel──► skipped (run ended)
//! ```

use serde::{Deserialize, Serialize};

use crate::attempt_state::AttemptError;
use crate::clock::Timestamp;
use crate::machine::{InvalidTransition, Transition};

/// What a waiting step waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "snake_case")]
pub enum StepWait {
    /// People to decide an approval gate.
    Approval {
        /// When the request went out.
        requested_at: Timestamp,
    },
    /// A durable timer (`wait: 30s`, or the next poll of `wait: {until}`).
    Timer {
        /// When it fires.
        until: Timestamp,
    },
    /// The pause before the next retry.
    Backoff {
        /// When the next attempt starts.
        until: Timestamp,
    },
}

/// Why a step did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum SkipReason {
    /// Its `if:` was false.
    ConditionFalse,
    /// A step it needs did not succeed.
    UpstreamDidNotSucceed {
        /// That step.
        step: String,
    },
    /// The run ended (failed or cancelled) before it started.
    RunEnded,
}

/// A step's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StepState {
    /// Waiting for its needs.
    Pending,
    /// Attempt `attempt` is executing.
    Running {
        /// The attempt number, from 1.
        attempt: u32,
        /// When the step started (its first attempt).
        started_at: Timestamp,
    },
    /// Blocked on a gate, a timer or a retry backoff.
    Waiting {
        /// The current (or last failed, for a backoff) attempt number.
        attempt: u32,
        /// When the step started.
        started_at: Timestamp,
        /// What it waits for.
        on: StepWait,
    },
    /// Done.
    Succeeded {
        /// When the step started.
        started_at: Timestamp,
        /// When it finished.
        finished_at: Timestamp,
    },
    /// Failed for good (retries exhausted, error not transient, or gate rejected).
    Failed {
        /// When it finished.
        finished_at: Timestamp,
        /// Why.
        message: String,
    },
    /// Never ran.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
    /// Stopped by a cancellation while running or waiting.
    Cancelled {
        /// When.
        finished_at: Timestamp,
    },
    /// Its undo is running.
    Compensating {
        /// When the undo started.
        started_at: Timestamp,
    },
    /// Undone.
    Compensated {
        /// When.
        finished_at: Timestamp,
    },
    /// The undo failed: a person must look at the device.
    CompensationFailed {
        /// When.
        finished_at: Timestamp,
        /// Why.
        message: String,
    },
}

/// Something that happens to a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEvent {
    /// Its needs are met and its condition holds: attempt 1 starts.
    Start {
        /// When.
        at: Timestamp,
    },
    /// It will not run.
    Skip {
        /// Why.
        reason: SkipReason,
    },
    /// It blocks on a gate or timer: a gate or `wait` step starting (from
    /// pending), or a running step handing over to a timer.
    Wait {
        /// On what.
        on: StepWait,
        /// When.
        at: Timestamp,
    },
    /// The current attempt succeeded.
    AttemptSucceeded {
        /// When.
        at: Timestamp,
    },
    /// The current attempt failed; `retry_at` is set when the retry policy allows another.
    AttemptFailed {
        /// When.
        at: Timestamp,
        /// The error.
        error: AttemptError,
        /// When to start the next attempt, if any.
        retry_at: Option<Timestamp>,
    },
    /// A timer or backoff fired.
    TimerFired {
        /// When.
        at: Timestamp,
    },
    /// The gate was approved.
    Approved {
        /// When.
        at: Timestamp,
    },
    /// The gate was denied, or timed out with `on_timeout: reject`.
    Rejected {
        /// When.
        at: Timestamp,
        /// Why, for the record.
        reason: String,
    },
    /// A polled condition (`wait: {until}`) did not hold before its timeout.
    Expired {
        /// When.
        at: Timestamp,
        /// Why, for the record.
        reason: String,
    },
    /// The run is cancelled or failed.
    Cancel {
        /// When.
        at: Timestamp,
    },
    /// The run compensates: undo this completed step.
    Compensate {
        /// When.
        at: Timestamp,
    },
    /// The undo finished.
    CompensationFinished {
        /// When.
        at: Timestamp,
        /// Ok, or why it failed.
        result: Result<(), String>,
    },
}

/// What the driver does after committing a step transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepEffect {
    /// Start attempt `n` (create its record, then call the executor).
    StartAttempt(u32),
    /// Arm a durable timer.
    ArmTimer(Timestamp),
    /// Send the approval request.
    RequestApproval,
    /// Re-evaluate the steps that need this one.
    ReleaseDependents,
    /// Stop the attempt in flight.
    AbortAttempt,
    /// Call the plugin's `compensate`.
    StartCompensation,
    /// Tell the run the step failed (it decides: `on_failure`, handlers, compensation).
    ReportFailure,
}

/// A step state's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// [`StepState::Pending`]
    Pending,
    /// [`StepState::Running`]
    Running,
    /// [`StepState::Waiting`]
    Waiting,
    /// [`StepState::Succeeded`]
    Succeeded,
    /// [`StepState::Failed`]
    Failed,
    /// [`StepState::Skipped`]
    Skipped,
    /// [`StepState::Cancelled`]
    Cancelled,
    /// [`StepState::Compensating`]
    Compensating,
    /// [`StepState::Compensated`]
    Compensated,
    /// [`StepState::CompensationFailed`]
    CompensationFailed,
}

impl StepStatus {
    /// Every status.
    pub const ALL: [StepStatus; 10] = [
        StepStatus::Pending,
        StepStatus::Running,
        StepStatus::Waiting,
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::Skipped,
        StepStatus::Cancelled,
        StepStatus::Compensating,
        StepStatus::Compensated,
        StepStatus::CompensationFailed,
    ];

    /// The name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Compensating => "compensating",
            StepStatus::Compensated => "compensated",
            StepStatus::CompensationFailed => "compensation_failed",
        }
    }

    /// Whether nothing more can happen to the step.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepStatus::Failed
                | StepStatus::Skipped
                | StepStatus::Cancelled
                | StepStatus::Compensated
                | StepStatus::CompensationFailed
        )
    }
}

/// A step event's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepEventKind {
    /// [`StepEvent::Start`]
    Start,
    /// [`StepEvent::Skip`]
    Skip,
    /// [`StepEvent::Wait`]
    Wait,
    /// [`StepEvent::AttemptSucceeded`]
    AttemptSucceeded,
    /// [`StepEvent::AttemptFailed`]
    AttemptFailed,
    /// [`StepEvent::TimerFired`]
    TimerFired,
    /// [`StepEvent::Approved`]
    Approved,
    /// [`StepEvent::Rejected`]
    Rejected,
    /// [`StepEvent::Expired`]
    Expired,
    /// [`StepEvent::Cancel`]
    Cancel,
    /// [`StepEvent::Compensate`]
    Compensate,
    /// [`StepEvent::CompensationFinished`]
    CompensationFinished,
}

impl StepEventKind {
    fn as_str(self) -> &'static str {
        match self {
            E::Start => "start",
            E::Skip => "skip",
            E::Wait => "wait",
            E::AttemptSucceeded => "attempt_succeeded",
            E::AttemptFailed => "attempt_failed",
            E::TimerFired => "timer_fired",
            E::Approved => "approved",
            E::Rejected => "rejected",
            E::Expired => "expired",
            E::Cancel => "cancel",
            E::Compensate => "compensate",
            E::CompensationFinished => "compensation_finished",
        }
    }
}

use StepEventKind as E;
use StepStatus as S;

/// Every allowed transition. Terminal statuses absorb every event; a
/// succeeded step absorbs every event except `compensate` (late results of
/// an attempt that was re-run after a crash arrive here).
pub const TRANSITIONS: &[(StepStatus, StepEventKind, &[StepStatus])] = &[
    (S::Pending, E::Start, &[S::Running]),
    (S::Pending, E::Skip, &[S::Skipped]),
    (S::Pending, E::Cancel, &[S::Skipped]),
    (S::Pending, E::Wait, &[S::Waiting]),
    (S::Running, E::Wait, &[S::Waiting]),
    (S::Running, E::AttemptSucceeded, &[S::Succeeded]),
    (S::Running, E::AttemptFailed, &[S::Waiting, S::Failed]),
    (S::Running, E::Cancel, &[S::Cancelled]),
    (S::Waiting, E::TimerFired, &[S::Running, S::Succeeded]),
    (S::Waiting, E::Approved, &[S::Succeeded]),
    (S::Waiting, E::Rejected, &[S::Failed]),
    // A poll that is not over yet waits again; one that timed out fails.
    (S::Waiting, E::Wait, &[S::Waiting]),
    (S::Waiting, E::Expired, &[S::Failed]),
    (S::Waiting, E::Cancel, &[S::Cancelled]),
    (S::Succeeded, E::Compensate, &[S::Compensating]),
    (
        S::Compensating,
        E::CompensationFinished,
        &[S::Compensated, S::CompensationFailed],
    ),
];

impl StepEvent {
    /// The event's name.
    pub fn kind(&self) -> StepEventKind {
        match self {
            StepEvent::Start { .. } => E::Start,
            StepEvent::Skip { .. } => E::Skip,
            StepEvent::Wait { .. } => E::Wait,
            StepEvent::AttemptSucceeded { .. } => E::AttemptSucceeded,
            StepEvent::AttemptFailed { .. } => E::AttemptFailed,
            StepEvent::TimerFired { .. } => E::TimerFired,
            StepEvent::Approved { .. } => E::Approved,
            StepEvent::Rejected { .. } => E::Rejected,
            StepEvent::Expired { .. } => E::Expired,
            StepEvent::Cancel { .. } => E::Cancel,
            StepEvent::Compensate { .. } => E::Compensate,
            StepEvent::CompensationFinished { .. } => E::CompensationFinished,
        }
    }
}

impl StepState {
    /// The state's name.
    pub fn status(&self) -> StepStatus {
        match self {
            StepState::Pending => S::Pending,
            StepState::Running { .. } => S::Running,
            StepState::Waiting { .. } => S::Waiting,
            StepState::Succeeded { .. } => S::Succeeded,
            StepState::Failed { .. } => S::Failed,
            StepState::Skipped { .. } => S::Skipped,
            StepState::Cancelled { .. } => S::Cancelled,
            StepState::Compensating { .. } => S::Compensating,
            StepState::Compensated { .. } => S::Compensated,
            StepState::CompensationFailed { .. } => S::CompensationFailed,
        }
    }

    /// Feeds `event` to the step.
    pub fn on(
        self,
        event: StepEvent,
    ) -> Result<Transition<StepState, StepEffect>, InvalidTransition> {
        use StepEffect::{
            AbortAttempt, ArmTimer, ReleaseDependents, ReportFailure, RequestApproval,
            StartAttempt, StartCompensation,
        };
        let status = self.status();
        let late = status == S::Succeeded && event.kind() != E::Compensate;
        if status.is_terminal() || late {
            return Ok(Transition::Absorbed { state: self });
        }
        let to = |state, effects| Ok(Transition::To { state, effects });
        match (self, event) {
            (StepState::Pending, StepEvent::Start { at }) => to(
                StepState::Running {
                    attempt: 1,
                    started_at: at,
                },
                vec![StartAttempt(1)],
            ),
            (StepState::Pending, StepEvent::Skip { reason }) => {
                to(StepState::Skipped { reason }, vec![ReleaseDependents])
            }
            (StepState::Pending, StepEvent::Cancel { .. }) => to(
                StepState::Skipped {
                    reason: SkipReason::RunEnded,
                },
                vec![],
            ),
            (
                state @ (StepState::Pending | StepState::Running { .. }),
                StepEvent::Wait { on, at },
            ) => {
                let (attempt, started_at) = match state {
                    StepState::Running {
                        attempt,
                        started_at,
                    } => (attempt, started_at),
                    _ => (0, at),
                };
                let effect = match &on {
                    StepWait::Approval { .. } => RequestApproval,
                    StepWait::Timer { until } | StepWait::Backoff { until } => ArmTimer(*until),
                };
                to(
                    StepState::Waiting {
                        attempt,
                        started_at,
                        on,
                    },
                    vec![effect],
                )
            }
            (StepState::Running { started_at, .. }, StepEvent::AttemptSucceeded { at }) => to(
                StepState::Succeeded {
                    started_at,
                    finished_at: at,
                },
                vec![ReleaseDependents],
            ),
            (
                StepState::Running {
                    attempt,
                    started_at,
                },
                StepEvent::AttemptFailed {
                    at,
                    error,
                    retry_at,
                },
            ) => match retry_at {
                Some(until) if error.is_transient() => to(
                    StepState::Waiting {
                        attempt,
                        started_at,
                        on: StepWait::Backoff { until },
                    },
                    vec![ArmTimer(until)],
                ),
                _ => to(
                    StepState::Failed {
                        finished_at: at,
                        message: error.message,
                    },
                    vec![ReportFailure, ReleaseDependents],
                ),
            },
            (
                StepState::Waiting {
                    attempt,
                    started_at,
                    on: StepWait::Backoff { .. },
                },
                StepEvent::TimerFired { .. },
            ) => to(
                StepState::Running {
                    attempt: attempt + 1,
                    started_at,
                },
                vec![StartAttempt(attempt + 1)],
            ),
            (
                StepState::Waiting {
                    started_at,
                    on: StepWait::Timer { .. },
                    ..
                },
                StepEvent::TimerFired { at },
            )
            | (
                StepState::Waiting {
                    started_at,
                    on: StepWait::Approval { .. },
                    ..
                },
                StepEvent::Approved { at },
            ) => to(
                StepState::Succeeded {
                    started_at,
                    finished_at: at,
                },
                vec![ReleaseDependents],
            ),
            (
                StepState::Waiting {
                    on: StepWait::Approval { .. },
                    ..
                },
                StepEvent::Rejected { at, reason },
            )
            | (
                StepState::Waiting {
                    on: StepWait::Timer { .. },
                    ..
                },
                StepEvent::Expired { at, reason },
            ) => to(
                StepState::Failed {
                    finished_at: at,
                    message: reason,
                },
                vec![ReportFailure, ReleaseDependents],
            ),
            (
                StepState::Waiting {
                    attempt,
                    started_at,
                    on: StepWait::Timer { .. },
                },
                StepEvent::Wait {
                    on: on @ StepWait::Timer { until },
                    ..
                },
            ) => to(
                StepState::Waiting {
                    attempt,
                    started_at,
                    on,
                },
                vec![ArmTimer(until)],
            ),
            (StepState::Running { .. }, StepEvent::Cancel { at }) => {
                to(StepState::Cancelled { finished_at: at }, vec![AbortAttempt])
            }
            (StepState::Waiting { .. }, StepEvent::Cancel { at }) => {
                to(StepState::Cancelled { finished_at: at }, vec![])
            }
            (StepState::Succeeded { .. }, StepEvent::Compensate { at }) => to(
                StepState::Compensating { started_at: at },
                vec![StartCompensation],
            ),
            (StepState::Compensating { .. }, StepEvent::CompensationFinished { at, result }) => {
                match result {
                    Ok(()) => to(StepState::Compensated { finished_at: at }, vec![]),
                    Err(message) => to(
                        StepState::CompensationFailed {
                            finished_at: at,
                            message,
                        },
                        vec![],
                    ),
                }
            }
            (state, event) => Err(InvalidTransition {
                machine: "step",
                state: state.status().as_str(),
                event: event.kind().as_str(),
            }),
        }
    }
}
