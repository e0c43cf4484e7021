//! How a run ends: steps that never started are skipped, and a failing or
//! cancelled run undoes its completed compensable steps, newest first.

use std::collections::HashSet;

use serde_json::Value;

use super::decide::{Decision, run_event, scope, step_event};
use super::snapshot::{Snapshot, StepSnapshot};
use super::{EngineError, Prepared};
use crate::executor::{Action, StepCall};
use crate::run_state::RunEvent;
use crate::step_state::{StepEvent, StepStatus};
use crate::{IdempotencyKey, Timestamp};

/// Steps that never started are skipped when the run ends.
pub(crate) fn end_open_steps(
    snap: &Snapshot,
    decision: &mut Decision,
    now: Timestamp,
) -> Result<(), EngineError> {
    for (key, step) in &snap.steps {
        if decision.changes.steps.iter().any(|c| &c.key == key) {
            continue;
        }
        match step.state.status() {
            StepStatus::Pending | StepStatus::Waiting => {
                step_event(
                    decision,
                    key,
                    step.state.clone(),
                    step.attempt,
                    StepEvent::Cancel { at: now },
                    None,
                )?;
            }
            _ => {}
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
    if snap
        .steps
        .values()
        .any(|s| s.state.status() == StepStatus::Compensating)
        || !inflight.is_empty()
    {
        return Ok(decision);
    }
    let mut done: Vec<(&String, &StepSnapshot)> = snap
        .steps
        .iter()
        .filter(|(key, s)| {
            s.state.status() == StepStatus::Succeeded
                && prep.plan.node(key).is_some_and(|n| n.compensable)
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
            let definition = prep.step(key)?;
            let uses = definition
                .uses
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            let call = StepCall {
                run: snap.record.id.clone(),
                step: (*key).clone(),
                action: Action::Plugin(uses),
                inputs: scope(snap)
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
            };
            decision.compensations.push((
                (*key).clone(),
                call,
                step.outputs.clone().unwrap_or(Value::Null),
            ));
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
