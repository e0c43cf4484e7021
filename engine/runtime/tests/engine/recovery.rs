//! Crashes, concurrent changes and several nodes: an interrupted attempt
//! re-runs with its key, a late result is absorbed, nodes never share a run.

use super::common::*;

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
