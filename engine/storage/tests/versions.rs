//! Immutable playbook versions, on SQLite and on PostgreSQL.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use cordon_playbook::{Context, Playbook, PluginCatalog, validate};
use cordon_storage::testing::TestStore;
use cordon_storage::{NewVersion, PluginPin, PublishOutcome, StorageError, Store};

use cordon_storage::on_both_backends;

fn playbook(yaml: &str) -> Playbook {
    let catalog = PluginCatalog::default();
    let validation = validate("test.yaml", yaml.as_bytes(), &Context::new(&catalog));
    assert!(!validation.has_errors(), "{:#?}", validation.diagnostics);
    validation.into_valid().expect("valid").playbook().clone()
}

fn source(version: &str, wait: &str) -> String {
    format!(
        "cordon: v1\nname: drill\nversion: {version}\nsteps:\n  - id: settle\n    wait: {wait}\n"
    )
}

fn new_version(yaml: &str) -> NewVersion {
    let mut pins = BTreeMap::new();
    pins.insert(
        "isolate@1".to_string(),
        PluginPin {
            version: "1.0.0".into(),
            digest: None,
        },
    );
    let at = Utc
        .with_ymd_and_hms(2026, 11, 25, 3, 0, 0)
        .single()
        .expect("time");
    NewVersion::new(&playbook(yaml), yaml.to_string(), pins, at, "alice".into()).expect("canonical")
}

on_both_backends!(publish_then_read_back, |store: Store| async move {
    let new = new_version(&source("1.0.0", "30s"));
    let outcome = store.publish(new.clone()).await.expect("publish");
    let PublishOutcome::Published(stored) = outcome else {
        panic!("expected a new version: {outcome:?}")
    };
    assert_eq!(stored.digest, new.digest);
    assert!(stored.digest.starts_with("sha256:") && stored.digest.len() == 71);
    let read = store
        .version("drill", "1.0.0")
        .await
        .expect("read")
        .expect("present");
    assert_eq!(read, stored);
    assert_eq!(read.playbook, playbook(&source("1.0.0", "30s")));
    assert_eq!(read.source, source("1.0.0", "30s"));
    assert_eq!(read.plugins["isolate@1"].version, "1.0.0");
    assert_eq!(read.published_by, "alice");
    assert!(
        store
            .version("drill", "9.9.9")
            .await
            .expect("read")
            .is_none()
    );
});

on_both_backends!(
    same_content_is_idempotent_and_other_content_conflicts,
    |store: Store| async move {
        store
            .publish(new_version(&source("1.0.0", "30s")))
            .await
            .expect("publish");
        // Comments and formatting do not change the content.
        let cosmetic = format!(
            "# a comment\n{}",
            source("1.0.0", "30s").replace("wait: 30s", "wait:   30s  # pause")
        );
        let again = store
            .publish(new_version(&cosmetic))
            .await
            .expect("republish");
        assert!(
            matches!(again, PublishOutcome::AlreadyPublished(_)),
            "{again:?}"
        );

        let err = store
            .publish(new_version(&source("1.0.0", "45s")))
            .await
            .expect_err("conflict");
        assert!(matches!(err, StorageError::VersionConflict { .. }), "{err}");
        assert!(err.to_string().contains("publish it under a new version"));
        // Nothing was written: the stored content is still the first one.
        let stored = store
            .version("drill", "1.0.0")
            .await
            .expect("read")
            .expect("present");
        assert_eq!(stored.source, source("1.0.0", "30s"));
        assert_eq!(store.versions("drill").await.expect("list").len(), 1);
    }
);

on_both_backends!(
    versions_are_listed_in_semver_order,
    |store: Store| async move {
        for v in ["1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.0"] {
            store
                .publish(new_version(&source(v, "30s")))
                .await
                .expect("publish");
        }
        let listed: Vec<String> = store
            .versions("drill")
            .await
            .expect("list")
            .into_iter()
            .map(|v| v.version)
            .collect();
        assert_eq!(listed, ["0.9.0", "1.2.0-rc.1", "1.2.0", "1.10.0"]);
        assert_eq!(
            store
                .latest("drill")
                .await
                .expect("latest")
                .expect("some")
                .version,
            "1.10.0"
        );
        assert!(store.latest("nothing").await.expect("latest").is_none());
        assert_eq!(store.all_versions().await.expect("all").len(), 4);
    }
);

on_both_backends!(
    concurrent_publishers_agree_on_one_content,
    |store: Store| async move {
        let mut tasks = Vec::new();
        for i in 0..8 {
            let store = store.clone();
            let wait = if i % 2 == 0 { "30s" } else { "45s" };
            tasks.push(tokio::spawn(async move {
                store.publish(new_version(&source("2.0.0", wait))).await
            }));
        }
        let mut published = Vec::new();
        for task in tasks {
            match task.await.expect("join") {
                Ok(PublishOutcome::Published(v)) => published.push(v),
                Ok(PublishOutcome::AlreadyPublished(_))
                | Err(StorageError::VersionConflict { .. }) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(
            published.len(),
            1,
            "exactly one publisher stores the version"
        );
        let stored = store
            .version("drill", "2.0.0")
            .await
            .expect("read")
            .expect("present");
        assert_eq!(stored.digest, published[0].digest);
    }
);

#[tokio::test]
async fn sqlite_is_durable_by_default() {
    let store = TestStore::sqlite().await.expect("sqlite store");
    assert_eq!(
        store.sqlite_pragma("journal_mode").await.expect("pragma"),
        "wal"
    );
    assert_eq!(
        store.sqlite_pragma("synchronous").await.expect("pragma"),
        "2",
        "2 is FULL"
    );
    assert_eq!(
        store.sqlite_pragma("foreign_keys").await.expect("pragma"),
        "1"
    );
    assert_eq!(
        store.sqlite_pragma("busy_timeout").await.expect("pragma"),
        "10000"
    );
    store.destroy().await.expect("cleanup");
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_clear_errors() {
    let err = Store::open("mysql://localhost/x")
        .await
        .expect_err("unsupported");
    assert!(matches!(err, StorageError::UnsupportedUrl(_)), "{err}");
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let err = Store::open("postgres://cordon:secret@127.0.0.1:1/cordon")
        .await
        .expect_err("unreachable");
    assert!(matches!(err, StorageError::Unavailable { .. }), "{err}");
    assert!(err.is_transient());
    assert!(
        !err.to_string().contains("secret"),
        "no password in messages: {err}"
    );
}
