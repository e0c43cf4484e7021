//! How a run ends: steps that never started are skipped, and a failing or
//! cancelled run undoes its completed compensable steps, newest first.

use std::collections::HashSet;

use serde_json::Value;

use super::decide::{Decision, run_event, scope_for, step_event};
use cordon_storage::AttemptChange;

use super::snapshot::{Snapshot, StepSnapshot, stored};
use super::{EngineError, Prepared};
use crate::attempt_state::AttemptEvent;
use crate::executor::{Action, StepCall};
use crate::run_state::RunEvent;
use crate::step_state::{StepEvent, StepStatus};
use crate::{IdempotencyKey, Timestamp};

/// Steps that never started are skipped when the run ends.
///
/// When the run ends at once (no compensation follows), running steps are
/// cancelled too, with their attempts: whatever those executions report
/// later is absorbed. When compensation follows, running steps are left to
/// finish, so that what they did can be undone.
pub(crate) fn end_open_steps(
    snap: &Snapshot,
    decision: &mut Decision,
    now: Timestamp,
    compensation_follows: bool,
) -> Result<(), EngineError> {
    for (key, step) in &snap.steps {
        if decision.changes.steps.iter().any(|c| &c.key == key) {
            continue;
        }
        let status = step.state.status();
        let running = status == StepStatus::Running;
        if matches!(status, StepStatus::Pending | StepStatus::Waiting)
            || (running && !compensation_follows)
        {
            step_event(
                decision,
                key,
                step.state.clone(),
                step.attempt,
                StepEvent::Cancel { at: now },
                None,
            )?;
        }
        if running && !compensation_follows {
            for ((attempt_step, number), attempt) in &snap.attempts {
                if attempt_step != key || attempt.state.status().is_terminal() {
                    continue;
                }
                let cancelled = attempt
                    .state
                    .clone()
                    .on(AttemptEvent::Cancel { at: now })?
                    .state()
                    .clone();
                decision.changes.attempts.push(AttemptChange::Update {
                    step: key.clone(),
                    number: *number,
                    state: stored(cancelled.status().as_str(), &cancelled),
                    node: None,
                    finished_at: Some(now),
                });
            }
        }
    }
    Ok(())
}

/// While compensating: undo completed compensable steps one at a time,
/// newest first; when none is left, the run ends.
pub(crate) fn compensate(
    prep: &Prepared,
    snap: &Snapshot,
    inflight: &HashSet<(String, u32)>,
    now: Timestamp,
    mut decision: Decision,
) -> Result<Decision, EngineError> {
    // A step still recorded as running that nothing here executes was cut off
    // by a crash: it will never report, so it is cancelled (its effect, if it
    // had one, is not known and cannot be undone automatically).
    if inflight.is_empty()
        && snap
            .steps
            .values()
            .any(|s| s.state.status() == StepStatus::Running)
    {
        let mut orphans = snap.clone();
        orphans
            .steps
            .retain(|_, s| s.state.status() == StepStatus::Running);
        end_open_steps(&orphans, &mut decision, now, false)?;
        return Ok(decision);
    }
    if !inflight.is_empty() {
        return Ok(decision);
    }
    // An undo recorded as started that nothing here executes was cut off by
    // a crash: it runs again, with the same idempotency key.
    if let Some((key, step)) = snap
        .steps
        .iter()
        .find(|(_, s)| s.state.status() == StepStatus::Compensating)
    {
        decision
            .compensations
            .push(compensation_call(prep, snap, key, step)?);
        return Ok(decision);
    }
    let mut done: Vec<(&String, &StepSnapshot)> = snap
        .steps
        .iter()
        .filter(|(key, s)| {
            s.state.status() == StepStatus::Succeeded && super::fanout::compensable(prep, key)
        })
        .collect();
    done.sort_by_key(|(key, s)| {
        (
            s.updated_at,
            prep.plan.nodes().iter().position(|n| &n.id == *key),
        )
    });
    match done.last() {
        Some((key, step)) => {
            step_event(
                &mut decision,
                key,
                step.state.clone(),
                step.attempt,
                StepEvent::Compensate { at: now },
                None,
            )?;
            decision
                .compensations
                .push(compensation_call(prep, snap, key, step)?);
        }
        None => {
            run_event(
                &mut decision,
                snap.run.clone(),
                RunEvent::Compensated { at: now },
            )?;
        }
    }
    Ok(decision)
}

/// The call that undoes step `key`: its inputs rendered as when it ran, the
/// outputs it produced, and one idempotency key for every delivery.
fn compensation_call(
    prep: &Prepared,
    snap: &Snapshot,
    key: &str,
    step: &StepSnapshot,
) -> Result<(String, StepCall, Value), EngineError> {
    let definition = prep.step(key)?;
    let uses = definition
        .uses
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let pin = prep.pin(&uses);
    let call = StepCall {
        run: snap.record.id.clone(),
        step: key.to_string(),
        action: Action::Plugin(uses),
        inputs: scope_for(snap, key)
            .render(&Value::Object(
                definition
                    .with
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
            .unwrap_or(Value::Null),
        key: IdempotencyKey::new(&snap.record.id, &format!("{key}.compensate"), 1),
        dry_run: snap.record.dry_run,
        pin,
        secrets: prep.secret_values(snap),
    };
    Ok((
        key.to_string(),
        call,
        step.outputs.clone().unwrap_or(Value::Null),
    ))
}
