//! People acting on runs: pause, resume, cancel, and deciding gates. Each
//! is one committed transition from a fresh read, retried when the driver
//! moved the run meanwhile (the driver then sees the change on its next
//! commit, which is refused as stale).

use cordon_storage::{ChangeSet, StorageError};

use super::decide::{Decision, step_event};
use super::snapshot::{Snapshot, stored};
use super::{Engine, EngineError, compensation};
use crate::machine::Transition;
use crate::run_state::{RunEvent, RunStatus};
use crate::step_state::StepEvent;

impl Engine {
    /// Holds a running or waiting run: no new step starts until it is
    /// resumed (attempts in flight finish and are recorded). Returns the
    /// run's status afterwards; a run that cannot be paused is left as it is.
    pub async fn pause(&self, run_id: &str, by: &str) -> Result<RunStatus, EngineError> {
        self.move_run(run_id, |_| RunEvent::Pause { by: by.to_string() })
            .await
    }

    /// Releases a paused run; the next `drive` carries on where it stopped.
    pub async fn resume(&self, run_id: &str) -> Result<RunStatus, EngineError> {
        self.move_run(run_id, |_| RunEvent::Resume).await
    }

    /// Feeds one run event and commits it, re-reading on concurrent changes.
    async fn move_run(
        &self,
        run_id: &str,
        event: impl Fn(&Snapshot) -> RunEvent,
    ) -> Result<RunStatus, EngineError> {
        loop {
            let snap = Snapshot::load(&self.store, run_id).await?;
            let Transition::To { state, .. } = snap.run.clone().on(event(&snap))? else {
                return Ok(snap.run.status());
            };
            let changes = ChangeSet {
                run: Some(stored(state.status().as_str(), &state)),
                ..ChangeSet::default()
            };
            match self
                .store
                .commit(run_id, snap.record.revision, &changes, self.clock.now())
                .await
            {
                Ok(_) => return Ok(state.status()),
                Err(StorageError::StaleRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Cancels a run (compensating completed steps if the playbook says so).
    /// Cancelling a finished run changes nothing.
    pub async fn cancel(&self, run_id: &str, by: &str) -> Result<RunStatus, EngineError> {
        loop {
            let snap = Snapshot::load(&self.store, run_id).await?;
            let prep = self.prepare(&snap).await?;
            let now = self.clock.now();
            let event = RunEvent::Cancel {
                by: by.to_string(),
                compensate: prep.plan.compensates(),
                at: now,
            };
            let Transition::To { state, .. } = snap.run.clone().on(event)? else {
                return Ok(snap.run.status());
            };
            let mut decision = Decision::default();
            decision.changes.run = Some(stored(state.status().as_str(), &state));
            compensation::end_open_steps(&snap, &mut decision, now, prep.plan.compensates())?;
            let changes = decision.changes;
            match self
                .store
                .commit(run_id, snap.record.revision, &changes, now)
                .await
            {
                Ok(_) => {
                    // A sub-playbook's child run is part of this run: it ends too.
                    for child in snap.children.keys() {
                        Box::pin(self.cancel(child, by)).await?;
                    }
                    return Ok(state.status());
                }
                Err(StorageError::StaleRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Records a decision on an approval gate. (The approval model — who may
    /// decide, quorum, plan digests — arrives with the server; this is the
    /// engine's side of it.)
    pub async fn decide_gate(
        &self,
        run_id: &str,
        step: &str,
        approve: bool,
        reason: &str,
    ) -> Result<(), EngineError> {
        loop {
            let snap = Snapshot::load(&self.store, run_id).await?;
            let now = self.clock.now();
            let current = snap.step(step)?;
            let event = if approve {
                StepEvent::Approved { at: now }
            } else {
                StepEvent::Rejected {
                    at: now,
                    reason: reason.to_string(),
                }
            };
            let mut decision = Decision::default();
            step_event(
                &mut decision,
                step,
                current.state.clone(),
                current.attempt,
                event,
                approve.then(|| serde_json::json!({"approved": true})),
            )?;
            if snap.run.status() == RunStatus::Waiting
                && let Transition::To { state, .. } = snap.run.clone().on(RunEvent::Wake)?
            {
                decision.changes.run = Some(stored(state.status().as_str(), &state));
            }
            match self
                .store
                .commit(run_id, snap.record.revision, &decision.changes, now)
                .await
            {
                Ok(_) => return Ok(()),
                Err(StorageError::StaleRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}
