//! Runs and their steps, on SQLite and on PostgreSQL: created whole or not
//! at all, pinned to a digest, moved only from the revision last read.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use cordon_playbook::{Context, PluginCatalog, validate};
use cordon_storage::{NewRun, NewVersion, StorageError, Store, StoredState, on_both_backends};
use serde_json::json;

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 4, minute, 0)
        .single()
        .expect("time")
}

async fn publish(store: &Store, version: &str, wait: &str) -> String {
    let yaml = format!(
        "cordon: v1\nname: drill\nversion: {version}\nsteps:\n  - id: settle\n    wait: {wait}\n  - id: again\n    needs: [settle]\n    wait: 1s\n"
    );
    let catalog = PluginCatalog::default();
    let valid = validate("x.yaml", yaml.as_bytes(), &Context::new(&catalog))
        .into_valid()
        .expect("valid");
    let new = NewVersion::new(
        valid.playbook(),
        yaml,
        BTreeMap::new(),
        at(0),
        "alice".into(),
    )
    .expect("version");
    let digest = new.digest.clone();
    store.publish(new).await.expect("publish");
    digest
}

fn state(status: &str) -> StoredState {
    StoredState {
        status: status.into(),
        state: json!({"state": status}),
    }
}

fn new_run(id: &str, version: &str) -> NewRun {
    NewRun {
        id: id.into(),
        playbook: "drill".into(),
        version: version.into(),
        inputs: BTreeMap::from([("device".to_string(), json!("plc-7"))]),
        trigger: json!({"kind": "manual", "by": "alice"}),
        dry_run: false,
        drill: true,
        state: state("queued"),
        steps: vec![
            ("settle".into(), state("pending")),
            ("again".into(), state("pending")),
        ],
        outputs: BTreeMap::new(),
        now: at(1),
        concurrency: None,
        secret_inputs: vec![],
    }
}

on_both_backends!(
    a_run_is_created_with_its_steps_and_pinned_digest,
    |store: Store| async move {
        let digest = publish(&store, "1.0.0", "30s").await;
        let run = store
            .create_run(new_run("r1", "1.0.0"))
            .await
            .expect("create");
        assert_eq!(run.digest, digest);
        assert_eq!(run.revision, 1);
        assert_eq!(run.state, state("queued"));
        assert_eq!(run.inputs["device"], "plc-7");
        assert!(run.drill && !run.dry_run);
        let keys: Vec<&str> = run.steps.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["again", "settle"]);
        assert!(
            run.steps
                .iter()
                .all(|s| s.state == state("pending") && s.attempt == 0 && s.outputs.is_none())
        );

        // A newer version published later does not move the run.
        let newer = publish(&store, "1.1.0", "45s").await;
        assert_ne!(newer, digest);
        let again = store.run("r1").await.expect("read").expect("present");
        assert_eq!(
            (again.version.as_str(), again.digest.as_str()),
            ("1.0.0", digest.as_str())
        );
    }
);

on_both_backends!(
    a_run_is_written_whole_or_not_at_all,
    |store: Store| async move {
        // Unknown version: refused, nothing written.
        let err = store
            .create_run(new_run("r1", "9.9.9"))
            .await
            .expect_err("unpublished");
        assert!(matches!(err, StorageError::NotFound(_)), "{err}");
        publish(&store, "1.0.0", "30s").await;
        // A step list that breaks a constraint half-way: the run row goes too.
        let mut broken = new_run("r2", "1.0.0");
        broken.steps.push(("settle".into(), state("pending")));
        store.create_run(broken).await.expect_err("duplicate step");
        assert!(
            store.run("r2").await.expect("read").is_none(),
            "no half-written run"
        );
        assert!(store.runs(&[], 10).await.expect("list").is_empty());
        // The same id twice: the second is refused and the first is untouched.
        store
            .create_run(new_run("r3", "1.0.0"))
            .await
            .expect("create");
        store
            .create_run(new_run("r3", "1.0.0"))
            .await
            .expect_err("duplicate id");
        assert_eq!(store.runs(&[], 10).await.expect("list").len(), 1);
    }
);

on_both_backends!(
    transitions_need_the_revision_last_read,
    |store: Store| async move {
        publish(&store, "1.0.0", "30s").await;
        store
            .create_run(new_run("r1", "1.0.0"))
            .await
            .expect("create");
        let revision = store
            .transition_run("r1", 1, &state("running"), at(2))
            .await
            .expect("move");
        assert_eq!(revision, 2);
        // A second writer that also read revision 1 loses and changes nothing.
        let err = store
            .transition_run("r1", 1, &state("cancelled"), at(3))
            .await
            .expect_err("stale");
        assert!(
            matches!(err, StorageError::StaleRevision { revision: 1, .. }),
            "{err}"
        );
        let run = store.run("r1").await.expect("read").expect("present");
        assert_eq!(
            (run.state.status.as_str(), run.revision, run.updated_at),
            ("running", 2, at(2))
        );
        assert!(matches!(
            store
                .transition_run("nope", 1, &state("running"), at(3))
                .await,
            Err(StorageError::StaleRevision { .. })
        ));
    }
);

on_both_backends!(
    runs_are_listed_newest_first_and_by_status,
    |store: Store| async move {
        publish(&store, "1.0.0", "30s").await;
        for (i, id) in ["r1", "r2", "r3"].iter().enumerate() {
            let mut run = new_run(id, "1.0.0");
            run.now = at(u32::try_from(i).expect("small") + 1);
            store.create_run(run).await.expect("create");
        }
        store
            .transition_run("r2", 1, &state("running"), at(9))
            .await
            .expect("move");
        let ids = |rows: Vec<cordon_storage::RunSummary>| {
            rows.into_iter().map(|r| r.id).collect::<Vec<_>>()
        };
        assert_eq!(
            ids(store.runs(&[], 10).await.expect("all")),
            ["r3", "r2", "r1"]
        );
        assert_eq!(
            ids(store.runs(&["queued"], 10).await.expect("queued")),
            ["r3", "r1"]
        );
        assert_eq!(
            ids(store
                .runs(&["running", "waiting"], 10)
                .await
                .expect("active")),
            ["r2"]
        );
        assert_eq!(
            ids(store.runs(&[], 2).await.expect("limited")),
            ["r3", "r2"]
        );
    }
);
