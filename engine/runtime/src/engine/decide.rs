//! The engine's decisions: from what is stored (and the attempts this node
//! has in flight), what changes next. Everything here is derived from the
//! stored state, so a node that restarts — or takes a run over — decides
//! the same thing the crashed one would have.

use std::collections::HashSet;

use cordon_graph::PlanStepKind;
use cordon_playbook::model::{Condition, Wait};
use cordon_storage::{AttemptChange, ChangeSet, NewEvent, StepChange, TimerChange};
use serde_json::{Map, Value, json};

use super::attempts::{Slot, execute_or_fail, start_attempt, started_at};
use super::compensation::{compensate, end_open_steps};
use super::snapshot::{Snapshot, stored};
use super::timers::{RUN_TIMEOUT, fire_due};
use super::{EngineError, Prepared};
use crate::attempt_state::{AttemptError, AttemptEvent, ErrorKind};
use crate::evaluate::Scope;
use crate::executor::{Action, StepCall};
use crate::run_state::{RunError, RunEvent, RunState, RunStatus, WaitReason};
use crate::step_state::{SkipReason, StepEvent, StepState, StepStatus, StepWait};
use crate::{Timestamp, Transition};

/// What to do after committing a decision.
#[derive(Debug, Default)]
pub(crate) struct Decision {
    pub(crate) changes: ChangeSet,
    /// Attempts to execute once the change set is committed.
    pub(crate) executions: Vec<(String, u32, StepCall)>,
    /// Steps to undo once the change set is committed.
    pub(crate) compensations: Vec<(String, StepCall, Value)>,
    /// Child runs to create before the change set is committed.
    pub(crate) children: Vec<super::children::ChildRun>,
}

impl Decision {
    /// Records, in the change set that starts them, what each execution and
    /// compensation will call and with what: the audit log holds the intent
    /// before any effect (if it cannot be written, nothing runs).
    pub(crate) fn audit_calls(&mut self, prep: &Prepared, snap: &Snapshot) {
        self.changes.secrets = prep.secret_values(snap);
        let call = |kind: &str, step: &str, call: &StepCall, extra: Value| {
            let (action, pin) = match &call.action {
                Action::Plugin(uses) => (uses.clone(), prep.pin(uses)),
                Action::Notify => ("notify".to_string(), None),
            };
            NewEvent {
                actor: String::new(),
                kind: kind.to_string(),
                run: Some(call.run.clone()),
                step: Some(step.to_string()),
                device: call
                    .inputs
                    .get("device")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                data: json!({
                    "action": action, "pin": pin, "inputs": call.inputs, "idempotency_key": call.key.as_str(),
                    "dry_run": call.dry_run, "undoes": extra,
                }),
            }
        };
        let secrets = prep.secret_values(snap);
        for (_, _, c) in &mut self.executions {
            c.secrets.clone_from(&secrets);
        }
        let mut events = Vec::new();
        for (step, _, c) in &self.executions {
            events.push(call("attempt.call", step, c, Value::Null));
        }
        for (step, c, outputs) in &self.compensations {
            events.push(call("compensation.call", step, c, outputs.clone()));
        }
        self.changes.events.extend(events);
    }

    pub(crate) fn is_empty(&self) -> bool {
        // An undo relaunched after a crash changes nothing stored, but is work.
        self.changes == ChangeSet::default()
            && self.executions.is_empty()
            && self.compensations.is_empty()
            && self.children.is_empty()
    }
}

/// Feeds a step event and records the step's new state; returns the new state.
pub(crate) fn step_event(
    decision: &mut Decision,
    key: &str,
    state: StepState,
    attempt: u32,
    event: StepEvent,
    outputs: Option<Value>,
) -> Result<StepState, EngineError> {
    match state.on(event)? {
        Transition::To { state, .. } => {
            let attempt = match &state {
                StepState::Running { attempt, .. } | StepState::Waiting { attempt, .. } => *attempt,
                _ => attempt,
            };
            decision.changes.steps.retain(|s| s.key != key);
            decision.changes.steps.push(StepChange {
                key: key.to_string(),
                state: stored(state.status().as_str(), &state),
                attempt,
                outputs,
            });
            Ok(state)
        }
        Transition::Absorbed { state } => Ok(state),
    }
}

pub(crate) fn run_event(
    decision: &mut Decision,
    state: RunState,
    event: RunEvent,
) -> Result<RunState, EngineError> {
    match state.on(event)? {
        Transition::To { state, .. } => {
            decision.changes.run = Some(stored(state.status().as_str(), &state));
            Ok(state)
        }
        Transition::Absorbed { state } => Ok(state),
    }
}

/// What expressions of this run can read now: `steps.<id>` holds the
/// finished steps. Fan-out items (`id[3]`) are not there — an expression
/// cannot name them; their results are in the fan-out step's outputs — so a
/// rollout over 10,000 devices does not copy 10,000 records per rendering.
pub(crate) fn scope(snap: &Snapshot) -> Scope {
    let mut steps = Map::new();
    for (key, step) in &snap.steps {
        let status = step.state.status();
        if key.contains('[') || !(status == StepStatus::Succeeded || status.is_terminal()) {
            continue;
        }
        steps.insert(key.clone(), json!({"status": step.state.status().as_str(), "outputs": step.outputs.clone().unwrap_or(Value::Null)}));
    }
    Scope {
        inputs: snap.record.inputs.clone(),
        steps,
        run: json!({"id": snap.record.id, "playbook": snap.record.playbook, "version": snap.record.version, "dry_run": snap.record.dry_run, "drill": snap.record.drill}),
        trigger: snap.record.trigger.clone(),
        item: None,
        alert: None,
        inventory: snap.inventory.clone(),
    }
}

/// What expressions of one step can read: for an item of a fan-out
/// (`id[3]`), `item` is that item.
pub(crate) fn scope_for(snap: &Snapshot, key: &str) -> Scope {
    let mut scope = scope(snap);
    scope.item = super::fanout::item_value(snap, key);
    scope
}

/// Fails a step that cannot even start (its condition does not evaluate,
/// Fails a step that cannot even start (its condition does not evaluate,
/// or its inputs or items cannot be resolved), recording why.
pub(crate) fn fail_at_start(
    decision: &mut Decision,
    key: &str,
    pending: StepState,
    message: impl Into<String>,
    now: Timestamp,
) -> Result<(), EngineError> {
    let running = step_event(
        decision,
        key,
        pending,
        0,
        StepEvent::Start { at: now },
        None,
    )?;
    fail_for_good(decision, key, running, 1, message, now)
}

/// Fails a running step with an error no retry can help.
pub(crate) fn fail_for_good(
    decision: &mut Decision,
    key: &str,
    running: StepState,
    attempt: u32,
    message: impl Into<String>,
    now: Timestamp,
) -> Result<(), EngineError> {
    let error = AttemptError {
        kind: ErrorKind::Plugin,
        message: message.into(),
        retryable: false,
    };
    step_event(
        decision,
        key,
        running,
        attempt,
        StepEvent::AttemptFailed {
            at: now,
            error,
            retry_at: None,
        },
        None,
    )?;
    Ok(())
}

/// Applies a pending step's `if:` (for a fan-out item, with `item` bound):
/// false skips the step, an expression that does not evaluate fails it.
/// Returns whether the step may start.
pub(crate) fn passes_condition(
    decision: &mut Decision,
    snap: &Snapshot,
    key: &str,
    pending: &StepState,
    condition: Option<&Condition>,
    now: Timestamp,
) -> Result<bool, EngineError> {
    let Some(condition) = condition else {
        return Ok(true);
    };
    match scope_for(snap, key).condition(&condition.0) {
        Ok(true) => Ok(true),
        Ok(false) => {
            step_event(
                decision,
                key,
                pending.clone(),
                0,
                StepEvent::Skip {
                    reason: SkipReason::ConditionFalse,
                },
                None,
            )?;
            Ok(false)
        }
        Err(e) => {
            fail_at_start(decision, key, pending.clone(), e.to_string(), now)?;
            Ok(false)
        }
    }
}

/// A step that will not change again in the forward direction (only compensation can move a succeeded one).
fn settled(status: StepStatus) -> bool {
    status.is_terminal() || status == StepStatus::Succeeded
}

/// The next change for the run, derived from the stored state.
pub(crate) fn decide(
    prep: &Prepared,
    snap: &Snapshot,
    inflight: &HashSet<(String, u32)>,
    node: &str,
    now: Timestamp,
) -> Result<Decision, EngineError> {
    let mut decision = Decision::default();
    let run = snap.run.clone();
    match run.status() {
        RunStatus::Queued => {
            run_event(&mut decision, run, RunEvent::Start { at: now })?;
            decision.changes.admit = prep.concurrency.as_ref().map(|c| c.limit);
            if let Some(timeout) = prep.timeout {
                let at = crate::clock::later(now, timeout);
                decision.changes.timers.push(TimerChange::Arm {
                    step: String::new(),
                    at,
                    purpose: RUN_TIMEOUT.into(),
                });
            }
            return Ok(decision);
        }
        RunStatus::Paused | RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled => {
            return Ok(decision);
        }
        RunStatus::Compensating => return compensate(prep, snap, inflight, now, decision),
        RunStatus::Running | RunStatus::Waiting => {}
    }

    // Attempts recorded as running that no task of this node drives were
    // interrupted (a crash, or a lease taken over): run them again, same key.
    for ((key, number), attempt) in &snap.attempts {
        if attempt.state.status() == crate::attempt_state::AttemptStatus::Running
            && !inflight.contains(&(key.clone(), *number))
        {
            let interrupted = attempt
                .state
                .clone()
                .on(AttemptEvent::LeaseLost { at: now })?;
            let rerun = interrupted
                .state()
                .clone()
                .on(AttemptEvent::Rerun {
                    at: now,
                    node: node.to_string(),
                })?
                .state()
                .clone();
            decision.changes.attempts.push(AttemptChange::Update {
                step: key.clone(),
                number: *number,
                state: stored(rerun.status().as_str(), &rerun),
                node: Some(node.to_string()),
                finished_at: None,
            });
            let step = snap.step(key)?;
            let slot = Slot {
                key,
                number: *number,
                started_at: started_at(&step.state, now),
                now,
            };
            execute_or_fail(&mut decision, snap, prep.step(key)?, slot, rerun)?;
        }
    }

    // A step that failed for good fails the run, unless it lets the run continue.
    // (A fan-out's items do not: their fan-out step decides, by `max_failures`.)
    let failed = snap.steps.iter().find(|(key, step)| {
        step.state.status() == StepStatus::Failed
            && !key.contains('[')
            && !prep
                .step(key)
                .is_ok_and(|s| s.on_failure.as_ref().is_some_and(|f| f.continue_run))
    });
    if let Some((key, step)) = failed {
        let message = match &step.state {
            StepState::Failed { message, .. } => message.clone(),
            _ => String::new(),
        };
        let error = if prep.step(key).is_ok_and(|s| s.approval.is_some()) {
            RunError::Rejected { step: key.clone() }
        } else {
            RunError::StepFailed {
                step: key.clone(),
                message,
            }
        };
        run_event(
            &mut decision,
            run,
            RunEvent::Fail {
                error,
                compensate: prep.plan.compensates(),
                at: now,
            },
        )?;
        end_open_steps(snap, &mut decision, now, prep.plan.compensates())?;
        return Ok(decision);
    }

    // Due timers.
    if fire_due(&mut decision, prep, snap, node, now)? {
        if decision.changes.run.is_none() && run.status() == RunStatus::Waiting {
            run_event(&mut decision, run, RunEvent::Wake)?;
        }
        return Ok(decision);
    }

    // Steps whose needs are all finished.
    let finished_ok = |key: &str| {
        snap.steps
            .get(key)
            .is_some_and(|s| s.state.status() == StepStatus::Succeeded)
    };
    let finished = |key: &str| {
        snap.steps
            .get(key)
            .is_some_and(|s| settled(s.state.status()))
    };
    for node_plan in prep.plan.nodes() {
        let key = node_plan.id.as_str();
        let Some(step) = snap.steps.get(key) else {
            continue;
        };
        if step.state != StepState::Pending
            || node_plan.handler
            || !node_plan.needs.iter().all(|n| finished(n))
        {
            continue;
        }
        let definition = prep.step(key)?;
        if let Some(upstream) = node_plan.needs.iter().find(|n| !finished_ok(n)) {
            step_event(
                &mut decision,
                key,
                step.state.clone(),
                0,
                StepEvent::Skip {
                    reason: SkipReason::UpstreamDidNotSucceed {
                        step: upstream.clone(),
                    },
                },
                None,
            )?;
            continue;
        }
        // A fan-out evaluates its condition per item, with `item` bound.
        let condition = definition
            .condition
            .as_ref()
            .filter(|_| definition.foreach.is_none());
        if !passes_condition(&mut decision, snap, key, &step.state, condition, now)? {
            continue;
        }
        match &node_plan.kind {
            PlanStepKind::Action { .. }
            | PlanStepKind::Notify { .. }
            | PlanStepKind::Playbook { .. }
                if definition.foreach.is_some() =>
            {
                let foreach = definition
                    .foreach
                    .as_ref()
                    .ok_or_else(|| EngineError::Corrupt(format!("{key} lost its foreach")))?;
                super::fanout::start(&mut decision, snap, key, foreach, now)?;
            }
            PlanStepKind::Action { .. } | PlanStepKind::Notify { .. } => {
                step_event(
                    &mut decision,
                    key,
                    step.state.clone(),
                    0,
                    StepEvent::Start { at: now },
                    None,
                )?;
                let slot = Slot {
                    key,
                    number: 1,
                    started_at: now,
                    now,
                };
                start_attempt(&mut decision, snap, definition, slot, node)?;
            }
            PlanStepKind::Wait { .. } => match &definition.wait {
                Some(Wait::For(duration)) => {
                    let until = crate::clock::later(now, duration.get());
                    step_event(
                        &mut decision,
                        key,
                        step.state.clone(),
                        0,
                        StepEvent::Wait {
                            on: StepWait::Timer { until },
                            at: now,
                        },
                        None,
                    )?;
                    decision.changes.timers.push(TimerChange::Arm {
                        step: key.to_string(),
                        at: until,
                        purpose: "wait".into(),
                    });
                }
                Some(Wait::Until(_)) | None => {
                    // The first evaluation happens at once, on the next turn.
                    step_event(
                        &mut decision,
                        key,
                        step.state.clone(),
                        0,
                        StepEvent::Wait {
                            on: StepWait::Timer { until: now },
                            at: now,
                        },
                        None,
                    )?;
                    decision.changes.timers.push(TimerChange::Arm {
                        step: key.to_string(),
                        at: now,
                        purpose: "poll".into(),
                    });
                }
            },
            PlanStepKind::Approval { .. } => {
                step_event(
                    &mut decision,
                    key,
                    step.state.clone(),
                    0,
                    StepEvent::Wait {
                        on: StepWait::Approval { requested_at: now },
                        at: now,
                    },
                    None,
                )?;
                if let Some(approval) = definition.approval.as_ref() {
                    super::approvals::open(&mut decision, prep, snap, key, approval, now);
                }
            }
            PlanStepKind::Playbook { .. } => {
                super::children::start(&mut decision, snap, key, definition, now)?;
            }
        }
    }
    super::children::settle(&mut decision, snap, now)?;
    super::fanout::advance(&mut decision, snap, prep, node, now)?;
    if !decision.is_empty() {
        if run.status() == RunStatus::Waiting {
            run_event(&mut decision, run, RunEvent::Wake)?;
        }
        return Ok(decision);
    }

    // Nothing to start: finished, or blocked on people or timers?
    let open: Vec<(&String, &super::snapshot::StepSnapshot)> = snap
        .steps
        .iter()
        .filter(|(key, s)| {
            !prep.plan.node(key).is_some_and(|n| n.handler) && !settled(s.state.status())
        })
        .collect();
    if open.is_empty() && inflight.is_empty() {
        run_event(&mut decision, run, RunEvent::Complete { at: now })?;
        end_open_steps(snap, &mut decision, now, false)?;
        return Ok(decision);
    }
    // Nothing can start and nothing runs: the run waits on its waiting steps
    // (the pending ones wait behind them). A run with a live child run stays
    // running: workers claim waiting runs only when a timer falls due, and
    // the child's end must be noticed without one.
    if inflight.is_empty()
        && run.status() == RunStatus::Running
        && snap
            .children
            .values()
            .all(|(status, _)| status.is_terminal())
        && open
            .iter()
            .any(|(_, s)| s.state.status() == StepStatus::Waiting)
    {
        let gate = open.iter().find(|(_, s)| {
            matches!(
                s.state,
                StepState::Waiting {
                    on: StepWait::Approval { .. },
                    ..
                }
            )
        });
        let reason = match gate {
            Some((key, _)) => WaitReason::Approval {
                step: (*key).clone(),
            },
            None => WaitReason::Timer {
                until: snap.timers.first().map_or(now, |t| t.at),
            },
        };
        run_event(&mut decision, run, RunEvent::Wait { on: reason })?;
    }
    Ok(decision)
}
