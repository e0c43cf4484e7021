//! The run engine's storage primitives, on SQLite and on PostgreSQL: one
//! decision commits whole or not at all, and a run has at most one live
//! lease holder at any time.

use std::collections::{BTreeMap, HashSet};

use chrono::{Duration, TimeZone, Utc};
use cordon_playbook::{Context, PluginCatalog, validate};
use cordon_storage::{
    AttemptChange, ChangeSet, NewRun, NewVersion, StepChange, StorageError, Store, StoredState,
    TimerChange, on_both_backends,
};
use serde_json::json;

fn at(second: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 5, 0, 0)
        .single()
        .expect("time")
        + Duration::seconds(i64::from(second))
}

fn state(status: &str) -> StoredState {
    StoredState {
        status: status.into(),
        state: json!({"state": status}),
    }
}

async fn run_with_steps(store: &Store, ids: &[&str]) {
    let yaml = "cordon: v1\nname: drill\nversion: 1.0.0\nsteps:\n  - id: a\n    wait: 1s\n  - id: b\n    wait: 1s\n";
    let catalog = PluginCatalog::default();
    let valid = validate("x.yaml", yaml.as_bytes(), &Context::new(&catalog))
        .into_valid()
        .expect("valid");
    let _ = store
        .publish(
            NewVersion::new(
                valid.playbook(),
                yaml.into(),
                BTreeMap::new(),
                at(0),
                "alice".into(),
            )
            .expect("v"),
        )
        .await
        .expect("publish");
    for (i, id) in ids.iter().enumerate() {
        store
            .create_run(NewRun {
                id: (*id).into(),
                playbook: "drill".into(),
                version: "1.0.0".into(),
                inputs: BTreeMap::new(),
                trigger: json!({"kind": "manual"}),
                dry_run: false,
                drill: false,
                state: state("queued"),
                steps: vec![
                    ("a".into(), state("pending")),
                    ("b".into(), state("pending")),
                ],
                outputs: BTreeMap::new(),
                now: at(u32::try_from(i).expect("small")),
                concurrency: None,
                secret_inputs: vec![],
            })
            .await
            .expect("create");
    }
}

fn start_a() -> ChangeSet {
    ChangeSet {
        run: Some(state("running")),
        new_steps: vec![],
        steps: vec![StepChange {
            key: "a".into(),
            state: state("running"),
            attempt: 1,
            outputs: None,
        }],
        attempts: vec![AttemptChange::Start {
            step: "a".into(),
            number: 1,
            idempotency_key: "r1/a/1".into(),
            node: "n1".into(),
            state: state("running"),
        }],
        timers: vec![TimerChange::Arm {
            step: "a".into(),
            at: at(60),
            purpose: "timeout".into(),
        }],
        admit: None,
        actor: None,
        events: vec![],
        secrets: vec![],
        approvals: vec![],
        notifications: vec![],
    }
}

on_both_backends!(
    one_decision_commits_everything_it_changes,
    |store: Store| async move {
        run_with_steps(&store, &["r1"]).await;
        let revision = store
            .commit("r1", 1, &start_a(), at(1))
            .await
            .expect("commit");
        assert_eq!(revision, 2);
        let run = store.run("r1").await.expect("read").expect("run");
        assert_eq!((run.state.status.as_str(), run.revision), ("running", 2));
        let a = run.steps.iter().find(|s| s.key == "a").expect("a");
        assert_eq!((a.state.status.as_str(), a.attempt), ("running", 1));
        let attempts = store.attempts("r1").await.expect("attempts");
        assert_eq!(attempts.len(), 1);
        assert_eq!(
            (
                attempts[0].idempotency_key.as_str(),
                attempts[0].node.as_str(),
                attempts[0].started_at
            ),
            ("r1/a/1", "n1", at(1))
        );
        let timers = store.timers("r1").await.expect("timers");
        assert_eq!(
            (timers.len(), timers[0].at, timers[0].purpose.as_str()),
            (1, at(60), "timeout")
        );

        let finish = ChangeSet {
            run: None,
            // A fan-out item's row is created in the same change set.
            new_steps: vec![("b[0]".into(), state("pending"))],
            steps: vec![StepChange {
                key: "a".into(),
                state: state("succeeded"),
                attempt: 1,
                outputs: Some(json!({"quarantined": true})),
            }],
            attempts: vec![AttemptChange::Update {
                step: "a".into(),
                number: 1,
                state: state("succeeded"),
                node: None,
                finished_at: Some(at(5)),
            }],
            timers: vec![TimerChange::Spend { id: timers[0].id }],
            admit: None,
            actor: None,
            events: vec![],
            secrets: vec![],
            approvals: vec![],
            notifications: vec![],
        };
        assert_eq!(
            store.commit("r1", 2, &finish, at(5)).await.expect("commit"),
            3
        );
        let run = store.run("r1").await.expect("read").expect("run");
        let a = run.steps.iter().find(|s| s.key == "a").expect("a");
        assert_eq!(a.outputs, Some(json!({"quarantined": true})));
        assert_eq!(
            run.state.status, "running",
            "the run's state is untouched when the change set leaves it out"
        );
        assert_eq!(
            store.attempts("r1").await.expect("attempts")[0].finished_at,
            Some(at(5))
        );
        assert!(
            store.timers("r1").await.expect("timers").is_empty(),
            "a spent timer is gone"
        );
        let item = run
            .steps
            .iter()
            .find(|s| s.key == "b[0]")
            .expect("new step row");
        assert_eq!(item.state.status, "pending");
    }
);

on_both_backends!(
    a_failing_part_leaves_nothing_behind,
    |store: Store| async move {
        run_with_steps(&store, &["r1"]).await;
        // The last change names a step that does not exist: the whole set is refused.
        let mut broken = start_a();
        broken.steps.push(StepChange {
            key: "zzz".into(),
            state: state("running"),
            attempt: 1,
            outputs: None,
        });
        let err = store
            .commit("r1", 1, &broken, at(1))
            .await
            .expect_err("refused");
        assert!(matches!(err, StorageError::NotFound(_)), "{err}");
        let run = store.run("r1").await.expect("read").expect("run");
        assert_eq!((run.state.status.as_str(), run.revision), ("queued", 1));
        assert!(run.steps.iter().all(|s| s.state.status == "pending"));
        assert!(store.attempts("r1").await.expect("attempts").is_empty());
        assert!(store.timers("r1").await.expect("timers").is_empty());

        // A stale revision is refused the same way.
        store
            .commit("r1", 1, &start_a(), at(1))
            .await
            .expect("commit");
        let again = store
            .commit("r1", 1, &start_a(), at(2))
            .await
            .expect_err("stale");
        assert!(
            matches!(again, StorageError::StaleRevision { .. }),
            "{again}"
        );
        assert_eq!(
            store.attempts("r1").await.expect("attempts").len(),
            1,
            "the attempt is recorded exactly once"
        );

        // An idempotency key can never be used twice.
        let reuse = ChangeSet {
            attempts: vec![AttemptChange::Start {
                step: "b".into(),
                number: 1,
                idempotency_key: "r1/a/1".into(),
                node: "n1".into(),
                state: state("running"),
            }],
            ..ChangeSet::default()
        };
        store
            .commit("r1", 2, &reuse, at(3))
            .await
            .expect_err("duplicate key");
        assert_eq!(
            store.run("r1").await.expect("read").expect("run").revision,
            2
        );
    }
);

on_both_backends!(
    a_run_has_one_lease_holder_at_a_time,
    |store: Store| async move {
        run_with_steps(&store, &["r1", "r2"]).await;
        let ttl = Duration::seconds(10);
        assert_eq!(
            store.claim_runs("n1", at(0), ttl, 1).await.expect("claim"),
            ["r1"]
        );
        // n2 cannot take r1 while n1's lease lives, but gets r2.
        assert_eq!(
            store.claim_runs("n2", at(5), ttl, 5).await.expect("claim"),
            ["r2"]
        );
        assert!(
            store
                .renew_lease("r1", "n1", at(8), ttl)
                .await
                .expect("renew")
        );
        // n1 stops renewing; once the lease expires, n3 takes r1 over.
        // At 17s n2's lease on r2 (taken at 5s) has expired, n1's on r1 (renewed at 8s) has not.
        assert_eq!(
            store.claim_runs("n3", at(17), ttl, 5).await.expect("claim"),
            ["r2"]
        );
        // At 19s r1 is free too. r2 is under n3's own live lease (a task of
        // n3 drives it), so it is not handed out again.
        assert_eq!(
            store.claim_runs("n3", at(19), ttl, 5).await.expect("claim"),
            ["r1"]
        );
        assert_eq!(
            store.lease_holder("r2").await.expect("holder"),
            Some(("n3".into(), at(27)))
        );
        assert_eq!(
            store.lease_holder("r1").await.expect("holder"),
            Some(("n3".into(), at(29)))
        );
        // n1 learns it lost the lease when it next renews.
        assert!(
            !store
                .renew_lease("r1", "n1", at(20), ttl)
                .await
                .expect("renew")
        );
        store.release_lease("r1", "n3").await.expect("release");
        assert!(store.lease_holder("r1").await.expect("holder").is_none());
        // Finished runs are never claimed.
        store
            .transition_run("r1", 1, &state("succeeded"), at(21))
            .await
            .expect("finish");
        assert_eq!(
            store.claim_runs("n4", at(50), ttl, 5).await.expect("claim"),
            ["r2"]
        );
    }
);

on_both_backends!(racing_nodes_never_share_a_run, |store: Store| async move {
    let ids: Vec<String> = (0..12).map(|i| format!("r{i:02}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    run_with_steps(&store, &refs).await;
    let mut tasks = Vec::new();
    for node in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_runs(&format!("n{node}"), at(0), Duration::seconds(30), 12)
                .await
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("join").expect("claim"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(
        all.len(),
        distinct.len(),
        "no run was claimed by two nodes: {all:?}"
    );
    assert_eq!(distinct.len(), 12, "every run was claimed by someone");
});

on_both_backends!(
    a_waiting_run_is_claimed_only_when_a_timer_is_due,
    |store: Store| async move {
        run_with_steps(&store, &["r1"]).await;
        let ttl = Duration::seconds(10);
        let waiting = ChangeSet {
            run: Some(state("waiting")),
            timers: vec![TimerChange::Arm {
                step: "a".into(),
                at: at(30),
                purpose: "wait".into(),
            }],
            ..ChangeSet::default()
        };
        store.commit("r1", 1, &waiting, at(1)).await.expect("wait");
        // Nothing can move before 30s: claiming it would only spin.
        assert!(
            store
                .claim_runs("n1", at(29), ttl, 5)
                .await
                .expect("claim")
                .is_empty()
        );
        assert_eq!(
            store.claim_runs("n1", at(30), ttl, 5).await.expect("claim"),
            ["r1"]
        );
        // Once the timer is spent the run is idle again (a gate would wake it by moving it to running).
        store.release_lease("r1", "n1").await.expect("release");
        let timers = store.timers("r1").await.expect("timers");
        let spent = ChangeSet {
            timers: vec![TimerChange::Spend { id: timers[0].id }],
            ..ChangeSet::default()
        };
        store.commit("r1", 2, &spent, at(31)).await.expect("spend");
        assert!(
            store
                .claim_runs("n1", at(40), ttl, 5)
                .await
                .expect("claim")
                .is_empty()
        );
    }
);

on_both_backends!(
    a_driver_s_commit_is_fenced_by_its_lease,
    |store: Store| async move {
        run_with_steps(&store, &["r1"]).await;
        let ttl = Duration::seconds(10);
        let bump = ChangeSet::default();
        // Without the lease, a driver cannot write.
        assert!(matches!(
            store.commit_as(Some("n1"), "r1", 1, &bump, at(1)).await,
            Err(StorageError::LeaseLost { .. })
        ));
        assert!(
            store
                .claim_run("r1", "n1", at(1), ttl)
                .await
                .expect("claim")
        );
        assert_eq!(
            store
                .commit_as(Some("n1"), "r1", 1, &bump, at(2))
                .await
                .expect("held"),
            2
        );
        // n1 stalls past its lease; n2 takes the run over. n1's next write is
        // refused even though the revision it read is still current.
        assert!(
            store
                .claim_run("r1", "n2", at(12), ttl)
                .await
                .expect("takeover")
        );
        assert!(matches!(
            store.commit_as(Some("n1"), "r1", 2, &bump, at(13)).await,
            Err(StorageError::LeaseLost { .. })
        ));
        assert_eq!(
            store
                .commit_as(Some("n2"), "r1", 2, &bump, at(13))
                .await
                .expect("n2 holds it"),
            3
        );
        // A stale revision under a held lease is still a stale revision.
        assert!(matches!(
            store.commit_as(Some("n2"), "r1", 2, &bump, at(14)).await,
            Err(StorageError::StaleRevision { .. })
        ));
    }
);

on_both_backends!(
    every_change_is_audited_in_its_own_transaction,
    |store: Store| async move {
        run_with_steps(&store, &["r1"]).await;
        let created = store.audit_size().await.expect("size");
        assert_eq!(created, 2, "playbook.published, run.created");
        store
            .commit_as(Some("n1"), "r1", 1, &start_a(), at(1))
            .await
            .expect_err("no lease: fenced");
        assert_eq!(
            store.audit_size().await.expect("size"),
            2,
            "a refused commit records nothing"
        );
        store
            .commit("r1", 1, &start_a(), at(1))
            .await
            .expect("commit");
        // The run, the step, the attempt and the timer: four events, chained
        // after the publication and the run's creation.
        let events = store
            .audit_events(&cordon_storage::EventFilter::default())
            .await
            .expect("events");
        let kinds: Vec<&str> = events.iter().map(|e| e.event.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "playbook.published",
                "run.created",
                "run.running",
                "step.running",
                "attempt.started",
                "timer.armed"
            ]
        );
        for pair in events.windows(2) {
            assert_eq!(pair[1].event.prev, pair[0].leaf, "chained");
            assert_eq!(pair[1].event.seq, pair[0].event.seq + 1);
        }
        assert_eq!(events[0].event.actor, "user:alice");
        assert_eq!(events[4].event.data["idempotency_key"], "r1/a/1");
        assert_eq!(events[2].event.actor, "engine");
        // A stale revision writes neither the change nor its events.
        store
            .commit("r1", 1, &start_a(), at(2))
            .await
            .expect_err("stale");
        assert_eq!(store.audit_size().await.expect("size"), 6);
    }
);

on_both_backends!(
    checkpoints_cover_the_log_and_refuse_a_tampered_one,
    |store: Store| async move {
        run_with_steps(&store, &["r1", "r2"]).await;
        let sign = |size: u64, root: &cordon_audit::Hash| format!("{size} {}", hex::encode(root));
        let first = store
            .checkpoint(sign, at(3))
            .await
            .expect("sign")
            .expect("new");
        assert_eq!(first.size, 3, "the publication and two runs created");
        let leaves = store.audit_leaves(3).await.expect("leaves");
        assert_eq!(first.root, hex::encode(cordon_audit::root(&leaves)));
        assert_eq!(
            store.checkpoint(sign, at(4)).await.expect("sign"),
            None,
            "nothing new to cover"
        );
        store
            .commit("r1", 1, &start_a(), at(5))
            .await
            .expect("commit");
        let second = store
            .checkpoint(sign, at(6))
            .await
            .expect("sign")
            .expect("new");
        assert_eq!(second.size, 7);
        assert_eq!(store.checkpoints().await.expect("list").len(), 2);
        // Someone edits a stored event behind Cordon's back: nothing more is signed.
        store
            .tamper_with_audit_event_for_tests(1)
            .await
            .expect("tamper");
        let mut start_r2 = start_a();
        if let Some(AttemptChange::Start {
            idempotency_key, ..
        }) = start_r2.attempts.first_mut()
        {
            *idempotency_key = "r2/a/1".into();
        }
        store
            .commit("r2", 1, &start_r2, at(7))
            .await
            .expect("commit");
        let refused = store.checkpoint(sign, at(8)).await.expect_err("tampered");
        assert!(
            matches!(refused, StorageError::AuditTampered(_)),
            "{refused}"
        );
        assert_eq!(store.checkpoints().await.expect("list").len(), 2);
    }
);
