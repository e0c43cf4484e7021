//! Webhook deliveries and spent signatures on SQLite and PostgreSQL: a
//! delivery is new once, its repeats are counted and audited; a delivery
//! that starts a run commits with it or not at all; a signature is spent once inside its window, and
//! forgotten after it.

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use cordon_playbook::{Context, PluginCatalog, validate};
use cordon_storage::{
    Concurrency, DeliveryOutcome, EventFilter, NewDelivery, NewEvent, NewRun, NewVersion,
    StorageError, Store, StoredState, on_both_backends,
};
use serde_json::json;

fn at(second: i64) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0)
        .single()
        .expect("time")
        + Duration::seconds(second)
}

fn event(kind: &str) -> NewEvent {
    NewEvent {
        actor: "webhook:alertmanager".into(),
        kind: kind.into(),
        run: None,
        step: None,
        device: Some("plc-7".into()),
        data: json!({"source": "alertmanager"}),
    }
}

fn delivery(key: &str) -> NewDelivery {
    NewDelivery {
        source: "alertmanager".into(),
        binding: "contain#0".into(),
        dedup_key: key.into(),
        status: "firing".into(),
        run_id: Some(format!("run-{key}")),
        accepted: event("webhook.accepted"),
        repeated: event("webhook.deduplicated"),
    }
}

async fn kinds(store: &Store) -> Vec<String> {
    store
        .audit_events(&EventFilter::default())
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event.kind)
        .collect()
}

on_both_backends!(
    a_delivery_is_new_once_and_its_repeats_name_its_run,
    |store: Store| async move {
        let first = delivery("fp-1@t0");
        assert_eq!(
            store
                .record_webhook_delivery(&first, at(0))
                .await
                .expect("record"),
            DeliveryOutcome::New
        );
        for s in 1..=2 {
            assert_eq!(
                store
                    .record_webhook_delivery(&first, at(s))
                    .await
                    .expect("repeat"),
                DeliveryOutcome::Repeat {
                    run_id: Some("run-fp-1@t0".into())
                }
            );
        }
        let mut resolved = delivery("fp-1@t0");
        resolved.status = "resolved".into();
        resolved.run_id = None;
        assert_eq!(
            store
                .record_webhook_delivery(&resolved, at(3))
                .await
                .expect("resolved"),
            DeliveryOutcome::New,
            "the resolution is its own delivery"
        );
        let listed = store
            .webhook_deliveries("alertmanager", 10)
            .await
            .expect("list");
        assert_eq!(listed.len(), 2);
        let firing = listed
            .iter()
            .find(|d| d.status == "firing")
            .expect("firing");
        assert_eq!(firing.repeats, 2);
        assert_eq!(
            kinds(&store).await,
            [
                "webhook.accepted",
                "webhook.deduplicated",
                "webhook.deduplicated",
                "webhook.accepted"
            ]
        );
        let events = store
            .audit_events(&EventFilter::default())
            .await
            .expect("events");
        assert_eq!(
            events[1].event.run.as_deref(),
            Some("run-fp-1@t0"),
            "a repeat names the run the first delivery started"
        );
    }
);

on_both_backends!(
    a_signature_is_spent_once_inside_its_window,
    |store: Store| async move {
        assert!(
            store
                .spend_webhook_signature("scanner", "ab12", at(300), at(0))
                .await
                .expect("spend")
        );
        assert!(
            !store
                .spend_webhook_signature("scanner", "ab12", at(300), at(10))
                .await
                .expect("replay")
        );
        assert!(
            store
                .spend_webhook_signature("other", "ab12", at(300), at(10))
                .await
                .expect("another source"),
            "spent per source"
        );
        // Past its window it is forgotten (the HMAC check refuses it as stale anyway).
        assert!(
            store
                .spend_webhook_signature("scanner", "ab12", at(900), at(301))
                .await
                .expect("after the window")
        );
    }
);

async fn publish(store: &Store) {
    let yaml = "cordon: v1\nname: contain\nversion: 1.0.0\nsteps:\n  - id: hold\n    wait: 1s\n";
    let catalog = PluginCatalog::default();
    let valid = validate("x.yaml", yaml.as_bytes(), &Context::new(&catalog))
        .into_valid()
        .expect("valid");
    let new = NewVersion::new(
        valid.playbook(),
        yaml.into(),
        BTreeMap::new(),
        at(0),
        "alice".into(),
    )
    .expect("version");
    store.publish(new).await.expect("publish");
}

fn stored(status: &str) -> StoredState {
    StoredState {
        status: status.into(),
        state: json!({"state": status}),
    }
}

fn new_run(id: &str, concurrency: Option<Concurrency>) -> NewRun {
    NewRun {
        id: id.into(),
        playbook: "contain".into(),
        version: "1.0.0".into(),
        inputs: BTreeMap::new(),
        trigger: json!({"kind": "webhook", "source": "alertmanager"}),
        dry_run: false,
        drill: false,
        state: stored("queued"),
        steps: vec![("hold".into(), stored("pending"))],
        outputs: BTreeMap::new(),
        now: at(1),
        concurrency,
        secret_inputs: vec![],
    }
}

on_both_backends!(
    a_delivery_and_its_run_commit_together_or_not_at_all,
    |store: Store| async move {
        publish(&store).await;
        let first = delivery("fp-9@t0");
        assert_eq!(
            store
                .create_run_for_delivery(new_run("run-fp-9@t0", None), &first)
                .await
                .expect("create"),
            DeliveryOutcome::New
        );
        assert!(store.run("run-fp-9@t0").await.expect("read").is_some());
        assert_eq!(
            store
                .create_run_for_delivery(new_run("run-fp-9@t0", None), &first)
                .await
                .expect("repeat"),
            DeliveryOutcome::Repeat {
                run_id: Some("run-fp-9@t0".into())
            },
            "a repeat creates nothing"
        );
        assert_eq!(
            kinds(&store).await,
            [
                "playbook.published",
                "webhook.accepted",
                "run.created",
                "webhook.deduplicated"
            ]
        );

        // Refused inside the transaction (the limit says reject): no delivery either.
        let limit = || {
            Some(Concurrency {
                key: "contain".into(),
                limit: 1,
                reject: true,
            })
        };
        let second = delivery("fp-10@t0");
        assert_eq!(
            store
                .create_run_for_delivery(new_run("run-a", limit()), &delivery("fp-11@t0"))
                .await
                .expect("under the limit"),
            DeliveryOutcome::New
        );
        let refused = store
            .create_run_for_delivery(new_run("run-b", limit()), &second)
            .await;
        assert!(
            matches!(refused, Err(StorageError::AtCapacity { .. })),
            "{refused:?}"
        );
        assert!(store.run("run-b").await.expect("read").is_none());
        let keys: Vec<String> = store
            .webhook_deliveries("alertmanager", 10)
            .await
            .expect("list")
            .into_iter()
            .map(|d| d.dedup_key)
            .collect();
        assert!(!keys.contains(&"fp-10@t0".to_string()), "{keys:?}");
    }
);
