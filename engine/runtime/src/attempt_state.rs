//! One try of one step: the unit a plugin call runs in.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::machine::{InvalidTransition, Transition};

/// Why an attempt failed. The kinds are the plugin sandbox's typed errors
/// (SPEC §4); the retry policy asks [`AttemptError::is_transient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The wall-clock deadline passed (the device or network may just be slow).
    Timeout,
    /// The plugin exceeded its memory limit.
    OutOfMemory,
    /// The plugin exceeded its CPU budget.
    OutOfFuel,
    /// The plugin trapped (a bug, or a panic).
    Trap,
    /// The plugin asked for something it was not granted.
    Denied,
    /// The plugin returned output that does not match its declared schema.
    InvalidOutput,
    /// The plugin reported a failure of its own; it says whether retrying may help.
    Plugin,
    /// Nothing on this node can perform the action (no plugin host, no
    /// mailer configured). Retrying on the same node repeats the failure.
    Unavailable,
}

/// A failed attempt's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What happened, for people.
    pub message: String,
    /// For [`ErrorKind::Plugin`]: whether the plugin says a retry may succeed.
    #[serde(default)]
    pub retryable: bool,
}

impl AttemptError {
    /// Whether a retry may succeed. Limits and denials are properties of the
    /// plugin and its grants, so retrying them only repeats the failure.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Timeout => true,
            ErrorKind::Plugin => self.retryable,
            ErrorKind::OutOfMemory
            | ErrorKind::OutOfFuel
            | ErrorKind::Trap
            | ErrorKind::Denied
            | ErrorKind::InvalidOutput
            | ErrorKind::Unavailable => false,
        }
    }
}

/// An attempt's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AttemptState {
    /// Executing on `node` (its lease says so).
    Running {
        /// When this execution started.
        started_at: Timestamp,
        /// The engine node executing it.
        node: String,
    },
    /// The node executing it died or lost its lease: the attempt may or may
    /// not have had its effect, so it runs again with the same idempotency key.
    Interrupted {
        /// When the loss was noticed.
        detected_at: Timestamp,
    },
    /// It worked.
    Succeeded {
        /// When.
        finished_at: Timestamp,
    },
    /// It failed.
    Failed {
        /// When.
        finished_at: Timestamp,
        /// Why.
        error: AttemptError,
    },
    /// The run was cancelled while it ran.
    Cancelled {
        /// When.
        finished_at: Timestamp,
    },
}

/// Something that happens to an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEvent {
    /// The executor returned.
    Finished {
        /// When.
        at: Timestamp,
        /// Ok, or the error.
        result: Result<(), AttemptError>,
    },
    /// The executing node's lease expired.
    LeaseLost {
        /// When noticed.
        at: Timestamp,
    },
    /// A node takes the interrupted attempt over.
    Rerun {
        /// When.
        at: Timestamp,
        /// The node.
        node: String,
    },
    /// The run is cancelled.
    Cancel {
        /// When.
        at: Timestamp,
    },
}

/// What the driver does after committing an attempt transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEffect {
    /// Call the executor (again, with the same idempotency key).
    Execute,
    /// Tell the step how the attempt ended.
    ReportToStep,
    /// Stop the call in flight.
    Abort,
}

/// An attempt state's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// [`AttemptState::Running`]
    Running,
    /// [`AttemptState::Interrupted`]
    Interrupted,
    /// [`AttemptState::Succeeded`]
    Succeeded,
    /// [`AttemptState::Failed`]
    Failed,
    /// [`AttemptState::Cancelled`]
    Cancelled,
}

impl AttemptStatus {
    /// Every status.
    pub const ALL: [AttemptStatus; 5] = [
        AttemptStatus::Running,
        AttemptStatus::Interrupted,
        AttemptStatus::Succeeded,
        AttemptStatus::Failed,
        AttemptStatus::Cancelled,
    ];

    /// The name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptStatus::Running => "running",
            AttemptStatus::Interrupted => "interrupted",
            AttemptStatus::Succeeded => "succeeded",
            AttemptStatus::Failed => "failed",
            AttemptStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the attempt is over for good.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            AttemptStatus::Succeeded | AttemptStatus::Failed | AttemptStatus::Cancelled
        )
    }
}

/// An attempt event's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptEventKind {
    /// [`AttemptEvent::Finished`]
    Finished,
    /// [`AttemptEvent::LeaseLost`]
    LeaseLost,
    /// [`AttemptEvent::Rerun`]
    Rerun,
    /// [`AttemptEvent::Cancel`]
    Cancel,
}

impl AttemptEventKind {
    fn as_str(self) -> &'static str {
        match self {
            AttemptEventKind::Finished => "finished",
            AttemptEventKind::LeaseLost => "lease_lost",
            AttemptEventKind::Rerun => "rerun",
            AttemptEventKind::Cancel => "cancel",
        }
    }
}

use AttemptEventKind as E;
use AttemptStatus as S;

/// Every allowed transition; terminal statuses absorb every event.
pub const TRANSITIONS: &[(AttemptStatus, AttemptEventKind, &[AttemptStatus])] = &[
    (S::Running, E::Finished, &[S::Succeeded, S::Failed]),
    (S::Running, E::LeaseLost, &[S::Interrupted]),
    (S::Running, E::Cancel, &[S::Cancelled]),
    (S::Interrupted, E::Rerun, &[S::Running]),
    (S::Interrupted, E::Cancel, &[S::Cancelled]),
];

impl AttemptEvent {
    /// The event's name.
    pub fn kind(&self) -> AttemptEventKind {
        match self {
            AttemptEvent::Finished { .. } => E::Finished,
            AttemptEvent::LeaseLost { .. } => E::LeaseLost,
            AttemptEvent::Rerun { .. } => E::Rerun,
            AttemptEvent::Cancel { .. } => E::Cancel,
        }
    }
}

impl AttemptState {
    /// The state's name.
    pub fn status(&self) -> AttemptStatus {
        match self {
            AttemptState::Running { .. } => S::Running,
            AttemptState::Interrupted { .. } => S::Interrupted,
            AttemptState::Succeeded { .. } => S::Succeeded,
            AttemptState::Failed { .. } => S::Failed,
            AttemptState::Cancelled { .. } => S::Cancelled,
        }
    }

    /// Feeds `event` to the attempt. A result arriving after the attempt was
    /// cancelled (or after a re-run already finished it) is absorbed.
    pub fn on(
        self,
        event: AttemptEvent,
    ) -> Result<Transition<AttemptState, AttemptEffect>, InvalidTransition> {
        if self.status().is_terminal() {
            return Ok(Transition::Absorbed { state: self });
        }
        let to = |state, effects| Ok(Transition::To { state, effects });
        match (self, event) {
            (AttemptState::Running { .. }, AttemptEvent::Finished { at, result: Ok(()) }) => to(
                AttemptState::Succeeded { finished_at: at },
                vec![AttemptEffect::ReportToStep],
            ),
            (
                AttemptState::Running { .. },
                AttemptEvent::Finished {
                    at,
                    result: Err(error),
                },
            ) => to(
                AttemptState::Failed {
                    finished_at: at,
                    error,
                },
                vec![AttemptEffect::ReportToStep],
            ),
            (AttemptState::Running { .. }, AttemptEvent::LeaseLost { at }) => {
                to(AttemptState::Interrupted { detected_at: at }, vec![])
            }
            (AttemptState::Interrupted { .. }, AttemptEvent::Rerun { at, node }) => to(
                AttemptState::Running {
                    started_at: at,
                    node,
                },
                vec![AttemptEffect::Execute],
            ),
            (AttemptState::Running { .. }, AttemptEvent::Cancel { at }) => to(
                AttemptState::Cancelled { finished_at: at },
                vec![AttemptEffect::Abort, AttemptEffect::ReportToStep],
            ),
            (AttemptState::Interrupted { .. }, AttemptEvent::Cancel { at }) => to(
                AttemptState::Cancelled { finished_at: at },
                vec![AttemptEffect::ReportToStep],
            ),
            (state, event) => Err(InvalidTransition {
                machine: "attempt",
                state: state.status().as_str(),
                event: event.kind().as_str(),
            }),
        }
    }
}
