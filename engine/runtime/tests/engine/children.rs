//! Sub-playbooks run as pinned child runs.

use super::common::*;

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
            json!({"kind": "parent", "run": run, "step": "contain", "by": "alice"})
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
        // Whoever started the parent started the child: no self-approval there either.
        let gate = store
            .approval_of_step(&child_id, "confirm")
            .await
            .expect("read")
            .expect("request");
        assert_eq!(gate.initiator.as_deref(), Some("alice"));
        // The child's gate is rejected: the child fails, and the parent with it.
        decide(&engine, &store, &child_id, "confirm", false).await;
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

const PARENT_WITH_TIMEOUT: &str = r#"
cordon: v1
name: impatient
version: 1.0.0
timeout: 1m
steps:
  - id: contain
    playbook: child@1.0.0
    with: {device: plc-7, gated: true}
on_failure: {compensate: false}
"#;

on_both_backends!(
    a_parent_that_fails_by_itself_ends_its_child_too,
    |store: Store| async move {
        publish(&store, CHILD).await;
        publish(&store, PARENT_WITH_TIMEOUT).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("impatient", json!({})))
            .await
            .expect("start");
        // The child waits at its gate; the parent waits for the child.
        let progress = engine.drive(&run).await.expect("drive");
        assert!(matches!(progress, Progress::Blocked { .. }), "{progress:?}");
        let parent = store.run(&run).await.expect("read").expect("run");
        let child = parent
            .steps
            .iter()
            .find(|s| s.key == "contain")
            .and_then(|s| s.outputs.as_ref())
            .and_then(|o| o["run"].as_str())
            .expect("a child run")
            .to_string();
        assert_eq!(
            store
                .run(&child)
                .await
                .expect("read")
                .expect("child")
                .state
                .status,
            "waiting"
        );
        // The parent's own timeout fails it: the child must not go on without it.
        clock.advance(Duration::from_secs(120));
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        assert_eq!(
            store
                .run(&child)
                .await
                .expect("read")
                .expect("child")
                .state
                .status,
            "cancelled"
        );
    }
);

on_both_backends!(
    a_child_whose_parent_ended_unrecorded_cancels_itself,
    |store: Store| async move {
        publish(&store, CHILD).await;
        publish(&store, PARENT).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let parent = engine
            .start_run(request("parent", json!({"device": "plc-7"})))
            .await
            .expect("start");
        engine.cancel(&parent, "alice").await.expect("cancel");
        // The child a crashed or out-raced parent created but never recorded.
        let mut orphan = request("child", json!({"device": "plc-7"}));
        orphan.trigger = json!({"kind": "parent", "run": parent, "step": "contain"});
        let child = engine.start_run(orphan).await.expect("start");
        assert_eq!(
            engine.drive(&child).await.expect("drive"),
            Progress::Finished(RunStatus::Cancelled)
        );
        assert!(executor.calls().is_empty(), "the orphan did nothing");
    }
);
