//! Creating attempts: the call with its rendered inputs, the record with its
//! idempotency key, and the retry schedule.

use cordon_playbook::model::Step;
use cordon_storage::AttemptChange;
use serde_json::{Value, json};

use super::EngineError;
use super::decide::{Decision, fail_for_good, scope_for};
use super::snapshot::{Snapshot, stored};
use crate::attempt_state::{AttemptError, AttemptEvent, AttemptState, ErrorKind};
use crate::executor::{Action, StepCall};
use crate::step_state::StepState;
use crate::{IdempotencyKey, Timestamp};

pub(crate) fn next_retry(
    step: &Step,
    attempt: u32,
    error: &AttemptError,
    now: Timestamp,
) -> Option<Timestamp> {
    let retry = step.retry.as_ref()?;
    if attempt >= retry.attempts || !error.is_transient() {
        return None;
    }
    let base = retry
        .backoff
        .map_or(std::time::Duration::from_secs(1), |b| b.get());
    let factor = retry
        .factor
        .unwrap_or(2.0)
        .powi(i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX));
    // Saturating: a huge backoff times a factor means "much later", not a panic.
    let mut wait = std::time::Duration::try_from_secs_f64(base.as_secs_f64() * factor.min(1e6))
        .unwrap_or(std::time::Duration::MAX);
    if let Some(max) = retry.max_backoff {
        wait = wait.min(max.get());
    }
    Some(crate::clock::later(now, wait))
}

/// The call for attempt `number` of a step, its inputs rendered now.
pub(crate) fn build_call(
    snap: &Snapshot,
    step: &Step,
    key: &str,
    number: u32,
) -> Result<StepCall, EngineError> {
    let scope = scope_for(snap, key);
    let (action, inputs) = if let Some(uses) = &step.uses {
        let with = Value::Object(
            step.with
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        (Action::Plugin(uses.to_string()), scope.render(&with))
    } else {
        let notify = step
            .notify
            .as_ref()
            .ok_or_else(|| EngineError::Corrupt(format!("step {key} has no action")))?;
        let fields = json!({"to": notify.to, "subject": notify.subject.0, "body": notify.body.as_ref().map(|b| b.0.clone())});
        (Action::Notify, scope.render(&fields))
    };
    let inputs = inputs.map_err(|e| EngineError::Render(e.to_string()))?;
    Ok(StepCall {
        run: snap.record.id.clone(),
        step: key.to_string(),
        action,
        inputs,
        key: IdempotencyKey::new(&snap.record.id, key, number),
        dry_run: snap.record.dry_run,
        // Set from the prepared version when the call is launched.
        pin: None,
        secrets: Vec::new(),
    })
}

/// Which attempt of which step, and when.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'k> {
    pub(crate) key: &'k str,
    pub(crate) number: u32,
    /// When the step started (its first attempt).
    pub(crate) started_at: Timestamp,
    pub(crate) now: Timestamp,
}

/// Queues the execution of an attempt, or — when its inputs cannot be
/// rendered — fails it (and its step) at once, with nothing executed.
pub(crate) fn execute_or_fail(
    decision: &mut Decision,
    snap: &Snapshot,
    step: &Step,
    slot: Slot<'_>,
    running: AttemptState,
) -> Result<(), EngineError> {
    let Slot {
        key,
        number,
        started_at,
        now,
    } = slot;
    match build_call(snap, step, key, number) {
        Ok(call) => decision.executions.push((key.to_string(), number, call)),
        Err(EngineError::Render(message)) => {
            let error = AttemptError {
                kind: ErrorKind::Plugin,
                message,
                retryable: false,
            };
            let failed = running
                .on(AttemptEvent::Finished {
                    at: now,
                    result: Err(error.clone()),
                })?
                .state()
                .clone();
            decision.changes.attempts.push(AttemptChange::Update {
                step: key.to_string(),
                number,
                state: stored(failed.status().as_str(), &failed),
                node: None,
                finished_at: Some(now),
            });
            let running = StepState::Running {
                attempt: number,
                started_at,
            };
            fail_for_good(decision, key, running, number, error.message, now)?;
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Creates attempt `number` of a step and queues its execution.
pub(crate) fn start_attempt(
    decision: &mut Decision,
    snap: &Snapshot,
    step: &Step,
    slot: Slot<'_>,
    node: &str,
) -> Result<(), EngineError> {
    let Slot {
        key, number, now, ..
    } = slot;
    let running = AttemptState::Running {
        started_at: now,
        node: node.to_string(),
    };
    decision.changes.attempts.push(AttemptChange::Start {
        step: key.to_string(),
        number,
        idempotency_key: IdempotencyKey::new(&snap.record.id, key, number).to_string(),
        node: node.to_string(),
        state: stored(running.status().as_str(), &running),
    });
    execute_or_fail(decision, snap, step, slot, running)
}

pub(crate) fn started_at(state: &StepState, now: Timestamp) -> Timestamp {
    match state {
        StepState::Running { started_at, .. }
        | StepState::Waiting { started_at, .. }
        | StepState::Succeeded { started_at, .. } => *started_at,
        _ => now,
    }
}
