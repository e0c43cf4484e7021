//! People acting on runs: pause, resume, cancel, and deciding gates. Each
//! is one committed transition from a fresh read, retried when the driver
//! moved the run meanwhile (the driver then sees the change on its next
//! commit, which is refused as stale).

use cordon_storage::{ChangeSet, StorageError};

use super::decide::{Decision, run_event};
use super::snapshot::{Snapshot, stored};
use super::{Engine, EngineError, compensation};
use crate::machine::Transition;
use crate::run_state::{RunError, RunEvent, RunStatus};

impl Engine {
    /// Holds a running or waiting run: no new step starts until it is
    /// resumed (attempts in flight finish and are recorded). Returns the
    /// run's status afterwards; a run that cannot be paused is left as it is.
    pub async fn pause(&self, run_id: &str, by: &str) -> Result<RunStatus, EngineError> {
        self.move_run(run_id, by, |_| RunEvent::Pause { by: by.to_string() })
            .await
    }

    /// Releases a paused run; the next `drive` carries on where it stopped.
    /// `by` is recorded as the actor of the audit event.
    pub async fn resume(&self, run_id: &str, by: &str) -> Result<RunStatus, EngineError> {
        self.move_run(run_id, by, |_| RunEvent::Resume).await
    }

    /// Feeds one run event and commits it, re-reading on concurrent changes.
    async fn move_run(
        &self,
        run_id: &str,
        by: &str,
        event: impl Fn(&Snapshot) -> RunEvent,
    ) -> Result<RunStatus, EngineError> {
        loop {
            let snap = Snapshot::load(&self.store, run_id).await?;
            let Transition::To { state, .. } = snap.run.clone().on(event(&snap))? else {
                return Ok(snap.run.status());
            };
            let changes = ChangeSet {
                run: Some(stored(state.status().as_str(), &state)),
                actor: Some(format!("user:{by}")),
                ..ChangeSet::default()
            };
            match self
                .store
                .commit(run_id, snap.record.revision, &changes, self.clock.now())
                .await
            {
                Ok(_) => {
                    self.wake_work();
                    return Ok(state.status());
                }
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
            // A version that cannot be planned can still be cancelled, without undoing.
            let compensate = match self.prepare(&snap).await {
                Ok(prep) => prep.plan.compensates(),
                Err(EngineError::Unplannable(_)) => false,
                Err(e) => return Err(e),
            };
            let now = self.clock.now();
            let event = RunEvent::Cancel {
                by: by.to_string(),
                compensate,
                at: now,
            };
            let Transition::To { state, .. } = snap.run.clone().on(event)? else {
                return Ok(snap.run.status());
            };
            let mut decision = Decision::default();
            decision.changes.run = Some(stored(state.status().as_str(), &state));
            compensation::end_open_steps(&snap, &mut decision, now, compensate)?;
            let mut changes = decision.changes;
            changes.actor = Some(format!("user:{by}"));
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
                    // Compensation, if any, is driven at once.
                    self.wake_work();
                    return Ok(state.status());
                }
                Err(StorageError::StaleRevision { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Engine {
    /// Ends a run whose pinned version cannot be planned any more: it fails
    /// at once, its open steps are cancelled, and nothing is compensated
    /// (undoing needs the plan). A compensating run is left as it is: it
    /// keeps failing to plan until its plugins come back.
    pub(crate) async fn fail_unplannable(
        &self,
        snap: &Snapshot,
        message: String,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let mut state = snap.run.clone();
        // A queued run fails by way of starting (the machine has no queued -> failed).
        if state.status() == RunStatus::Queued
            && let Transition::To { state: started, .. } =
                state.clone().on(RunEvent::Start { at: now })?
        {
            state = started;
        }
        if state.status() == RunStatus::Compensating {
            return Err(EngineError::Unplannable(message));
        }
        tracing::warn!(run = %snap.record.id, %message, "the pinned version cannot be planned; the run fails");
        let mut decision = Decision::default();
        run_event(
            &mut decision,
            state,
            RunEvent::Fail {
                error: RunError::Unplannable { message },
                compensate: false,
                at: now,
            },
        )?;
        compensation::end_open_steps(snap, &mut decision, now, false)?;
        match self
            .commit_driving(&snap.record, &decision.changes, now)
            .await
        {
            Ok(_) | Err(StorageError::StaleRevision { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Cancels the child runs of a run that has ended, whatever ended it.
    pub(crate) async fn cancel_live_children(&self, snap: &Snapshot) -> Result<(), EngineError> {
        for step in snap.steps.values() {
            let Some(child) = super::children::child_of(step.outputs.as_ref()) else {
                continue;
            };
            let live = self
                .store
                .run(child)
                .await?
                .is_some_and(|c| !ended(&c.state.status));
            if live {
                Box::pin(self.cancel(child, "parent run ended")).await?;
            }
        }
        Ok(())
    }

    /// Whether `snap` is a sub-playbook's child run whose parent has ended
    /// (or is gone). A child is created just before its parent's change set
    /// commits; if that commit loses to a cancel, nothing records the child.
    pub(crate) async fn orphaned(&self, snap: &Snapshot) -> Result<bool, EngineError> {
        let trigger = &snap.record.trigger;
        if trigger.get("kind").and_then(serde_json::Value::as_str) != Some("parent")
            || snap.run.status().is_terminal()
        {
            return Ok(false);
        }
        let Some(parent) = trigger.get("run").and_then(serde_json::Value::as_str) else {
            return Ok(false);
        };
        Ok(self
            .store
            .run(parent)
            .await?
            .is_none_or(|p| ended(&p.state.status)))
    }
}

/// Whether a stored run status is a terminal one.
fn ended(status: &str) -> bool {
    RunStatus::ALL
        .iter()
        .any(|s| s.is_terminal() && s.as_str() == status)
}
