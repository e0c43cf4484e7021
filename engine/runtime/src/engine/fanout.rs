//! Fan-out steps (`foreach`): one step row per item, released in rollout
//! waves under a concurrency limit, the whole step failing once more items
//! failed than `max_failures` allows.
//!
//! The fan-out step itself (`rollback`) runs while its items (`rollback[0]`,
//! `rollback[1]`, …) do; its outputs hold the items, the current wave and
//! any pause between waves, so a node that takes the run over continues
//! the rollout exactly where it stood.

use cordon_playbook::model::{Foreach, ForeachItems, Step};
use cordon_storage::{StepChange, TimerChange};
use serde_json::{Value, json};

use super::attempts::{Slot, start_attempt};
use super::decide::{Decision, fail_at_start, fail_for_good, passes_condition, scope, step_event};
use super::snapshot::{Snapshot, stored};
use super::{EngineError, Prepared};
use crate::Timestamp;
use crate::step_state::{SkipReason, StepEvent, StepState, StepStatus};

/// The key of item `index` of fan-out step `parent`.
pub(crate) fn item_key(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The step a key belongs to: `rollback[3]` → `rollback`.
pub(crate) fn parent_of(key: &str) -> &str {
    key.split_once('[').map_or(key, |(parent, _)| parent)
}

/// The item an item key stands for, from its fan-out step's outputs.
pub(crate) fn item_value(snap: &Snapshot, key: &str) -> Option<Value> {
    let (parent, rest) = key.split_once('[')?;
    let index: usize = rest.trim_end_matches(']').parse().ok()?;
    snap.steps
        .get(parent)?
        .outputs
        .as_ref()?
        .get("items")?
        .get(index)
        .cloned()
}

/// Whether a completed step is undone when the run compensates: plugin
/// steps whose plugin can undo; for a fan-out, each item, not the step itself.
pub(crate) fn compensable(prep: &Prepared, key: &str) -> bool {
    let Some(node) = prep.plan.node(parent_of(key)) else {
        return false;
    };
    node.compensable && (node.fan_out.is_none() || key.contains('['))
}

/// Starts a fan-out step: resolves its items and creates a pending row for each.
pub(crate) fn start(
    decision: &mut Decision,
    snap: &Snapshot,
    key: &str,
    foreach: &Foreach,
    now: Timestamp,
) -> Result<(), EngineError> {
    let pending = snap.step(key)?.state.clone();
    let items = match &foreach.items {
        ForeachItems::List(items) => Ok(items.clone()),
        ForeachItems::Expression(template) => {
            match scope(snap).render(&Value::String(template.0.clone())) {
                Ok(Value::Array(items)) => Ok(items),
                Ok(other) => Err(format!("`foreach.items` must be a list, not {other}")),
                Err(e) => Err(e.to_string()),
            }
        }
    };
    let items = match items {
        Ok(items) => items,
        Err(message) => return fail_at_start(decision, key, pending, message, now),
    };
    let outputs = json!({"items": items, "wave": 0, "pause_until": null});
    step_event(
        decision,
        key,
        pending,
        1,
        StepEvent::Start { at: now },
        Some(outputs),
    )?;
    for index in 0..items.len() {
        let state = StepState::Pending;
        decision.changes.new_steps.push((
            item_key(key, index),
            stored(state.status().as_str(), &state),
        ));
    }
    Ok(())
}

/// How many items the current wave reaches (cumulative).
fn wave_target(foreach: &Foreach, wave: usize, total: usize) -> usize {
    match foreach.waves.get(wave) {
        Some(amount) => amount.of(total).max(usize::from(total > 0)),
        None => total,
    }
}

/// Moves every running fan-out on: ends it when its items are settled or
/// too many failed, advances waves (pausing between them when asked) and
/// starts the next items the wave and the concurrency limit allow.
pub(crate) fn advance(
    decision: &mut Decision,
    snap: &Snapshot,
    prep: &Prepared,
    node: &str,
    now: Timestamp,
) -> Result<(), EngineError> {
    for plan_node in prep.plan.nodes().iter().filter(|n| n.fan_out.is_some()) {
        let key = plan_node.id.as_str();
        let Some(parent) = snap.steps.get(key) else {
            continue;
        };
        if parent.state.status() != StepStatus::Running
            || decision.changes.steps.iter().any(|c| c.key == key)
        {
            continue;
        }
        let definition: &Step = prep.step(key)?;
        let Some(foreach) = &definition.foreach else {
            continue;
        };
        let mut outputs = parent.outputs.clone().unwrap_or_else(|| json!({}));
        let total = outputs["items"].as_array().map_or(0, Vec::len);
        let items: Vec<(String, &super::snapshot::StepSnapshot)> = (0..total)
            .filter_map(|i| {
                snap.steps
                    .get(&item_key(key, i))
                    .map(|s| (item_key(key, i), s))
            })
            .collect();
        let count = |f: &dyn Fn(StepStatus) -> bool| {
            items.iter().filter(|(_, s)| f(s.state.status())).count()
        };
        let failed = count(&|s| s == StepStatus::Failed);
        let settled = count(&|s| s.is_terminal() || s == StepStatus::Succeeded);
        let busy = count(&|s| matches!(s, StepStatus::Running | StepStatus::Waiting));

        if foreach
            .max_failures
            .is_some_and(|max| failed > max.of(total))
        {
            let message = format!(
                "{failed} of {total} items failed, more than `max_failures` allows; the rollout stopped"
            );
            fail_for_good(
                decision,
                key,
                parent.state.clone(),
                parent.attempt,
                message,
                now,
            )?;
            for (item, state) in &items {
                if state.state.status() == StepStatus::Pending {
                    step_event(
                        decision,
                        item,
                        state.state.clone(),
                        0,
                        StepEvent::Skip {
                            reason: SkipReason::RunEnded,
                        },
                        None,
                    )?;
                }
            }
            continue;
        }
        if settled == total {
            let results: Vec<Value> = items
                .iter()
                .map(|(_, s)| s.outputs.clone().unwrap_or(Value::Null))
                .collect();
            let summary = json!({
                "items": results,
                "succeeded": count(&|s| s == StepStatus::Succeeded),
                "failed": failed,
                "skipped": count(&|s| s == StepStatus::Skipped),
            });
            step_event(
                decision,
                key,
                parent.state.clone(),
                parent.attempt,
                StepEvent::AttemptSucceeded { at: now },
                Some(summary),
            )?;
            continue;
        }

        let mut wave = usize::try_from(outputs["wave"].as_u64().unwrap_or(0)).unwrap_or(0);
        let mut target = wave_target(foreach, wave, total);
        let wave_done = items.iter().take(target).all(|(_, s)| {
            s.state.status().is_terminal() || s.state.status() == StepStatus::Succeeded
        });
        if wave_done && target < total {
            let pause_until = outputs["pause_until"]
                .as_str()
                .and_then(|t| t.parse::<Timestamp>().ok());
            match (foreach.pause, pause_until) {
                (Some(pause), None) => {
                    let until = crate::clock::later(now, pause.get());
                    outputs["pause_until"] = json!(until);
                    decision.changes.timers.push(TimerChange::Arm {
                        step: key.to_string(),
                        at: until,
                        purpose: "wave_pause".into(),
                    });
                    update_outputs(decision, key, parent, outputs);
                    continue;
                }
                (Some(_), Some(until)) if now < until => continue,
                _ => {
                    wave += 1;
                    target = wave_target(foreach, wave, total);
                    outputs["wave"] = json!(wave);
                    outputs["pause_until"] = Value::Null;
                    update_outputs(decision, key, parent, outputs);
                }
            }
        }

        let limit = foreach
            .concurrency
            .map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let mut running = busy;
        for (item, state) in items.iter().take(target) {
            if running >= limit {
                break;
            }
            if state.state.status() != StepStatus::Pending {
                continue;
            }
            if !passes_condition(
                decision,
                snap,
                item,
                &state.state,
                definition.condition.as_ref(),
                now,
            )? {
                continue;
            }
            if definition.playbook.is_some() {
                // A sub-playbook per item: its child run, with `item` bound.
                super::children::start(decision, snap, item, definition, now)?;
                running += 1;
                continue;
            }
            step_event(
                decision,
                item,
                state.state.clone(),
                0,
                StepEvent::Start { at: now },
                None,
            )?;
            start_attempt(
                decision,
                snap,
                definition,
                Slot {
                    key: item,
                    number: 1,
                    started_at: now,
                    now,
                },
                node,
            )?;
            running += 1;
        }
    }
    Ok(())
}

/// Records new bookkeeping in a running fan-out's outputs (its state is unchanged).
fn update_outputs(
    decision: &mut Decision,
    key: &str,
    parent: &super::snapshot::StepSnapshot,
    outputs: Value,
) {
    decision.changes.steps.push(StepChange {
        key: key.to_string(),
        state: stored(parent.state.status().as_str(), &parent.state),
        attempt: parent.attempt,
        outputs: Some(outputs),
    });
}
