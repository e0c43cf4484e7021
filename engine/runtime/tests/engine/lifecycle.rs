//! A run's life on one node: branches and joins, templates, retries,
//! compensation, gates, polls, timeouts, bad starts, pause, re-runs.

use super::common::*;

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
        decide(&engine, &store, &run, "approve", true).await;
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
            engine.resume(&run, "bob").await.expect("resume"),
            RunStatus::Running
        );
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        assert_eq!(executor.calls().len(), 4);
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

const HUGE: &str = r#"
cordon: v1
name: huge
version: 1.0.0
timeout: 999999999d
steps:
  - id: flaky
    uses: check-health@1
    retry: {attempts: 3, backoff: 999999999d, factor: 10}
    timeout: 999999999d
    with: {device: plc-1}
  - id: pause
    needs: [flaky]
    wait: 999999999d
"#;

on_both_backends!(
    durations_beyond_the_calendar_mean_never_not_a_panic,
    |store: Store| async move {
        publish(&store, HUGE).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        executor.answer(
            "flaky",
            vec![Err(AttemptError {
                kind: ErrorKind::Timeout,
                message: "slow".into(),
                retryable: true,
            })],
        );
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("huge", json!({})))
            .await
            .expect("start");
        // The retry backoff saturates at the end of representable time.
        let progress = engine.drive(&run).await.expect("drive");
        let Progress::Blocked { until: Some(until) } = progress else {
            panic!("expected a far timer, got {progress:?}");
        };
        assert!(
            until > start() + chrono::Duration::days(365 * 1000),
            "{until}"
        );
    }
);

on_both_backends!(
    a_run_whose_version_cannot_be_planned_fails_saying_why,
    |store: Store| async move {
        publish(&store, HUGE).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let run = engine(&store, &clock, &executor, "n1")
            .start_run(request("huge", json!({})))
            .await
            .expect("start");
        // A node whose catalog lacks the pinned plugin cannot plan the run.
        let bare = Engine::new(
            store.clone(),
            clock.clone(),
            executor.clone(),
            Arc::new(PluginCatalog::default()),
            "n2",
            Duration::from_secs(30),
        );
        assert_eq!(
            bare.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        let record = store.run(&run).await.expect("read").expect("run");
        assert_eq!(record.state.state["error"]["kind"], "unplannable");
        assert!(
            record.state.state["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("check-health"),
            "{:?}",
            record.state.state
        );
        assert!(executor.calls().is_empty(), "nothing ran");
        // Cancelling such a run still works (without undoing anything).
        let other = engine(&store, &clock, &executor, "n1")
            .start_run(request("huge", json!({})))
            .await
            .expect("start");
        assert_eq!(
            bare.cancel(&other, "alice").await.expect("cancel"),
            RunStatus::Cancelled
        );
    }
);
