//! Durable timers coming due: retry backoffs, `wait` timers, condition
//! polls, approval-gate timeouts and the run's own timeout.

use cordon_playbook::model::Wait;
use cordon_storage::TimerChange;
use serde_json::json;

use super::attempts::{Slot, start_attempt, started_at};
use super::compensation::end_open_steps;
use super::decide::{Decision, run_event, scope, step_event};
use super::snapshot::Snapshot;
use super::{EngineError, Prepared};
use crate::Timestamp;
use crate::run_state::{RunError, RunEvent};
use crate::step_state::{StepEvent, StepState, StepWait};

/// The purpose of the timer that enforces the playbook's run-level `timeout`.
pub(crate) const RUN_TIMEOUT: &str = "run_timeout";

/// One evaluation of a `wait: {until, every, timeout}` condition: done when
/// it holds, failed when its timeout has passed, otherwise polled again.
fn poll(
    decision: &mut Decision,
    prep: &Prepared,
    snap: &Snapshot,
    key: &str,
    step: &super::snapshot::StepSnapshot,
    started_at: Timestamp,
    now: Timestamp,
) -> Result<(), EngineError> {
    let Some(Wait::Until(until)) = &prep.step(key)?.wait else {
        return Err(EngineError::Corrupt(format!(
            "poll timer on step {key}, which does not poll"
        )));
    };
    let deadline = crate::clock::later(started_at, until.timeout.get());
    let event = match scope(snap).condition(&until.until.0) {
        Ok(true) => StepEvent::TimerFired { at: now },
        Ok(false) if now >= deadline => StepEvent::Expired {
            at: now,
            reason: format!("`{}` did not hold within {}", until.until.0, until.timeout),
        },
        Ok(false) => {
            let next = crate::clock::later(now, until.every.get());
            decision.changes.timers.push(TimerChange::Arm {
                step: key.to_string(),
                at: next.min(deadline),
                purpose: "poll".into(),
            });
            StepEvent::Wait {
                on: StepWait::Timer {
                    until: next.min(deadline),
                },
                at: now,
            }
        }
        Err(e) => StepEvent::Expired {
            at: now,
            reason: e.to_string(),
        },
    };
    let outputs = matches!(event, StepEvent::TimerFired { .. }).then(|| json!({}));
    step_event(
        decision,
        key,
        step.state.clone(),
        step.attempt,
        event,
        outputs,
    )?;
    Ok(())
}

/// Handles every due timer: backoffs start the next attempt, waits end,
/// polls evaluate their condition, gate timeouts decide the gate, and the
/// run's own timeout fails the run. Returns whether any timer was due.
pub(crate) fn fire_due(
    decision: &mut Decision,
    prep: &Prepared,
    snap: &Snapshot,
    node: &str,
    now: Timestamp,
) -> Result<bool, EngineError> {
    let run = snap.run.clone();
    let mut woke = false;
    for timer in snap.timers.iter().filter(|t| t.at <= now) {
        decision
            .changes
            .timers
            .push(TimerChange::Spend { id: timer.id });
        if timer.purpose == RUN_TIMEOUT {
            let error = RunError::TimedOut;
            run_event(
                decision,
                run,
                RunEvent::Fail {
                    error,
                    compensate: prep.plan.compensates(),
                    at: now,
                },
            )?;
            end_open_steps(snap, decision, now, prep.plan.compensates())?;
            return Ok(true);
        }
        let step = snap.step(&timer.step)?;
        match (&step.state, timer.purpose.as_str()) {
            (
                StepState::Waiting {
                    on: StepWait::Backoff { .. },
                    attempt,
                    ..
                },
                "backoff",
            ) => {
                let next = attempt + 1;
                step_event(
                    decision,
                    &timer.step,
                    step.state.clone(),
                    step.attempt,
                    StepEvent::TimerFired { at: now },
                    None,
                )?;
                let slot = Slot {
                    key: &timer.step,
                    number: next,
                    started_at: started_at(&step.state, now),
                    now,
                };
                start_attempt(decision, snap, prep.step(&timer.step)?, slot, node)?;
            }
            (
                StepState::Waiting {
                    on: StepWait::Timer { .. },
                    ..
                },
                "wait",
            ) => {
                step_event(
                    decision,
                    &timer.step,
                    step.state.clone(),
                    step.attempt,
                    StepEvent::TimerFired { at: now },
                    Some(json!({})),
                )?;
            }
            (
                StepState::Waiting {
                    on: StepWait::Approval { .. },
                    ..
                },
                super::approvals::TIMEOUT,
            ) => {
                super::approvals::timed_out(decision, prep, snap, &timer.step, now)?;
            }
            (
                StepState::Waiting {
                    on: StepWait::Approval { .. },
                    ..
                },
                super::approvals::REMINDER,
            ) => {
                super::approvals::remind(decision, prep, snap, &timer.step, now)?;
            }
            (
                StepState::Waiting {
                    on: StepWait::Timer { .. },
                    started_at,
                    ..
                },
                "poll",
            ) => {
                poll(decision, prep, snap, &timer.step, step, *started_at, now)?;
            }
            // The step moved on without the timer (cancelled, decided): just spend it.
            _ => {}
        }
        woke = true;
    }
    Ok(woke)
}
