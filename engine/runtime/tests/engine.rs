//! The scheduler end to end against real storage (SQLite and PostgreSQL),
//! with a scripted executor standing in for the plugin host: branches,
//! joins, templates, retries with backoff, failure with compensation,
//! conditions, approval gates, cancellation, and recovery of an attempt
//! interrupted by a crash — re-run with the same idempotency key.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use cordon_playbook::{Context, PluginCatalog, PluginDescriptor, validate};
use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use cordon_runtime::clock::FakeClock;
use cordon_runtime::executor::{BoxFuture, Executor, StepCall};
use cordon_runtime::run_state::RunStatus;
use cordon_runtime::{Engine, Progress, RunRequest, StartError};
use cordon_storage::{NewVersion, Store, on_both_backends};
use serde_json::{Value, json};

/// Answers each step from a script (default: `{"ok": true}`), records every
/// call, and can hang forever on chosen calls to simulate a crash mid-call.
#[derive(Debug, Default)]
struct Scripted {
    script: Mutex<HashMap<String, VecDeque<Result<Value, AttemptError>>>>,
    calls: Mutex<Vec<StepCall>>,
    compensations: Mutex<Vec<(String, Value)>>,
    hang_once: Mutex<Vec<String>>,
    /// Holds the next call until the test sends on the other end.
    hold: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    /// How long each call takes, and the most calls seen in flight at once.
    delay: Mutex<Option<Duration>>,
    active: Arc<std::sync::atomic::AtomicUsize>,
    peak: Arc<std::sync::atomic::AtomicUsize>,
}

impl Scripted {
    fn answer(&self, step: &str, results: Vec<Result<Value, AttemptError>>) {
        self.script
            .lock()
            .expect("lock")
            .insert(step.into(), results.into());
    }

    fn calls(&self) -> Vec<StepCall> {
        self.calls.lock().expect("lock").clone()
    }
}

impl Executor for Scripted {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        self.calls.lock().expect("lock").push(call.clone());
        let hang = {
            let mut hang = self.hang_once.lock().expect("lock");
            let found = hang.iter().position(|s| *s == call.step);
            found.map(|i| hang.remove(i)).is_some()
        };
        let result = self
            .script
            .lock()
            .expect("lock")
            .get_mut(&call.step)
            .and_then(VecDeque::pop_front)
            .unwrap_or_else(|| Ok(json!({"ok": true, "device": call.inputs.get("device")})));
        let hold = self.hold.lock().expect("lock").take();
        let delay = *self.delay.lock().expect("lock");
        let (active, peak) = (self.active.clone(), self.peak.clone());
        Box::pin(async move {
            use std::sync::atomic::Ordering::SeqCst;
            let now = active.fetch_add(1, SeqCst) + 1;
            peak.fetch_max(now, SeqCst);
            if let Some(delay) = delay {
                tokio::time::sleep(delay).await;
            }
            active.fetch_sub(1, SeqCst);
            if hang {
                std::future::pending::<()>().await;
            }
            if let Some(hold) = hold {
                let _ = hold.await;
            }
            result
        })
    }

    fn compensate(&self, call: StepCall, outputs: Value) -> BoxFuture<Result<(), String>> {
        self.compensations
            .lock()
            .expect("lock")
            .push((call.step, outputs));
        Box::pin(async { Ok(()) })
    }
}

fn catalog() -> Arc<PluginCatalog> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/descriptors");
    let descriptors = std::fs::read_dir(dir).expect("descriptors").map(|e| {
        serde_json::from_str::<PluginDescriptor>(
            &std::fs::read_to_string(e.expect("entry").path()).expect("read"),
        )
        .expect("descriptor")
    });
    Arc::new(PluginCatalog::new(descriptors).expect("catalog"))
}

fn start() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0)
        .single()
        .expect("time")
}

async fn publish(store: &Store, yaml: &str) {
    let catalog = catalog();
    let validation = validate("p.yaml", yaml.as_bytes(), &Context::new(&catalog));
    assert!(!validation.has_errors(), "{:#?}", validation.diagnostics);
    let valid = validation.into_valid().expect("valid");
    store
        .publish(
            NewVersion::new(
                valid.playbook(),
                yaml.into(),
                BTreeMap::new(),
                start(),
                "alice".into(),
            )
            .expect("v"),
        )
        .await
        .expect("publish");
}

fn engine(store: &Store, clock: &Arc<FakeClock>, executor: &Arc<Scripted>, node: &str) -> Engine {
    Engine::new(
        store.clone(),
        clock.clone(),
        executor.clone(),
        catalog(),
        node,
        Duration::from_secs(30),
    )
}

fn request(playbook: &str, inputs: Value) -> RunRequest {
    let inputs = inputs
        .as_object()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect();
    RunRequest {
        playbook: playbook.into(),
        version: None,
        inputs,
        trigger: json!({"kind": "manual", "by": "alice"}),
        dry_run: false,
    }
}

async fn statuses(store: &Store, run: &str) -> BTreeMap<String, String> {
    store
        .run(run)
        .await
        .expect("read")
        .expect("run")
        .steps
        .into_iter()
        .map(|s| (s.key, s.state.status))
        .collect()
}

const CONTAIN: &str = r#"
cordon: v1
name: contain
version: 1.0.0
inputs:
  device: {type: device}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: '${{ inputs.device }}', mode: soft}
  - id: health
    needs: [quarantine]
    uses: check-health@1
    with: {device: '${{ steps.quarantine.outputs.device }}'}
  - id: snapshot
    needs: [quarantine]
    uses: check-health@1
    with: {device: '${{ inputs.device }}', window: 5m}
  - id: restore
    needs: [health, snapshot]
    uses: restore-device@1
    with: {device: '${{ inputs.device }}'}
    retry: {attempts: 3, backoff: 10s}
"#;

on_both_backends!(
    branches_join_and_templates_render,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let calls = executor.calls();
        let order: Vec<&str> = calls.iter().map(|c| c.step.as_str()).collect();
        assert_eq!(order[0], "quarantine");
        assert_eq!(
            order[3], "restore",
            "the join waits for both branches: {order:?}"
        );
        assert_eq!(calls[0].inputs, json!({"device": "plc-7", "mode": "soft"}));
        let health = calls.iter().find(|c| c.step == "health").expect("health");
        assert_eq!(
            health.inputs["device"], "plc-7",
            "upstream outputs feed templates"
        );
        assert_eq!(health.key.as_str(), format!("{run}/health/1"));
        assert!(
            statuses(&store, &run)
                .await
                .values()
                .all(|s| s == "succeeded")
        );
        // A late cancel changes nothing.
        assert_eq!(
            engine.cancel(&run, "bob").await.expect("cancel"),
            RunStatus::Succeeded
        );
    }
);

on_both_backends!(
    transient_failures_retry_after_a_durable_backoff,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let slow = || {
            Err(AttemptError {
                kind: ErrorKind::Timeout,
                message: "device did not answer".into(),
                retryable: false,
            })
        };
        executor.answer(
            "restore",
            vec![slow(), slow(), Ok(json!({"healthy": true}))],
        );
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        // First failure: blocked until the 10 s backoff timer.
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + chrono::Duration::seconds(10))
            }
        );
        clock.advance(Duration::from_secs(10));
        // Second failure: the backoff doubles.
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + chrono::Duration::seconds(30))
            }
        );
        clock.advance(Duration::from_secs(20));
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let keys: Vec<String> = executor
            .calls()
            .iter()
            .filter(|c| c.step == "restore")
            .map(|c| c.key.to_string())
            .collect();
        assert_eq!(
            keys,
            [
                format!("{run}/restore/1"),
                format!("{run}/restore/2"),
                format!("{run}/restore/3")
            ]
        );
        let attempts = store.attempts(&run).await.expect("attempts");
        let restore: Vec<&str> = attempts
            .iter()
            .filter(|a| a.step == "restore")
            .map(|a| a.state.status.as_str())
            .collect();
        assert_eq!(restore, ["failed", "failed", "succeeded"]);
    }
);

on_both_backends!(
    a_permanent_failure_compensates_completed_steps,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        executor.answer(
            "restore",
            vec![Err(AttemptError {
                kind: ErrorKind::Denied,
                message: "connection fleet-broker not granted".into(),
                retryable: true,
            })],
        );
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        // Denied is not transient: one attempt only, despite `retry: {attempts: 3}`.
        assert_eq!(
            executor
                .calls()
                .iter()
                .filter(|c| c.step == "restore")
                .count(),
            1
        );
        // isolate is compensable: the quarantine is undone with the outputs it produced.
        let compensations = executor.compensations.lock().expect("lock").clone();
        assert_eq!(compensations.len(), 1);
        assert_eq!(compensations[0].0, "quarantine");
        let steps = statuses(&store, &run).await;
        assert_eq!(steps["quarantine"], "compensated");
        assert_eq!(steps["restore"], "failed");
        let state = store
            .run(&run)
            .await
            .expect("read")
            .expect("run")
            .state
            .state;
        assert_eq!(state["error"]["kind"], "step_failed");
        assert_eq!(state["error"]["step"], "restore");
    }
);

const GATED: &str = r#"
cordon: v1
name: gated
version: 1.0.0
inputs:
  device: {type: device}
  hard: {type: boolean, default: false}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: '${{ inputs.device }}'}
  - id: cut
    needs: [quarantine]
    if: inputs.hard
    uses: isolate@1
    with: {device: '${{ inputs.device }}', mode: hard}
  - id: approve
    needs: [quarantine]
    approval: {approvers: {roles: [security-lead]}, timeout: 30m}
  - id: revoke
    needs: [approve]
    uses: revoke-cert@1
    with: {device: '${{ inputs.device }}'}
on_failure: {compensate: false}
"#;

on_both_backends!(
    gates_wait_for_people_and_conditions_skip,
    |store: Store| async move {
        publish(&store, GATED).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("gated", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + chrono::Duration::minutes(30))
            }
        );
        let steps = statuses(&store, &run).await;
        assert_eq!(
            (
                steps["cut"].as_str(),
                steps["approve"].as_str(),
                steps["revoke"].as_str()
            ),
            ("skipped", "waiting", "pending")
        );
        assert_eq!(
            store
                .run(&run)
                .await
                .expect("read")
                .expect("run")
                .state
                .status,
            "waiting"
        );
        assert!(
            !executor.calls().iter().any(|c| c.step == "revoke"),
            "nothing irreversible before the approval"
        );
        engine
            .decide_gate(&run, "approve", true, "")
            .await
            .expect("approve");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        assert!(executor.calls().iter().any(|c| c.step == "revoke"));

        // A gate nobody decides is rejected when its timeout fires.
        let second = engine
            .start_run(request("gated", json!({"device": "plc-8"})))
            .await
            .expect("start");
        engine.drive(&second).await.expect("drive");
        clock.advance(Duration::from_secs(30 * 60));
        assert_eq!(
            engine.drive(&second).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        let state = store
            .run(&second)
            .await
            .expect("read")
            .expect("run")
            .state
            .state;
        assert_eq!(
            state["error"],
            json!({"kind": "rejected", "step": "approve"})
        );
        assert_eq!(statuses(&store, &second).await["revoke"], "skipped");
    }
);

on_both_backends!(
    an_interrupted_attempt_is_rerun_with_the_same_key,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        executor
            .hang_once
            .lock()
            .expect("lock")
            .push("health".into());
        let first = engine(&store, &clock, &executor, "n1");
        let run = first
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        // Node n1 "crashes" while `health` is executing: its driver is dropped.
        let driving = tokio::spawn({
            let run = run.clone();
            async move { first.drive(&run).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        driving.abort();
        let _ = driving.await;
        assert_eq!(statuses(&store, &run).await["health"], "running");
        // While n1's lease lives, n2 may not touch the run.
        let second = engine(&store, &clock, &executor, "n2");
        assert!(second.drive(&run).await.is_err(), "the lease keeps n2 out");
        // Once it expires, n2 takes over and re-runs the interrupted attempt.
        clock.advance(Duration::from_secs(31));
        assert_eq!(
            second.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let keys: Vec<String> = executor
            .calls()
            .iter()
            .filter(|c| c.step == "health")
            .map(|c| c.key.to_string())
            .collect();
        assert_eq!(
            keys,
            [format!("{run}/health/1"), format!("{run}/health/1")],
            "same idempotency key both times"
        );
        let attempts = store.attempts(&run).await.expect("attempts");
        let health: Vec<(&str, u32, &str)> = attempts
            .iter()
            .filter(|a| a.step == "health")
            .map(|a| (a.state.status.as_str(), a.number, a.node.as_str()))
            .collect();
        assert_eq!(
            health,
            [("succeeded", 1, "n2")],
            "one attempt record, finished by the node that took over"
        );
    }
);

on_both_backends!(
    bad_starts_write_nothing_and_queued_runs_cancel,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let err = engine
            .start_run(request("nope", json!({})))
            .await
            .expect_err("unknown");
        assert!(matches!(err, StartError::UnknownPlaybook(_)), "{err}");
        let err = engine
            .start_run(request("contain", json!({"device": 7, "colour": "red"})))
            .await
            .expect_err("inputs");
        assert_eq!(
            err.to_string(),
            "invalid inputs: the playbook has no input `colour`; input `device` must be a device, not `7`"
        );
        assert!(
            store.runs(&[], 10).await.expect("list").is_empty(),
            "nothing written"
        );
        let run = engine
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.cancel(&run, "bob").await.expect("cancel"),
            RunStatus::Cancelled
        );
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Cancelled)
        );
        assert!(executor.calls().is_empty());
        assert!(
            statuses(&store, &run)
                .await
                .values()
                .all(|s| s == "skipped")
        );
    }
);

const POLLED: &str = r#"
cordon: v1
name: polled
version: 1.0.0
inputs:
  device: {type: device}
  ready: {type: boolean, default: false}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: '${{ inputs.device }}'}
  - id: settle
    needs: [quarantine]
    wait: {until: 'inputs.ready || steps.quarantine.outputs.device == "plc-ready"', every: 10s, timeout: 30s}
  - id: restore
    needs: [settle]
    uses: restore-device@1
    with: {device: '${{ inputs.device }}'}
on_failure: {compensate: false}
"#;

on_both_backends!(
    polled_conditions_finish_or_expire,
    |store: Store| async move {
        publish(&store, POLLED).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        // Holds at the first evaluation.
        let quick = engine
            .start_run(request("polled", json!({"device": "plc-ready"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&quick).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        // Never holds: polled every 10 s, expires after 30 s, and the run fails.
        let slow = engine
            .start_run(request("polled", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&slow).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + chrono::Duration::seconds(10))
            }
        );
        for _ in 0..2 {
            clock.advance(Duration::from_secs(10));
            assert!(matches!(
                engine.drive(&slow).await.expect("drive"),
                Progress::Blocked { .. }
            ));
        }
        clock.advance(Duration::from_secs(10));
        assert_eq!(
            engine.drive(&slow).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        let steps = statuses(&store, &slow).await;
        assert_eq!(
            (steps["settle"].as_str(), steps["restore"].as_str()),
            ("failed", "skipped")
        );
        assert!(
            !executor
                .calls()
                .iter()
                .any(|c| c.run == slow && c.step == "restore")
        );
    }
);

const TIMED: &str = r#"
cordon: v1
name: timed
version: 1.0.0
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: plc-7}
  - id: approve
    needs: [quarantine]
    approval: {approvers: {roles: [security-lead]}}
timeout: 5m
"#;

on_both_backends!(
    a_run_that_outlives_its_timeout_fails_and_compensates,
    |store: Store| async move {
        publish(&store, TIMED).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("timed", json!({})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + chrono::Duration::minutes(5))
            }
        );
        clock.advance(Duration::from_secs(5 * 60));
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        let record = store.run(&run).await.expect("read").expect("run");
        assert_eq!(record.state.state["error"], json!({"kind": "timed_out"}));
        let steps = statuses(&store, &run).await;
        assert_eq!(
            (steps["quarantine"].as_str(), steps["approve"].as_str()),
            ("compensated", "cancelled")
        );
    }
);

on_both_backends!(
    a_result_arriving_after_a_cancel_is_absorbed,
    |store: Store| async move {
        publish(&store, GATED).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let (release, hold) = tokio::sync::oneshot::channel();
        *executor.hold.lock().expect("lock") = Some(hold);
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("gated", json!({"device": "plc-7"})))
            .await
            .expect("start");
        let driving = tokio::spawn({
            let (engine, run) = (engine.clone(), run.clone());
            async move { engine.drive(&run).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(statuses(&store, &run).await["quarantine"], "running");
        // The playbook does not compensate: cancelling ends the run at once.
        assert_eq!(
            engine.cancel(&run, "bob").await.expect("cancel"),
            RunStatus::Cancelled
        );
        release.send(()).expect("release");
        assert_eq!(
            driving.await.expect("join").expect("drive"),
            Progress::Finished(RunStatus::Cancelled)
        );
        let steps = statuses(&store, &run).await;
        assert_eq!(
            steps["quarantine"], "cancelled",
            "the late success did not overwrite the cancellation"
        );
        let attempts = store.attempts(&run).await.expect("attempts");
        assert_eq!(
            attempts
                .iter()
                .map(|a| a.state.status.as_str())
                .collect::<Vec<_>>(),
            ["cancelled"]
        );
    }
);

on_both_backends!(
    a_paused_run_starts_nothing_until_resumed,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        // A queued run cannot be paused (there is nothing to hold yet): it stays queued.
        assert_eq!(
            engine
                .pause(&run, "bob")
                .await
                .map_err(|e| e.to_string())
                .expect_err("refused"),
            "run: event `pause` is not allowed in state `queued`"
        );
        let (release, hold) = tokio::sync::oneshot::channel();
        *executor.hold.lock().expect("lock") = Some(hold);
        let driving = tokio::spawn({
            let (engine, run) = (engine.clone(), run.clone());
            async move { engine.drive(&run).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            engine.pause(&run, "bob").await.expect("pause"),
            RunStatus::Paused
        );
        release.send(()).expect("release");
        // The attempt in flight is recorded, but nothing new starts.
        assert_eq!(
            driving.await.expect("join").expect("drive"),
            Progress::Blocked { until: None }
        );
        let steps = statuses(&store, &run).await;
        assert_eq!(
            (steps["quarantine"].as_str(), steps["health"].as_str()),
            ("succeeded", "pending")
        );
        assert_eq!(executor.calls().len(), 1);
        assert_eq!(
            engine.resume(&run).await.expect("resume"),
            RunStatus::Running
        );
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        assert_eq!(executor.calls().len(), 4);
    }
);

const ROLLOUT: &str = r#"
cordon: v1
name: rollout
version: 1.0.0
inputs:
  image: {type: string, default: safe-2.4.1}
steps:
  - id: rollback
    foreach:
      items: [{id: plc-1}, {id: plc-2}, {id: plc-3}, {id: plc-4}, {id: plc-5}, {id: plc-6}]
      concurrency: 2
      waves: [1, 50%, 100%]
      max_failures: 1
      pause: 1m
    uses: rollback-firmware@1
    with: {device: '${{ item.id }}', image: '${{ inputs.image }}'}
  - id: verify
    needs: [rollback]
    uses: check-health@1
    with: {device: fleet}
on_failure: {compensate: false}
"#;

on_both_backends!(
    a_fanout_rolls_out_in_waves_with_pauses,
    |store: Store| async move {
        publish(&store, ROLLOUT).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        *executor.delay.lock().expect("lock") = Some(Duration::from_millis(40));
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("rollout", json!({})))
            .await
            .expect("start");
        let minute = chrono::Duration::minutes(1);
        // Wave 1 (one device), then a one-minute pause.
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + minute)
            }
        );
        let devices = |executor: &Scripted| {
            executor
                .calls()
                .iter()
                .filter(|c| c.step.starts_with("rollback["))
                .map(|c| c.inputs["device"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(devices(&executor), ["plc-1"]);
        assert_eq!(
            executor.calls()[0].inputs,
            json!({"device": "plc-1", "image": "safe-2.4.1"})
        );
        assert_eq!(
            executor.calls()[0].key.as_str(),
            format!("{run}/rollback[0]/1")
        );
        // Wave 2 reaches 50% (three devices), then pauses again.
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked {
                until: Some(start() + minute * 2)
            }
        );
        let mut released = devices(&executor);
        released.sort();
        assert_eq!(
            released,
            ["plc-1", "plc-2", "plc-3"],
            "items of a wave run in parallel, in any order"
        );
        // The last wave finishes the rollout; the step after it runs once.
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        assert_eq!(devices(&executor).len(), 6);
        assert_eq!(
            executor.peak.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "`concurrency: 2` is reached and never exceeded"
        );
        assert_eq!(
            executor
                .calls()
                .iter()
                .filter(|c| c.step == "verify")
                .count(),
            1
        );
        let record = store.run(&run).await.expect("read").expect("run");
        let rollback = record
            .steps
            .iter()
            .find(|s| s.key == "rollback")
            .expect("rollback");
        assert_eq!(
            (
                rollback.outputs.as_ref().expect("outputs")["succeeded"].as_u64(),
                rollback.state.status.as_str()
            ),
            (Some(6), "succeeded")
        );
    }
);

on_both_backends!(
    a_fanout_stops_past_its_failure_threshold,
    |store: Store| async move {
        publish(
            &store,
            &ROLLOUT
                .replace("      pause: 1m\n", "")
                .replace("[1, 50%, 100%]", "[2, 100%]"),
        )
        .await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let refused = || {
            Err(AttemptError {
                kind: ErrorKind::Plugin,
                message: "image below the security floor".into(),
                retryable: false,
            })
        };
        executor.answer("rollback[0]", vec![refused()]);
        executor.answer("rollback[1]", vec![refused()]);
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("rollout", json!({})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        // Two failures in the first wave exceed `max_failures: 1`: nothing else is touched.
        assert_eq!(executor.calls().len(), 2);
        let steps = statuses(&store, &run).await;
        assert_eq!(steps["rollback"], "failed");
        assert!(
            (2..6).all(|i| steps[&format!("rollback[{i}]")] == "skipped"),
            "{steps:?}"
        );
        assert_eq!(steps["verify"], "skipped");
    }
);

on_both_backends!(
    a_failed_run_reruns_from_its_failed_step,
    |store: Store| async move {
        publish(
            &store,
            &format!(
                "{}on_failure: {{compensate: false}}\n",
                CONTAIN.replace("    retry: {attempts: 3, backoff: 10s}\n", "")
            ),
        )
        .await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        executor.answer(
            "restore",
            vec![Err(AttemptError {
                kind: ErrorKind::Plugin,
                message: "backup unreadable".into(),
                retryable: false,
            })],
        );
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("contain", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        let err = engine
            .rerun(&run, "nope", "bob")
            .await
            .expect_err("unknown step");
        assert_eq!(err.to_string(), format!("run {run} has no step `nope`"));

        let again = engine.rerun(&run, "restore", "bob").await.expect("rerun");
        assert_eq!(
            engine.drive(&again).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        // Only `restore` ran again; what succeeded before was carried over, outputs included.
        let rerun_calls: Vec<String> = executor
            .calls()
            .iter()
            .filter(|c| c.run == again)
            .map(|c| c.step.clone())
            .collect();
        assert_eq!(rerun_calls, ["restore"]);
        let record = store.run(&again).await.expect("read").expect("run");
        assert_eq!(
            record.trigger,
            json!({"kind": "rerun", "of": run, "from": "restore", "by": "bob"})
        );
        let quarantine = record
            .steps
            .iter()
            .find(|s| s.key == "quarantine")
            .expect("step");
        assert_eq!(
            (
                quarantine.state.status.as_str(),
                quarantine.outputs.as_ref().map(|o| o["device"].clone())
            ),
            ("succeeded", Some(json!("plc-7")))
        );
        // A run still going cannot be re-run.
        let live = engine
            .start_run(request("contain", json!({"device": "plc-8"})))
            .await
            .expect("start");
        assert!(engine.rerun(&live, "restore", "bob").await.is_err());
    }
);

const CHILD: &str = r#"
cordon: v1
name: child
version: 1.0.0
inputs:
  device: {type: device}
  gated: {type: boolean, default: false}
steps:
  - id: quarantine
    uses: isolate@1
    with: {device: '${{ inputs.device }}'}
  - id: confirm
    needs: [quarantine]
    if: inputs.gated
    approval: {approvers: {roles: [security-lead]}}
on_failure: {compensate: false}
"#;

const PARENT: &str = r#"
cordon: v1
name: parent
version: 1.0.0
inputs:
  device: {type: device}
  gated: {type: boolean, default: false}
steps:
  - id: contain
    playbook: child@1.0.0
    with: {device: '${{ inputs.device }}', gated: '${{ inputs.gated }}'}
  - id: report
    needs: [contain]
    notify: {to: [ops@example.com], subject: 'child run ${{ steps.contain.outputs.run }} ${{ steps.contain.outputs.status }}'}
on_failure: {compensate: false}
"#;

on_both_backends!(
    a_sub_playbook_runs_as_a_pinned_child_run,
    |store: Store| async move {
        publish(&store, CHILD).await;
        publish(&store, PARENT).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("parent", json!({"device": "plc-7"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let parent = store.run(&run).await.expect("read").expect("run");
        let contain = parent
            .steps
            .iter()
            .find(|s| s.key == "contain")
            .expect("step");
        let outputs = contain.outputs.clone().expect("outputs");
        let child_id = outputs["run"].as_str().expect("child id").to_string();
        assert_eq!(outputs["status"], "succeeded");
        assert_eq!(
            outputs["steps"]["quarantine"]["device"], "plc-7",
            "the child's outputs come back to the parent"
        );
        let child = store.run(&child_id).await.expect("read").expect("child");
        assert_eq!(
            (
                child.playbook.as_str(),
                child.version.as_str(),
                child.state.status.as_str()
            ),
            ("child", "1.0.0", "succeeded")
        );
        assert_eq!(
            child.trigger,
            json!({"kind": "parent", "run": run, "step": "contain"})
        );
        let report = executor
            .calls()
            .into_iter()
            .find(|c| c.step == "report")
            .expect("report");
        assert_eq!(
            report.inputs["subject"],
            format!("child run {child_id} succeeded")
        );
    }
);

on_both_backends!(
    a_parent_waits_for_its_child_and_fails_with_it,
    |store: Store| async move {
        publish(&store, CHILD).await;
        publish(&store, PARENT).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        // The child waits at its gate, so the parent waits too.
        let run = engine
            .start_run(request("parent", json!({"device": "plc-7", "gated": true})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked { until: None }
        );
        let contain = store
            .run(&run)
            .await
            .expect("read")
            .expect("run")
            .steps
            .into_iter()
            .find(|s| s.key == "contain")
            .expect("step");
        let child_id = contain.outputs.expect("outputs")["run"]
            .as_str()
            .expect("id")
            .to_string();
        assert_eq!(contain.state.status, "running");
        // The child's gate is rejected: the child fails, and the parent with it.
        engine
            .decide_gate(&child_id, "confirm", false, "not this device")
            .await
            .expect("deny");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        assert_eq!(
            store
                .run(&child_id)
                .await
                .expect("read")
                .expect("child")
                .state
                .status,
            "failed"
        );
        let steps = statuses(&store, &run).await;
        assert_eq!(
            (steps["contain"].as_str(), steps["report"].as_str()),
            ("failed", "skipped")
        );
    }
);

on_both_backends!(
    two_nodes_sweeping_one_database_never_share_a_run,
    |store: Store| async move {
        publish(&store, CONTAIN).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        *executor.delay.lock().expect("lock") = Some(Duration::from_millis(5));
        let n1 = engine(&store, &clock, &executor, "n1");
        let n2 = engine(&store, &clock, &executor, "n2");
        let mut runs = Vec::new();
        for i in 0..6 {
            runs.push(
                n1.start_run(request("contain", json!({"device": format!("plc-{i}")})))
                    .await
                    .expect("start"),
            );
        }
        let (a, b) = tokio::join!(n1.sweep(64), n2.sweep(64));
        let (a, b) = (a.expect("sweep n1"), b.expect("sweep n2"));
        // Between them they finished every run, each run on one node only.
        let mut finished: Vec<&String> = a.iter().chain(&b).map(|(run, _)| run).collect();
        finished.sort();
        finished.dedup();
        assert_eq!(finished.len(), 6, "n1 drove {a:?}, n2 drove {b:?}");
        assert!(
            a.iter()
                .chain(&b)
                .all(|(_, p)| *p == Progress::Finished(RunStatus::Succeeded))
        );
        // Every attempt was executed exactly once (its idempotency key appears once).
        let mut keys: Vec<String> = executor.calls().iter().map(|c| c.key.to_string()).collect();
        let total = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!((keys.len(), total), (24, 24));
        // Nothing is left to claim.
        assert!(n2.sweep(64).await.expect("sweep").is_empty());
    }
);

on_both_backends!(
    cancelling_a_parent_cancels_its_child,
    |store: Store| async move {
        publish(&store, CHILD).await;
        publish(&store, PARENT).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("parent", json!({"device": "plc-7", "gated": true})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Blocked { until: None }
        );
        let contain = store
            .run(&run)
            .await
            .expect("read")
            .expect("run")
            .steps
            .into_iter()
            .find(|s| s.key == "contain")
            .expect("step");
        let child_id = contain.outputs.expect("outputs")["run"]
            .as_str()
            .expect("id")
            .to_string();
        assert_eq!(
            engine.cancel(&run, "bob").await.expect("cancel"),
            RunStatus::Cancelled
        );
        assert_eq!(
            store
                .run(&child_id)
                .await
                .expect("read")
                .expect("child")
                .state
                .status,
            "cancelled"
        );
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Cancelled)
        );
    }
);
