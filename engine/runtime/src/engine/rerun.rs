//! Re-running a finished run from one of its steps.

use std::collections::{BTreeMap, HashSet};

use cordon_storage::{Concurrency, NewRun};
use serde_json::json;

use super::snapshot::{Snapshot, stored};
use super::{Engine, EngineError};
use crate::run_state::RunState;
use crate::step_state::{StepState, StepStatus};

impl Engine {
    /// Starts a new run of the same pinned version with the same inputs,
    /// from step `from`: what succeeded in the old run and does not depend
    /// on `from` is carried over with its outputs (it is not done again);
    /// `from` and everything downstream of it runs anew. The old run must
    /// be over. Returns the new run's id.
    pub async fn rerun(&self, run_id: &str, from: &str, by: &str) -> Result<String, EngineError> {
        let old = Snapshot::load(&self.store, run_id).await?;
        if !old.run.status().is_terminal() {
            return Err(EngineError::Refused(format!(
                "run {run_id} is still {}; cancel it or let it finish first",
                old.run.status().as_str()
            )));
        }
        let prep = self.prepare(&old).await?;
        if prep.plan.node(from).is_none() {
            return Err(EngineError::Refused(format!(
                "run {run_id} has no step `{from}`"
            )));
        }
        // `from` and every step that (transitively) needs it.
        let mut again: HashSet<&str> = HashSet::from([from]);
        for node in prep.plan.nodes() {
            if node.needs.iter().any(|n| again.contains(n.as_str())) {
                again.insert(node.id.as_str());
            }
        }
        let now = self.clock.now();
        let mut steps = Vec::new();
        let mut outputs = BTreeMap::new();
        for node in prep.plan.nodes() {
            let key = node.id.as_str();
            let previous = old.steps.get(key);
            let carried = !again.contains(key)
                && previous.is_some_and(|s| s.state.status() == StepStatus::Succeeded);
            let state = match (carried, previous) {
                (true, Some(step)) => {
                    if let Some(out) = &step.outputs {
                        outputs.insert(key.to_string(), out.clone());
                    }
                    step.state.clone()
                }
                _ => StepState::Pending,
            };
            steps.push((key.to_string(), stored(state.status().as_str(), &state)));
        }
        let id = uuid::Uuid::now_v7().to_string();
        let queued = RunState::Queued { queued_at: now };
        self.store
            .create_run(NewRun {
                id: id.clone(),
                playbook: old.record.playbook.clone(),
                version: old.record.version.clone(),
                inputs: old.record.inputs.clone(),
                trigger: json!({"kind": "rerun", "of": run_id, "from": from, "by": by}),
                dry_run: old.record.dry_run,
                drill: old.record.drill,
                state: stored(queued.status().as_str(), &queued),
                steps,
                outputs,
                now,
                // The rerun counts against the same key, under today's limit.
                concurrency: old
                    .record
                    .concurrency_key
                    .clone()
                    .zip(prep.concurrency.as_ref())
                    .map(|(key, c)| Concurrency {
                        key,
                        limit: c.limit,
                        reject: false,
                    }),
                secret_inputs: prep.secret_inputs.clone(),
            })
            .await?;
        tracing::info!(run = %id, of = %run_id, from = %from, "rerun queued");
        Ok(id)
    }
}
