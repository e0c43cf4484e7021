//! Executions in flight: starting them after their attempt is committed,
//! and recording how they ended.

use std::collections::HashSet;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::attempts::next_retry;
use super::decide::{Decision, step_event};
use super::snapshot::{Snapshot, stored};
use super::{Engine, EngineError, Prepared};
use crate::Timestamp;
use crate::attempt_state::{AttemptError, AttemptEvent, ErrorKind};
use crate::executor::Action;
use crate::machine::Transition;
use crate::step_state::{StepEvent, StepState, StepWait};
use cordon_storage::{AttemptChange, ChangeSet, StorageError, TimerChange};

/// A finished execution, reported back to the driver.
#[derive(Debug, Clone)]
pub(crate) enum Done {
    Attempt {
        step: String,
        number: u32,
        result: Result<Value, AttemptError>,
    },
    Compensation {
        step: String,
        result: Result<(), String>,
    },
    /// A child run's driver returned (finished or blocked); its state is in storage.
    Child { run: String },
}

impl Engine {
    /// Starts the executions a committed decision created.
    pub(crate) fn launch(
        &self,
        prep: &Prepared,
        decision: Decision,
        tx: &mpsc::UnboundedSender<Done>,
        inflight: &mut HashSet<(String, u32)>,
        compensating: &mut HashSet<String>,
        tasks: &mut JoinSet<()>,
    ) {
        // Executions live in the drive's task set, so they end with the
        // drive: a drive that returns on an error (or is aborted) leaves no
        // execution running behind the lease it gives back.
        for (step, number, mut call) in decision.executions {
            if let Action::Plugin(uses) = &call.action {
                call.pin = prep.pin(uses);
            }
            inflight.insert((step.clone(), number));
            let executor = self.executor.clone();
            let tx = tx.clone();
            let timeout = prep
                .steps
                .get(&step)
                .and_then(|s| s.timeout)
                .map(|t| t.get());
            tracing::info!(run = %call.run, step = %step, attempt = number, key = %call.key, "attempt started");
            tasks.spawn(async move {
                // The attempt is committed as running; its effect has not happened.
                fail::fail_point!("engine.attempt.before_execute");
                let execution = executor.execute(call);
                let result = match timeout {
                    Some(limit) => {
                        tokio::time::timeout(limit, execution)
                            .await
                            .unwrap_or_else(|_| {
                                Err(AttemptError {
                                    kind: ErrorKind::Timeout,
                                    message: format!("no result within {limit:?}"),
                                    retryable: true,
                                })
                            })
                    }
                    None => execution.await,
                };
                // The effect happened; its result is not recorded yet.
                fail::fail_point!("engine.attempt.after_execute");
                let _ = tx.send(Done::Attempt {
                    step,
                    number,
                    result,
                });
            });
        }
        for (step, call, outputs) in decision.compensations {
            compensating.insert(step.clone());
            let executor = self.executor.clone();
            let tx = tx.clone();
            tasks.spawn(async move {
                fail::fail_point!("engine.compensation.before_execute");
                let result = executor.compensate(call, outputs).await;
                fail::fail_point!("engine.compensation.after_execute");
                let _ = tx.send(Done::Compensation { step, result });
            });
        }
    }

    /// Records finished executions: the attempts' and the steps' new states
    /// (and backoff timers when retries follow), in one change set — a
    /// fan-out of a hundred steps finishing together costs one commit. If
    /// someone else moved the run meanwhile (a cancel, say), the change set
    /// is derived again from a fresh read, so a result never overwrites what
    /// that change decided (a cancelled attempt absorbs its late result).
    /// Returns what it committed and the new revision when it committed on
    /// top of `snap`, `None` otherwise.
    pub(crate) async fn record(
        &self,
        prep: &Prepared,
        snap: &Snapshot,
        dones: Vec<Done>,
        inflight: &mut HashSet<(String, u32)>,
        compensating: &mut HashSet<String>,
        now: Timestamp,
    ) -> Result<Option<(ChangeSet, i64)>, EngineError> {
        for done in &dones {
            match done {
                Done::Attempt { step, number, .. } => {
                    inflight.remove(&(step.clone(), *number));
                }
                Done::Compensation { step, .. } => {
                    compensating.remove(step);
                }
                Done::Child { .. } => {}
            }
        }
        let mut fresh: Option<Snapshot> = None;
        for _ in 0..5 {
            let current = fresh.as_ref().unwrap_or(snap);
            let mut decision = results_decision(prep, current, &dones, now)?;
            if decision.is_empty() {
                return Ok(None);
            }
            // Outputs may echo a secret input: redact it from the audit events.
            decision.changes.secrets = prep.secret_values(current);
            match self
                .commit_driving(&current.record, &decision.changes, now)
                .await
            {
                Ok(revision) if fresh.is_none() => return Ok(Some((decision.changes, revision))),
                Ok(_) => return Ok(None),
                Err(StorageError::StaleRevision { .. }) => {
                    fresh = Some(Snapshot::load(&self.store, &snap.record.id).await?)
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Corrupt(format!(
            "run {} keeps changing under the engine",
            snap.record.id
        )))
    }
}

/// The change set that records `dones` on top of `snap`.
pub(crate) fn results_decision(
    prep: &Prepared,
    snap: &Snapshot,
    dones: &[Done],
    now: Timestamp,
) -> Result<Decision, EngineError> {
    let mut decision = Decision::default();
    for done in dones {
        match done.clone() {
            Done::Attempt {
                step,
                number,
                result,
            } => {
                let Some(attempt) = snap.attempts.get(&(step.clone(), number)) else {
                    continue;
                };
                let event = AttemptEvent::Finished {
                    at: now,
                    result: result.as_ref().map(|_| ()).map_err(Clone::clone),
                };
                let Transition::To {
                    state: finished, ..
                } = attempt.state.clone().on(event)?
                else {
                    tracing::info!(run = %snap.record.id, step = %step, attempt = number, "late attempt result absorbed");
                    continue;
                };
                decision.changes.attempts.push(AttemptChange::Update {
                    step: step.clone(),
                    number,
                    state: stored(finished.status().as_str(), &finished),
                    node: None,
                    finished_at: Some(now),
                });
                let current = snap.step(&step)?;
                let (event, outputs) = match result {
                    Ok(outputs) => (StepEvent::AttemptSucceeded { at: now }, Some(outputs)),
                    Err(error) => {
                        let retry_at = next_retry(prep.step(&step)?, number, &error, now);
                        (
                            StepEvent::AttemptFailed {
                                at: now,
                                error,
                                retry_at,
                            },
                            None,
                        )
                    }
                };
                tracing::info!(run = %snap.record.id, step = %step, attempt = number, ok = outputs.is_some(), "attempt finished");
                let after = step_event(
                    &mut decision,
                    &step,
                    current.state.clone(),
                    current.attempt,
                    event,
                    outputs,
                )?;
                if let StepState::Waiting {
                    on: StepWait::Backoff { until },
                    ..
                } = after
                {
                    decision.changes.timers.push(TimerChange::Arm {
                        step: step.clone(),
                        at: until,
                        purpose: "backoff".into(),
                    });
                }
            }
            Done::Child { .. } => {}
            Done::Compensation { step, result } => {
                let current = snap.step(&step)?;
                step_event(
                    &mut decision,
                    &step,
                    current.state.clone(),
                    current.attempt,
                    StepEvent::CompensationFinished { at: now, result },
                    None,
                )?;
            }
        }
    }
    Ok(decision)
}
