//! `foreach` rollouts: waves, pauses, the concurrency limit and the abort
//! threshold.

use super::common::*;
use cordon_storage::DeviceRecord;

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

const BY_SELECTOR: &str = r#"
cordon: v1
name: by-selector
version: 1.0.0
inputs:
  line: {type: string}
steps:
  - id: probe
    foreach:
      items: '${{ inventory.select("tag=" + inputs.line + ",criticality>=high") }}'
      concurrency: 2
    uses: check-health@1
    with: {device: '${{ item.id }}'}
"#;

fn device(id: &str, tags: &[&str], criticality: &str) -> DeviceRecord {
    DeviceRecord {
        id: id.into(),
        device_type: "plc".into(),
        site: "plant-a".into(),
        tags: tags.iter().map(ToString::to_string).collect(),
        criticality: criticality.into(),
        firmware: "2.4.1".into(),
        cert_serial: None,
        owner: "ot".into(),
        drill: false,
    }
}

on_both_backends!(
    a_fanout_covers_the_devices_an_inventory_selector_picks,
    |store: Store| async move {
        publish(&store, BY_SELECTOR).await;
        store
            .upsert_devices(
                &[
                    device("plc-3", &["line-3"], "critical"),
                    device("plc-1", &["line-3"], "high"),
                    device("plc-2", &["line-3"], "low"),
                    device("plc-4", &["line-4"], "high"),
                ],
                start(),
            )
            .await
            .expect("inventory");
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        let run = engine
            .start_run(request("by-selector", json!({"line": "line-3"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        let mut devices: Vec<String> = executor
            .calls()
            .iter()
            .map(|c| c.inputs["device"].as_str().unwrap_or_default().to_string())
            .collect();
        devices.sort();
        assert_eq!(
            devices,
            ["plc-1", "plc-3"],
            "line-3 devices of high criticality or more"
        );
        let steps = statuses(&store, &run).await;
        assert_eq!(steps.get("probe[1]").map(String::as_str), Some("succeeded"));
        assert!(
            !steps.contains_key("probe[2]"),
            "exactly two items: {steps:?}"
        );
    }
);

on_both_backends!(
    a_selector_that_picks_nothing_or_is_wrong_says_so,
    |store: Store| async move {
        publish(&store, BY_SELECTOR).await;
        let clock = Arc::new(FakeClock::at(start()));
        let executor = Arc::new(Scripted::default());
        let engine = engine(&store, &clock, &executor, "n1");
        // An empty inventory: the fan-out has no items and succeeds at once.
        let run = engine
            .start_run(request("by-selector", json!({"line": "line-3"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Succeeded)
        );
        assert!(executor.calls().is_empty());
        // A selector built from an input that does not parse fails the step, saying why.
        let run = engine
            .start_run(request("by-selector", json!({"line": "x,colour=red"})))
            .await
            .expect("start");
        assert_eq!(
            engine.drive(&run).await.expect("drive"),
            Progress::Finished(RunStatus::Failed)
        );
        let record = store.run(&run).await.expect("read").expect("run");
        let probe = record
            .steps
            .iter()
            .find(|s| s.key == "probe")
            .expect("probe");
        assert!(
            probe.state.state["message"]
                .as_str()
                .unwrap_or("")
                .contains("colour"),
            "{:?}",
            probe.state.state
        );
    }
);
