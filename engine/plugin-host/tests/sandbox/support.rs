//! Shared set-up: signed copies of the built components, sandboxes, calls.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cordon_plugin_host::signing::{self, Manifest, SigningKey};
use cordon_plugin_host::{
    Grants, Invocation, Limits, LoadedPlugin, MemoryFloors, PluginFile, Sandbox, SandboxConfig,
    Services,
};
use serde_json::Value;

/// The version every fixture crate has (the plugin workspace's).
pub const VERSION: &str = "0.1.0";

/// A built component in `plugins/dist/`.
pub fn dist(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run plugins/build.sh (tests/run does)",
        path.display()
    );
    path
}

/// The key the tests sign with, and trust.
pub fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_bytes(&[42; 32]))
}

/// A manifest for `bytes` with sensible defaults.
pub fn manifest(name: &str, bytes: &[u8], capabilities: &[&str]) -> Manifest {
    Manifest {
        name: name.into(),
        version: VERSION.into(),
        release_counter: 1,
        digest: signing::digest(bytes),
        capabilities: capabilities.iter().map(|c| c.to_string()).collect(),
        expires: Utc::now() + chrono::Duration::days(30),
    }
}

/// The component `name` as a file signed with `manifest` (changed by `edit`).
pub fn signed(name: &str, capabilities: &[&str], edit: impl FnOnce(&mut Manifest)) -> PluginFile {
    let path = dist(name);
    let bytes = std::fs::read(&path).expect("component");
    let mut manifest = manifest(name, &bytes, capabilities);
    edit(&mut manifest);
    PluginFile {
        path,
        signature: Some(signing::sign(manifest, key())),
        bytes,
    }
}

/// One compiled-code cache per test binary: each component compiles once.
fn cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("tempdir"))
        .path()
        .to_path_buf()
}

/// Limits for tests: a short timeout, the default memory limit.
pub fn limits() -> Limits {
    Limits {
        timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// A sandbox trusting the test key, with these limits and grants.
pub fn sandbox(limits: Limits, grants: Grants) -> Sandbox {
    Sandbox::new(SandboxConfig {
        limits,
        cache_dir: Some(cache_dir()),
        max_instances: 16,
        trusted_keys: signing::TrustedKeys::new(vec![key().verifying_key()]),
        grants,
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

/// Loads a signed component.
pub async fn load(sandbox: &Sandbox, name: &str, capabilities: &[&str]) -> LoadedPlugin {
    let file = signed(name, capabilities, |_| {});
    sandbox
        .load(&file, None, &MemoryFloors::default())
        .await
        .unwrap_or_else(|e| panic!("{name} did not load: {e}"))
}

/// A call with this input.
pub fn invocation(input: Value) -> Invocation {
    Invocation {
        run: "run-1".into(),
        step: "step".into(),
        attempt: 1,
        key: "run-1/step/1".into(),
        dry_run: false,
        input,
        services: Services::default(),
    }
}

/// Fixed instant helpers.
pub fn past() -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(1)
}
