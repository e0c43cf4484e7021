//! Everything the engine knows about one run, read from storage and typed.

use std::collections::BTreeMap;
use std::sync::Arc;

use cordon_storage::{
    AttemptChange, ChangeSet, RunRecord, Store, StoredState, TimerChange, TimerRecord,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::EngineError;
use crate::attempt_state::AttemptState;
use crate::evaluate::Inventory;
use crate::run_state::{RunState, RunStatus};
use crate::step_state::StepState;

/// A state machine's state as storage keeps it.
pub(crate) fn stored<S: Serialize>(status: &str, state: &S) -> StoredState {
    StoredState {
        status: status.to_string(),
        state: serde_json::to_value(state).unwrap_or(Value::Null),
    }
}

fn typed<S: DeserializeOwned>(stored: &StoredState, what: &str) -> Result<S, EngineError> {
    serde_json::from_value(stored.state.clone())
        .map_err(|e| EngineError::Corrupt(format!("{what}: {e}")))
}

/// One step's stored facts.
#[derive(Debug, Clone)]
pub(crate) struct StepSnapshot {
    pub(crate) state: StepState,
    pub(crate) attempt: u32,
    pub(crate) outputs: Option<Value>,
    pub(crate) updated_at: crate::Timestamp,
}

/// One attempt's stored facts.
#[derive(Debug, Clone)]
pub(crate) struct AttemptSnapshot {
    pub(crate) state: AttemptState,
}

/// A run as stored, with typed states.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    pub(crate) record: RunRecord,
    pub(crate) run: RunState,
    pub(crate) steps: BTreeMap<String, StepSnapshot>,
    /// By (step key, number).
    pub(crate) attempts: BTreeMap<(String, u32), AttemptSnapshot>,
    pub(crate) timers: Vec<TimerRecord>,
    /// Child runs of running sub-playbook steps: their status and step outputs.
    pub(crate) children: BTreeMap<String, (RunStatus, Value)>,
    /// The inventory, loaded when a fan-out over `inventory.select` may start.
    pub(crate) inventory: Option<Arc<dyn Inventory>>,
    /// The pending approval requests of waiting gates, by step key (read
    /// only when a gate waits: their timers need them).
    pub(crate) approvals: BTreeMap<String, cordon_storage::ApprovalRecord>,
}

impl Snapshot {
    /// Whether a sub-playbook step waits for a child run, whose progress
    /// only storage knows (so the snapshot must be read again each turn).
    pub(crate) fn waits_for_children(&self) -> bool {
        !self.children.is_empty()
    }

    pub(crate) async fn load(store: &Store, run_id: &str) -> Result<Snapshot, EngineError> {
        let record = store
            .run(run_id)
            .await?
            .ok_or_else(|| EngineError::UnknownRun(run_id.to_string()))?;
        let run = typed(&record.state, "run state")?;
        let mut steps = BTreeMap::new();
        for step in &record.steps {
            steps.insert(
                step.key.clone(),
                StepSnapshot {
                    state: typed(&step.state, "step state")?,
                    attempt: step.attempt,
                    outputs: step.outputs.clone(),
                    updated_at: step.updated_at,
                },
            );
        }
        let mut attempts = BTreeMap::new();
        for attempt in store.attempts(run_id).await? {
            attempts.insert(
                (attempt.step.clone(), attempt.number),
                AttemptSnapshot {
                    state: typed(&attempt.state, "attempt state")?,
                },
            );
        }
        let timers = store.timers(run_id).await?;
        let mut approvals = BTreeMap::new();
        let gate_waits = steps.values().any(|s| {
            matches!(
                s.state,
                StepState::Waiting {
                    on: crate::step_state::StepWait::Approval { .. },
                    ..
                }
            )
        });
        if gate_waits {
            let filter = cordon_storage::ApprovalFilter {
                status: Some("pending".into()),
                run: Some(run_id.to_string()),
            };
            for request in store.approvals(&filter).await? {
                approvals.insert(request.step.clone(), request);
            }
        }
        let mut children = BTreeMap::new();
        for step in steps
            .values()
            .filter(|s| s.state.status() == crate::step_state::StepStatus::Running)
        {
            if let Some(child) = super::children::child_of(step.outputs.as_ref())
                && let Some(run) = store.run(child).await?
            {
                let status: RunState = typed(&run.state, "child run state")?;
                let outputs: serde_json::Map<String, Value> = run
                    .steps
                    .into_iter()
                    .map(|s| (s.key, s.outputs.unwrap_or(Value::Null)))
                    .collect();
                children.insert(child.to_string(), (status.status(), Value::Object(outputs)));
            }
        }
        Ok(Snapshot {
            record,
            run,
            steps,
            attempts,
            timers,
            children,
            inventory: None,
            approvals,
        })
    }

    pub(crate) fn step(&self, key: &str) -> Result<&StepSnapshot, EngineError> {
        self.steps.get(key).ok_or_else(|| {
            EngineError::Corrupt(format!("run {} has no step {key}", self.record.id))
        })
    }
}

impl Snapshot {
    /// Applies a change set this node just committed (at `revision`), so
    /// the next turn does not have to read the run back. Returns `false`
    /// when the snapshot cannot follow — a new timer's id is only known to
    /// storage — and must be read again.
    pub(crate) fn apply(
        &mut self,
        changes: &ChangeSet,
        revision: i64,
        now: crate::Timestamp,
    ) -> Result<bool, EngineError> {
        // A new timer's id, and an approval request's state, only storage knows.
        if !changes.approvals.is_empty()
            || changes
                .timers
                .iter()
                .any(|t| matches!(t, TimerChange::Arm { .. }))
        {
            return Ok(false);
        }
        self.record.revision = revision;
        if let Some(run) = &changes.run {
            self.run = typed(run, "run state")?;
            self.record.state = run.clone();
        }
        for (key, state) in &changes.new_steps {
            self.steps.insert(
                key.clone(),
                StepSnapshot {
                    state: typed(state, "step state")?,
                    attempt: 0,
                    outputs: None,
                    updated_at: now,
                },
            );
        }
        for change in &changes.steps {
            let step = self
                .steps
                .get_mut(&change.key)
                .ok_or_else(|| EngineError::Corrupt(format!("no step {}", change.key)))?;
            step.state = typed(&change.state, "step state")?;
            step.attempt = change.attempt;
            step.updated_at = now;
            if change.outputs.is_some() {
                step.outputs.clone_from(&change.outputs);
            }
        }
        for change in &changes.attempts {
            match change {
                AttemptChange::Start {
                    step,
                    number,
                    state,
                    ..
                }
                | AttemptChange::Update {
                    step,
                    number,
                    state,
                    ..
                } => {
                    self.attempts.insert(
                        (step.clone(), *number),
                        AttemptSnapshot {
                            state: typed(state, "attempt state")?,
                        },
                    );
                }
            }
        }
        for change in &changes.timers {
            if let TimerChange::Spend { id } = change {
                self.timers.retain(|t| t.id != *id);
            }
        }
        Ok(true)
    }
}
