//! Release floors and the per-run scratch store, on both backends.

use cordon_storage::{SCRATCH_ENTRIES_PER_RUN, Store, on_both_backends};

on_both_backends!(release_floors_only_rise, |store: Store| async move {
    let now = chrono::Utc::now();
    assert_eq!(store.release_floor("isolate").await.expect("read"), None);
    store
        .raise_release_floor("isolate", 5, "sha256:a", now)
        .await
        .expect("raise");
    store
        .raise_release_floor("isolate", 3, "sha256:b", now)
        .await
        .expect("no-op");
    assert_eq!(store.release_floor("isolate").await.expect("read"), Some(5));
    store
        .raise_release_floor("isolate", 7, "sha256:c", now)
        .await
        .expect("raise");
    assert_eq!(store.release_floor("isolate").await.expect("read"), Some(7));
    assert_eq!(store.release_floor("other").await.expect("read"), None);
});

on_both_backends!(
    scratch_is_per_run_and_plugin_and_bounded,
    |store: Store| async move {
        let now = chrono::Utc::now();
        store
            .scratch_set("r1", "isolate", "k", b"v1", now)
            .await
            .expect("set");
        store
            .scratch_set("r1", "isolate", "k", b"v2", now)
            .await
            .expect("replace");
        assert_eq!(
            store.scratch_get("r1", "isolate", "k").await.expect("get"),
            Some(b"v2".to_vec())
        );
        assert_eq!(
            store.scratch_get("r2", "isolate", "k").await.expect("get"),
            None
        );
        assert_eq!(
            store.scratch_get("r1", "other", "k").await.expect("get"),
            None
        );
        store
            .scratch_delete("r1", "isolate", "k")
            .await
            .expect("delete");
        store
            .scratch_delete("r1", "isolate", "k")
            .await
            .expect("delete twice");
        assert_eq!(
            store.scratch_get("r1", "isolate", "k").await.expect("get"),
            None
        );
        for i in 0..SCRATCH_ENTRIES_PER_RUN {
            store
                .scratch_set("r3", "p", &format!("k{i}"), b"x", now)
                .await
                .expect("set");
        }
        let full = store.scratch_set("r3", "p", "one-more", b"x", now).await;
        assert!(full.is_err(), "the bound holds");
        // Replacing an existing key is still allowed.
        store
            .scratch_set("r3", "p", "k0", b"y", now)
            .await
            .expect("replace");
    }
);
