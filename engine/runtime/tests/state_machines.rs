//! The three machines agree with their transition tables for every pair of
//! (state, event), terminal states absorb late events, and the lifecycles
//! read as the SPEC describes them.

use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use cordon_runtime::attempt_state::{self, AttemptError, AttemptEvent, AttemptState, ErrorKind};
use cordon_runtime::run_state::{
    self, Ending, RunEffect, RunError, RunEvent, RunState, RunStatus, WaitReason,
};
use cordon_runtime::step_state::{self, SkipReason, StepEffect, StepEvent, StepState, StepWait};
use cordon_runtime::{IdempotencyKey, Timestamp, Transition};

fn t(minute: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 25, 3, minute, 0)
        .single()
        .expect("time")
}

fn transient() -> AttemptError {
    AttemptError {
        kind: ErrorKind::Timeout,
        message: "device did not answer".into(),
        retryable: false,
    }
}

fn permanent() -> AttemptError {
    AttemptError {
        kind: ErrorKind::Denied,
        message: "connection not granted".into(),
        retryable: true,
    }
}

/// Checks one machine exhaustively against its table.
macro_rules! check_table {
    ($states:expr, $events:expr, $table:expr, $status:ident, $absorbs:expr) => {{
        let mut seen = HashSet::new();
        for state in $states {
            for event in $events {
                let from = state.$status();
                let kind = event.kind();
                let allowed = $table
                    .iter()
                    .find(|(f, k, _)| *f == from && *k == kind)
                    .map(|(_, _, to)| *to);
                match (state.clone().on(event.clone()), allowed) {
                    (Ok(Transition::Absorbed { state: after }), _) => {
                        assert!(
                            $absorbs(from, kind),
                            "{from:?} absorbed {kind:?} but should not"
                        );
                        assert_eq!(after, state, "absorbing leaves the state unchanged");
                    }
                    (Ok(Transition::To { state: after, .. }), Some(targets)) => {
                        assert!(
                            targets.contains(&after.$status()),
                            "{from:?} --{kind:?}--> {:?} is not in the table",
                            after.$status()
                        );
                        seen.insert((from, kind, after.$status()));
                    }
                    (Ok(Transition::To { state: after, .. }), None) => {
                        panic!(
                            "{from:?} --{kind:?}--> {:?} happened but the table forbids it",
                            after.$status()
                        )
                    }
                    (Err(e), Some(_)) => {
                        panic!("{from:?} refused {kind:?} but the table allows it: {e}")
                    }
                    (Err(_), None) => {
                        assert!(!$absorbs(from, kind), "{from:?} should absorb {kind:?}")
                    }
                }
            }
        }
        for (from, kind, targets) in $table {
            for to in *targets {
                assert!(
                    seen.contains(&(*from, *kind, *to)),
                    "table entry {from:?} --{kind:?}--> {to:?} never exercised"
                );
            }
        }
    }};
}

fn run_states() -> Vec<RunState> {
    vec![
        RunState::Queued { queued_at: t(0) },
        RunState::Running { started_at: t(1) },
        RunState::Waiting {
            started_at: t(1),
            on: WaitReason::Approval {
                step: "gate".into(),
            },
        },
        RunState::Paused {
            started_at: t(1),
            by: "bob".into(),
        },
        RunState::Compensating {
            started_at: t(1),
            ending: Ending::Failure {
                error: RunError::TimedOut,
            },
        },
        RunState::Compensating {
            started_at: t(1),
            ending: Ending::Cancellation { by: "bob".into() },
        },
        RunState::Succeeded {
            started_at: t(1),
            finished_at: t(9),
        },
        RunState::Failed {
            error: RunError::TimedOut,
            finished_at: t(9),
        },
        RunState::Cancelled {
            by: "bob".into(),
            finished_at: t(9),
        },
    ]
}

fn run_events() -> Vec<RunEvent> {
    let error = RunError::StepFailed {
        step: "revoke".into(),
        message: "CA unreachable".into(),
    };
    vec![
        RunEvent::Start { at: t(1) },
        RunEvent::Wait {
            on: WaitReason::Timer { until: t(5) },
        },
        RunEvent::Wake,
        RunEvent::Pause { by: "bob".into() },
        RunEvent::Resume,
        RunEvent::Complete { at: t(9) },
        RunEvent::Fail {
            error: error.clone(),
            compensate: true,
            at: t(9),
        },
        RunEvent::Fail {
            error,
            compensate: false,
            at: t(9),
        },
        RunEvent::Cancel {
            by: "bob".into(),
            compensate: true,
            at: t(9),
        },
        RunEvent::Cancel {
            by: "bob".into(),
            compensate: false,
            at: t(9),
        },
        RunEvent::Compensated { at: t(10) },
    ]
}

#[test]
fn run_machine_matches_its_table() {
    check_table!(
        run_states(),
        run_events(),
        run_state::TRANSITIONS,
        status,
        |s: RunStatus, _| s.is_terminal()
    );
}

fn step_states() -> Vec<StepState> {
    vec![
        StepState::Pending,
        StepState::Running {
            attempt: 1,
            started_at: t(1),
        },
        StepState::Waiting {
            attempt: 1,
            started_at: t(1),
            on: StepWait::Approval { requested_at: t(1) },
        },
        StepState::Waiting {
            attempt: 1,
            started_at: t(1),
            on: StepWait::Timer { until: t(3) },
        },
        StepState::Waiting {
            attempt: 1,
            started_at: t(1),
            on: StepWait::Backoff { until: t(2) },
        },
        StepState::Succeeded {
            started_at: t(1),
            finished_at: t(2),
        },
        StepState::Failed {
            finished_at: t(2),
            message: "x".into(),
        },
        StepState::Skipped {
            reason: SkipReason::ConditionFalse,
        },
        StepState::Cancelled { finished_at: t(2) },
        StepState::Compensating { started_at: t(3) },
        StepState::Compensated { finished_at: t(4) },
        StepState::CompensationFailed {
            finished_at: t(4),
            message: "device gone".into(),
        },
    ]
}

fn step_events() -> Vec<StepEvent> {
    vec![
        StepEvent::Start { at: t(1) },
        StepEvent::Skip {
            reason: SkipReason::UpstreamDidNotSucceed { step: "a".into() },
        },
        StepEvent::Wait {
            on: StepWait::Timer { until: t(3) },
            at: t(1),
        },
        StepEvent::Wait {
            on: StepWait::Approval { requested_at: t(1) },
            at: t(1),
        },
        StepEvent::AttemptSucceeded { at: t(2) },
        StepEvent::AttemptFailed {
            at: t(2),
            error: transient(),
            retry_at: Some(t(3)),
        },
        StepEvent::AttemptFailed {
            at: t(2),
            error: permanent(),
            retry_at: Some(t(3)),
        },
        StepEvent::AttemptFailed {
            at: t(2),
            error: transient(),
            retry_at: None,
        },
        StepEvent::TimerFired { at: t(3) },
        StepEvent::Approved { at: t(3) },
        StepEvent::Rejected {
            at: t(3),
            reason: "denied by carol".into(),
        },
        StepEvent::Expired {
            at: t(4),
            reason: "never held".into(),
        },
        StepEvent::Cancel { at: t(4) },
        StepEvent::Compensate { at: t(5) },
        StepEvent::CompensationFinished {
            at: t(6),
            result: Ok(()),
        },
        StepEvent::CompensationFinished {
            at: t(6),
            result: Err("device gone".into()),
        },
    ]
}

#[test]
fn step_machine_matches_its_table() {
    use step_state::{StepEventKind, StepStatus};
    let absorbs = |s: StepStatus, e: StepEventKind| {
        s.is_terminal() || (s == StepStatus::Succeeded && e != StepEventKind::Compensate)
    };
    // A gate's waiting state refuses a timer, a timer's refuses a decision:
    // those pairs are allowed by status in the table but not by data, so the
    // table check runs on the combinations that make sense for each wait.
    // (`waiting_steps_accept_only_what_they_wait_for` covers the waiting rows.)
    let mut states = step_states();
    states.retain(|s| !matches!(s, StepState::Waiting { .. }));
    let table: Vec<_> = step_state::TRANSITIONS
        .iter()
        .filter(|(from, _, _)| *from != StepStatus::Waiting)
        .copied()
        .collect();
    check_table!(states, step_events(), table.as_slice(), status, absorbs);
}

#[test]
fn waiting_steps_accept_only_what_they_wait_for() {
    let gate = StepState::Waiting {
        attempt: 1,
        started_at: t(1),
        on: StepWait::Approval { requested_at: t(1) },
    };
    let timer = StepState::Waiting {
        attempt: 1,
        started_at: t(1),
        on: StepWait::Timer { until: t(3) },
    };
    let backoff = StepState::Waiting {
        attempt: 2,
        started_at: t(1),
        on: StepWait::Backoff { until: t(3) },
    };
    assert!(matches!(
        gate.clone()
            .on(StepEvent::Approved { at: t(3) })
            .expect("ok")
            .state(),
        StepState::Succeeded { .. }
    ));
    assert!(matches!(
        gate.clone()
            .on(StepEvent::Rejected {
                at: t(3),
                reason: "no".into()
            })
            .expect("ok")
            .state(),
        StepState::Failed { .. }
    ));
    assert!(
        gate.clone().on(StepEvent::TimerFired { at: t(3) }).is_err(),
        "a gate is not a timer"
    );
    assert!(
        timer.clone().on(StepEvent::Approved { at: t(3) }).is_err(),
        "a timer is not a gate"
    );
    // A poll waits again, or expires.
    let again = timer
        .clone()
        .on(StepEvent::Wait {
            on: StepWait::Timer { until: t(5) },
            at: t(3),
        })
        .expect("ok");
    assert_eq!(
        again.state(),
        &StepState::Waiting {
            attempt: 1,
            started_at: t(1),
            on: StepWait::Timer { until: t(5) }
        }
    );
    assert_eq!(again.effects(), &[StepEffect::ArmTimer(t(5))]);
    assert!(matches!(
        timer
            .clone()
            .on(StepEvent::Expired {
                at: t(9),
                reason: "never healthy".into()
            })
            .expect("ok")
            .state(),
        StepState::Failed { .. }
    ));
    assert!(
        gate.clone()
            .on(StepEvent::Expired {
                at: t(9),
                reason: "x".into()
            })
            .is_err(),
        "a gate does not expire that way"
    );
    assert!(
        gate.clone()
            .on(StepEvent::Wait {
                on: StepWait::Timer { until: t(5) },
                at: t(3)
            })
            .is_err()
    );
    assert!(matches!(
        timer
            .clone()
            .on(StepEvent::TimerFired { at: t(3) })
            .expect("ok")
            .state(),
        StepState::Succeeded { .. }
    ));
    let next = backoff
        .clone()
        .on(StepEvent::TimerFired { at: t(3) })
        .expect("ok");
    assert_eq!(
        next.state(),
        &StepState::Running {
            attempt: 3,
            started_at: t(1)
        }
    );
    assert_eq!(next.effects(), &[StepEffect::StartAttempt(3)]);
    for waiting in [gate, timer, backoff] {
        assert!(matches!(
            waiting
                .on(StepEvent::Cancel { at: t(4) })
                .expect("ok")
                .state(),
            StepState::Cancelled { .. }
        ));
    }
}

fn attempt_states() -> Vec<AttemptState> {
    vec![
        AttemptState::Running {
            started_at: t(1),
            node: "n1".into(),
        },
        AttemptState::Interrupted { detected_at: t(2) },
        AttemptState::Succeeded { finished_at: t(2) },
        AttemptState::Failed {
            finished_at: t(2),
            error: transient(),
        },
        AttemptState::Cancelled { finished_at: t(2) },
    ]
}

fn attempt_events() -> Vec<AttemptEvent> {
    vec![
        AttemptEvent::Finished {
            at: t(2),
            result: Ok(()),
        },
        AttemptEvent::Finished {
            at: t(2),
            result: Err(permanent()),
        },
        AttemptEvent::LeaseLost { at: t(2) },
        AttemptEvent::Rerun {
            at: t(3),
            node: "n2".into(),
        },
        AttemptEvent::Cancel { at: t(4) },
    ]
}

#[test]
fn attempt_machine_matches_its_table() {
    check_table!(
        attempt_states(),
        attempt_events(),
        attempt_state::TRANSITIONS,
        status,
        |s: attempt_state::AttemptStatus, _| s.is_terminal()
    );
}

#[test]
fn a_run_goes_from_queued_to_succeeded_dispatching_as_it_goes() {
    let queued = RunState::Queued { queued_at: t(0) };
    let running = queued.on(RunEvent::Start { at: t(1) }).expect("start");
    assert_eq!(running.effects(), &[RunEffect::DispatchReadySteps]);
    let waiting = running
        .state()
        .clone()
        .on(RunEvent::Wait {
            on: WaitReason::Approval {
                step: "approve-revoke".into(),
            },
        })
        .expect("wait");
    let woken = waiting.state().clone().on(RunEvent::Wake).expect("wake");
    assert_eq!(woken.effects(), &[RunEffect::DispatchReadySteps]);
    let done = woken
        .state()
        .clone()
        .on(RunEvent::Complete { at: t(9) })
        .expect("complete");
    assert_eq!(
        done.state(),
        &RunState::Succeeded {
            started_at: t(1),
            finished_at: t(9)
        }
    );
    assert_eq!(done.effects(), &[RunEffect::Finish]);
}

#[test]
fn a_failing_run_compensates_before_it_is_failed() {
    let error = RunError::StepFailed {
        step: "rollback".into(),
        message: "3 devices failed".into(),
    };
    let running = RunState::Running { started_at: t(1) };
    let compensating = running
        .on(RunEvent::Fail {
            error: error.clone(),
            compensate: true,
            at: t(5),
        })
        .expect("fail");
    assert_eq!(
        compensating.effects(),
        &[
            RunEffect::CancelActiveAttempts,
            RunEffect::CompensateCompletedSteps
        ]
    );
    // A cancel while compensating changes nothing: the run is already ending as a failure.
    let still = compensating
        .state()
        .clone()
        .on(RunEvent::Cancel {
            by: "bob".into(),
            compensate: true,
            at: t(6),
        })
        .expect("cancel");
    assert_eq!(still.state(), compensating.state());
    let failed = still
        .state()
        .clone()
        .on(RunEvent::Compensated { at: t(7) })
        .expect("compensated");
    assert_eq!(
        failed.state(),
        &RunState::Failed {
            error,
            finished_at: t(7)
        }
    );
    assert_eq!(
        failed.effects(),
        &[RunEffect::RunFailureHandlers, RunEffect::Finish]
    );
}

#[test]
fn terminal_states_absorb_late_events() {
    // A cancel that arrives after the run succeeded does not undo anything.
    let done = RunState::Succeeded {
        started_at: t(1),
        finished_at: t(9),
    };
    let late = done
        .clone()
        .on(RunEvent::Cancel {
            by: "bob".into(),
            compensate: true,
            at: t(10),
        })
        .expect("absorbed");
    assert_eq!(late, Transition::Absorbed { state: done });
    // A result from an attempt that was cancelled meanwhile is ignored.
    let cancelled = AttemptState::Cancelled { finished_at: t(3) };
    let result = cancelled
        .clone()
        .on(AttemptEvent::Finished {
            at: t(4),
            result: Ok(()),
        })
        .expect("absorbed");
    assert_eq!(result, Transition::Absorbed { state: cancelled });
    assert!(result.effects().is_empty());
    // A duplicate success (an attempt re-run after a crash also finished) is ignored by the step.
    let succeeded = StepState::Succeeded {
        started_at: t(1),
        finished_at: t(2),
    };
    assert!(matches!(
        succeeded.on(StepEvent::AttemptSucceeded { at: t(3) }),
        Ok(Transition::Absorbed { .. })
    ));
}

#[test]
fn retries_only_follow_transient_errors() {
    let running = StepState::Running {
        attempt: 1,
        started_at: t(1),
    };
    let retry = running
        .clone()
        .on(StepEvent::AttemptFailed {
            at: t(2),
            error: transient(),
            retry_at: Some(t(3)),
        })
        .expect("ok");
    assert_eq!(
        retry.state(),
        &StepState::Waiting {
            attempt: 1,
            started_at: t(1),
            on: StepWait::Backoff { until: t(3) }
        }
    );
    assert_eq!(retry.effects(), &[StepEffect::ArmTimer(t(3))]);
    // A denial is not retried even if the policy would allow another attempt.
    let denied = running
        .on(StepEvent::AttemptFailed {
            at: t(2),
            error: permanent(),
            retry_at: Some(t(3)),
        })
        .expect("ok");
    assert!(matches!(denied.state(), StepState::Failed { .. }));
    assert_eq!(
        denied.effects(),
        &[StepEffect::ReportFailure, StepEffect::ReleaseDependents]
    );
}

#[test]
fn an_interrupted_attempt_reruns_with_the_same_key() {
    let running = AttemptState::Running {
        started_at: t(1),
        node: "n1".into(),
    };
    let lost = running
        .on(AttemptEvent::LeaseLost { at: t(2) })
        .expect("lost");
    let rerun = lost
        .state()
        .clone()
        .on(AttemptEvent::Rerun {
            at: t(3),
            node: "n2".into(),
        })
        .expect("rerun");
    assert_eq!(
        rerun.state(),
        &AttemptState::Running {
            started_at: t(3),
            node: "n2".into()
        }
    );
    assert_eq!(rerun.effects(), &[attempt_state::AttemptEffect::Execute]);
    // The key names the run, the step and the attempt number, not the node or the execution.
    assert_eq!(
        IdempotencyKey::new("r-42", "revoke", 1).as_str(),
        "r-42/revoke/1"
    );
}

#[test]
fn error_kinds_say_whether_a_retry_can_help() {
    assert!(transient().is_transient());
    assert!(
        !permanent().is_transient(),
        "a denial stays a denial even if the plugin says retryable"
    );
    for kind in [
        ErrorKind::OutOfMemory,
        ErrorKind::OutOfFuel,
        ErrorKind::Trap,
        ErrorKind::InvalidOutput,
        ErrorKind::Unavailable,
    ] {
        assert!(
            !AttemptError {
                kind,
                message: String::new(),
                retryable: true
            }
            .is_transient(),
            "{kind:?}"
        );
    }
    assert!(
        AttemptError {
            kind: ErrorKind::Plugin,
            message: String::new(),
            retryable: true
        }
        .is_transient()
    );
}

#[test]
fn states_serialise_with_their_data() {
    let state = StepState::Waiting {
        attempt: 2,
        started_at: t(1),
        on: StepWait::Backoff { until: t(3) },
    };
    let json = serde_json::to_value(&state).expect("json");
    assert_eq!(json["state"], "waiting");
    assert_eq!(json["on"]["on"], "backoff");
    let back: StepState = serde_json::from_value(json).expect("back");
    assert_eq!(back, state);
}
