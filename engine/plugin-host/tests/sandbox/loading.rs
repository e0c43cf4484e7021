//! Loading: verification before compilation, the compiled cache, imports
//! checked against grants before any code runs, describe.

use cordon_plugin_host::signing::{self, SigningKey};
use cordon_plugin_host::{CacheOutcome, Capability, Grants, LoadError, MemoryFloors, PluginFile};
use serde_json::json;

use crate::support::{dist, invocation, limits, load, past, sandbox, signed};

async fn refusal(file: &PluginFile, pin: Option<&str>, floors: &MemoryFloors) -> &'static str {
    let sandbox = sandbox(limits(), Grants::none());
    match sandbox.load(file, pin, floors).await {
        Ok(_) => "loaded",
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_plugin_loads_describes_itself_and_runs() {
    let sandbox = sandbox(limits(), Grants::none());
    let noop = load(&sandbox, "noop", &[]).await;
    assert_eq!(noop.descriptor.name, "noop");
    assert!(noop.descriptor.compensable);
    assert_eq!(noop.descriptor.input_schema["type"], "object");
    let outcome = sandbox
        .execute(&noop, invocation(json!({"message": "hi"})))
        .await;
    assert_eq!(outcome.result, Ok(json!({"message": "hi"})));
    let undone = sandbox
        .compensate(
            &noop,
            invocation(json!({"message": "hi"})),
            json!({"message": "hi"}),
        )
        .await;
    assert_eq!(undone.result, Ok(serde_json::Value::Null));
}

/// `describe` runs with WASI linked (only Cordon's imports trap), also for
/// WASI imports of another patch version than the host's: a component whose
/// schemas use a `HashMap` seeds std's hasher through
/// `wasi:random/insecure-seed@0.2.6`.
#[tokio::test(flavor = "multi_thread")]
async fn a_describe_that_seeds_a_hasher_loads() {
    let sandbox = sandbox(limits(), Grants::none());
    let seeded = load(&sandbox, "fixture-seeded-describe", &[]).await;
    assert_eq!(seeded.descriptor.name, "fixture-seeded-describe");
    assert_eq!(
        seeded.descriptor.input_schema["properties"]["message"]["x-kinds"],
        1
    );
    let outcome = sandbox
        .execute(&seeded, invocation(json!({"message": "hi"})))
        .await;
    assert_eq!(outcome.result, Ok(json!({"message": "hi"})));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signature_problem_is_refused_with_its_own_code() {
    let floors = MemoryFloors::default();
    let mut unsigned = signed("noop", &[], |_| {});
    unsigned.signature = None;
    assert_eq!(refusal(&unsigned, None, &floors).await, "plugin.unsigned");

    let mut wrong_key = signed("noop", &[], |_| {});
    let stranger = SigningKey::from_bytes(&[9; 32]);
    wrong_key.signature = Some(signing::sign(
        wrong_key.signature.clone().expect("sig").manifest,
        &stranger,
    ));
    assert_eq!(
        refusal(&wrong_key, None, &floors).await,
        "plugin.untrusted_key"
    );

    let mut tampered = signed("noop", &[], |_| {});
    let middle = tampered.bytes.len() / 2;
    tampered.bytes[middle] ^= 0x01;
    assert_eq!(
        refusal(&tampered, None, &floors).await,
        "plugin.digest_mismatch"
    );

    let expired = signed("noop", &[], |m| m.expires = past());
    assert_eq!(refusal(&expired, None, &floors).await, "plugin.expired");

    let pinned = signed("noop", &[], |_| {});
    let other = signing::digest(b"another component");
    assert_eq!(
        refusal(&pinned, Some(&other), &floors).await,
        "plugin.pin_mismatch"
    );
    let own = pinned.signature.clone().expect("sig").manifest.digest;
    assert_eq!(refusal(&pinned, Some(&own), &floors).await, "loaded");

    // Release 5 accepted: release 4 of the same plugin is a rollback, 5 is fine.
    let newer = signed("noop", &[], |m| m.release_counter = 5);
    assert_eq!(refusal(&newer, None, &floors).await, "loaded");
    let older = signed("noop", &[], |m| m.release_counter = 4);
    assert_eq!(refusal(&older, None, &floors).await, "plugin.rolled_back");
    assert_eq!(refusal(&newer, None, &floors).await, "loaded");

    // A signed manifest naming another plugin cannot pass for it.
    let impostor = signed("noop", &[], |m| m.name = "isolate".into());
    assert_eq!(
        refusal(&impostor, None, &MemoryFloors::default()).await,
        "plugin.manifest_mismatch"
    );
    let more_caps = signed("noop", &["mqtt:fleet-broker"], |_| {});
    assert_eq!(
        refusal(&more_caps, None, &MemoryFloors::default()).await,
        "plugin.manifest_mismatch"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_comes_before_compilation() {
    // Garbage that is not WebAssembly: unsigned, it is refused as unsigned
    // (never handed to the compiler); signed, only then does compilation fail.
    let garbage = b"\0asm not really a component".to_vec();
    let path = dist("noop").with_file_name("garbage.wasm");
    let mut file = PluginFile {
        path,
        bytes: garbage.clone(),
        signature: None,
    };
    assert_eq!(
        refusal(&file, None, &MemoryFloors::default()).await,
        "plugin.unsigned"
    );
    let manifest = crate::support::manifest("garbage", &garbage, &[]);
    file.signature = Some(signing::sign(manifest, crate::support::key()));
    assert_eq!(
        refusal(&file, None, &MemoryFloors::default()).await,
        "plugin.compile"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_components_are_refused_before_reading() {
    let path = dist("noop");
    let size = std::fs::metadata(&path).expect("meta").len();
    let refused = PluginFile::read(&path, size - 1).expect_err("too large");
    assert_eq!(refused.code(), "plugin.too_large");
    assert!(PluginFile::read(&path, size).is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn ungranted_imports_fail_to_load_naming_what_was_asked_for() {
    // Declares http:fleet-ca; the operator grants nothing.
    let file = signed("fixture-ungranted-import", &["http:fleet-ca"], |_| {});
    let sandbox = sandbox(limits(), Grants::none());
    let refused = sandbox.load(&file, None, &MemoryFloors::default()).await;
    match refused {
        Err(LoadError::Denied(imports)) => {
            assert_eq!(imports.len(), 1, "{imports:?}");
            assert!(
                imports[0].starts_with("cordon:plugin/http@0.1.0"),
                "{imports:?}"
            );
            assert!(imports[0].contains("not granted"), "{imports:?}");
        }
        other => panic!("expected denied, got {other:?}"),
    }
    // Granted, it loads (and its import is linked).
    let grants = Grants::none().grant(
        "fixture-ungranted-import",
        "http:fleet-ca".parse().expect("cap"),
    );
    let sandbox = crate::support::sandbox(limits(), grants);
    let loaded = sandbox
        .load(&file, None, &MemoryFloors::default())
        .await
        .expect("loads when granted");
    assert_eq!(
        loaded.grants.iter().cloned().collect::<Vec<_>>(),
        [Capability::Http("fleet-ca".into())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filesystem_and_socket_imports_are_refused_at_load() {
    let sandbox = sandbox(limits(), Grants::none());
    for (name, interface) in [
        ("fixture-read-file", "wasi:filesystem/"),
        ("fixture-open-socket", "wasi:sockets/"),
    ] {
        let file = signed(name, &[], |_| {});
        match sandbox.load(&file, None, &MemoryFloors::default()).await {
            Err(LoadError::Denied(imports)) => {
                assert!(
                    imports.iter().all(|i| i.starts_with(interface)),
                    "{name}: {imports:?}"
                );
                assert!(!imports.is_empty());
            }
            other => panic!("{name}: expected denied, got {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_components_are_cached_and_corrupt_entries_recompiled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = || cordon_plugin_host::SandboxConfig {
        limits: limits(),
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 4,
        trusted_keys: signing::TrustedKeys::new(vec![crate::support::key().verifying_key()]),
        ..Default::default()
    };
    let file = signed("noop", &[], |_| {});
    let load = |sandbox: cordon_plugin_host::Sandbox| {
        let file = file.clone();
        async move {
            let plugin = sandbox
                .load(&file, None, &MemoryFloors::default())
                .await
                .expect("load");
            let ran = sandbox.execute(&plugin, invocation(json!({}))).await.result;
            assert_eq!(ran, Ok(json!({})));
            plugin.cache
        }
    };
    let sandbox = || cordon_plugin_host::Sandbox::new(config()).expect("sandbox");
    assert_eq!(load(sandbox()).await, CacheOutcome::Stored);
    // A restart (a new engine) does not recompile.
    assert_eq!(load(sandbox()).await, CacheOutcome::Hit);
    // Flip one byte of the entry: refused, recompiled, rewritten.
    let entry = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .expect("a cache entry");
    let mut bytes = std::fs::read(&entry).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&entry, &bytes).expect("write");
    assert_eq!(load(sandbox()).await, CacheOutcome::Replaced);
    assert_eq!(load(sandbox()).await, CacheOutcome::Hit);
    // Truncated to nothing: the same.
    std::fs::write(&entry, b"").expect("truncate");
    assert_eq!(load(sandbox()).await, CacheOutcome::Replaced);
}
