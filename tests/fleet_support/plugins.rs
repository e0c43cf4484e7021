//! The shipped fleet plugins, signed once per build of `plugins/dist`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Signed copies of the shipped components and the `plugins:` section of a
/// Cordon configuration (absolute paths) that trusts their key, grants each
/// exactly what it declares, and shares one compiled-component cache.
///
/// Signing and compiling six components takes most of a minute in a debug
/// build, so it happens once per build of `plugins/dist`: the signed copies
/// live in the target's temporary directory under the digest of
/// `dist/SHA256SUMS`, and every test's server reuses them and their cache.
pub fn signed_plugins() -> String {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist");
        let sums = std::fs::read(dist.join("SHA256SUMS"))
            .unwrap_or_else(|e| panic!("plugins/dist/SHA256SUMS ({e}): run plugins/build.sh"));
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            sums.hash(&mut h);
            h.finish()
        };
        let dir =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fleet-plugins-{digest:016x}"));
        if dir.join("complete").exists() {
            return dir;
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("plugins dir");
        let cordon = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
                .current_dir(&dir)
                .args(args)
                .output()
                .expect("run cordon");
            assert!(
                out.status.success(),
                "cordon {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        cordon(&["plugin", "keygen", "--out", "plugins.key"]);
        for name in PLUGINS.iter().map(|(name, _)| name) {
            let file = format!("{name}.wasm");
            std::fs::copy(dist.join(&file), dir.join(&file))
                .unwrap_or_else(|e| panic!("{file} ({e}): run plugins/build.sh"));
            cordon(&[
                "plugin",
                "sign",
                &file,
                "--key",
                "plugins.key",
                "--release",
                "1",
            ]);
        }
        // Compile every component into the shared cache now, once, rather
        // than in several servers at the same time: publishing loads them.
        std::fs::write(dir.join("warm.yaml"), plugins_section(&dir)).expect("config");
        let example =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/restore-device.yaml");
        let warm = Command::new(env!("CARGO_BIN_EXE_cordon"))
            .current_dir(&dir)
            .env(
                "CORDON_DATABASE",
                format!("sqlite://{}?mode=rwc", dir.join("warm.db").display()),
            )
            .env("CORDON_HOME", &dir)
            .args(["publish", "--config", "warm.yaml"])
            .arg(&example)
            .output()
            .expect("run cordon publish");
        assert!(
            warm.status.success(),
            "warming the cache: {}",
            String::from_utf8_lossy(&warm.stderr)
        );
        std::fs::write(dir.join("complete"), "").expect("marker");
        dir
    });
    plugins_section(dir)
}

fn plugins_section(dir: &Path) -> String {
    let mut yaml = format!(
        "plugins:\n  dirs: ['{dir}']\n  trusted_keys: ['{dir}/plugins.pub']\n  cache_dir: '{dir}/compiled'\n  grants:\n",
        dir = dir.display()
    );
    for (name, grants) in PLUGINS {
        yaml.push_str(&format!("    {name}: [{}]\n", grants.join(", ")));
    }
    yaml
}

/// The fleet plugins and what the operator grants each.
pub const PLUGINS: &[(&str, &[&str])] = &[
    (
        "isolate",
        &["mqtt:fleet-broker", "inventory:read", "state:run"],
    ),
    (
        "revoke-cert",
        &["http:fleet-ca", "mqtt:fleet-broker", "inventory:read"],
    ),
    (
        "rollback-firmware",
        &[
            "mqtt:fleet-broker",
            "http:fleet-ca",
            "inventory:read",
            "state:run",
        ],
    ),
    (
        "restore-device",
        &["mqtt:fleet-broker", "http:fleet-ca", "inventory:read"],
    ),
    ("wait-for", &["mqtt:fleet-broker", "inventory:read"]),
    ("check-health", &["mqtt:fleet-broker", "inventory:read"]),
];
