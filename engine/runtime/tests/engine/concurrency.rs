//! `concurrency`: limits on runs active at once, per playbook and key.

use super::common::*;

fn playbook(name: &str, on_conflict: &str) -> String {
    format!(
        r#"
cordon: v1
name: {name}
version: 1.0.0
inputs:
  device: {{type: device}}
concurrency:
  limit: 1
  key: '${{{{ inputs.device }}}}'
  on_conflict: {on_conflict}
steps:
  - id: approve
    approval: {{approvers: {{roles: [security-lead]}}}}
  - id: contain
    needs: [approve]
    uses: isolate@1
    with: {{device: '${{{{ inputs.device }}}}'}}
"#
    )
}

async fn status(store: &Store, run: &str) -> String {
    store
        .run(run)
        .await
        .expect("read")
        .expect("run")
        .state
        .status
}

on_both_backends!(
    a_run_over_the_limit_waits_queued_for_a_slot,
    |store: Store| async move {
        publish(&store, &playbook("guarded", "queue")).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let first = engine
            .start_run(request("guarded", json!({"device": "plc-7"})))
            .await
            .expect("start");
        let second = engine
            .start_run(request("guarded", json!({"device": "plc-7"})))
            .await
            .expect("start");
        let other = engine
            .start_run(request("guarded", json!({"device": "plc-8"})))
            .await
            .expect("start");
        let at_gate = Progress::Blocked { until: None };
        assert_eq!(engine.drive(&first).await.expect("drive"), at_gate);
        assert_eq!(
            status(&store, &first).await,
            "waiting",
            "it holds plc-7's slot"
        );
        // Same key: it stays queued, untouched.
        assert_eq!(engine.drive(&second).await.expect("drive"), at_gate);
        assert_eq!(status(&store, &second).await, "queued");
        // Another key has its own slot.
        assert_eq!(engine.drive(&other).await.expect("drive"), at_gate);
        assert_eq!(status(&store, &other).await, "waiting");
        // The slot frees when the first run ends; then the second starts.
        decide(&engine, &store, &first, "approve", true).await;
        assert_eq!(
            engine.drive(&first).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        assert_eq!(engine.drive(&second).await.expect("drive"), at_gate);
        assert_eq!(status(&store, &second).await, "waiting");
    }
);

on_both_backends!(
    first_come_first_served_among_queued_runs,
    |store: Store| async move {
        publish(&store, &playbook("guarded", "queue")).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let older = engine
            .start_run(request("guarded", json!({"device": "plc-7"})))
            .await
            .expect("start");
        clock.advance(Duration::from_secs(1));
        let newer = engine
            .start_run(request("guarded", json!({"device": "plc-7"})))
            .await
            .expect("start");
        // The newer run is driven first, but the older one is ahead of it.
        engine.drive(&newer).await.expect("drive");
        assert_eq!(status(&store, &newer).await, "queued");
        engine.drive(&older).await.expect("drive");
        assert_eq!(status(&store, &older).await, "waiting");
    }
);

on_both_backends!(
    a_start_over_the_limit_is_refused_with_reject,
    |store: Store| async move {
        publish(&store, &playbook("strict", "reject")).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let first = engine
            .start_run(request("strict", json!({"device": "plc-7"})))
            .await
            .expect("start");
        let refused = engine
            .start_run(request("strict", json!({"device": "plc-7"})))
            .await
            .expect_err("over the limit");
        assert!(
            matches!(&refused, StartError::AtCapacity { key, limit: 1 } if key == "strict/plc-7"),
            "{refused}"
        );
        assert_eq!(
            store.runs(&[], 10).await.expect("runs").len(),
            1,
            "nothing written"
        );
        // Once the first run is over, the key is free again.
        engine.cancel(&first, "alice").await.expect("cancel");
        engine.drive(&first).await.expect("drive");
        engine
            .start_run(request("strict", json!({"device": "plc-7"})))
            .await
            .expect("a free slot");
    }
);
