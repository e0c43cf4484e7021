//! The plugin author's loop and a node running signed components, as a user
//! types it: keygen, sign, inspect, publish (pinning the digest), run, dry
//! run; a tampered or rolled-back component is refused.

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::{Scratch, text};

/// The built components (`plugins/build.sh`, which tests/run calls).
fn dist(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} missing: run plugins/build.sh",
        path.display()
    );
    path
}

const ECHO: &str = "cordon: v1
name: echo
version: 1.0.0
steps:
  - id: first
    uses: noop@0
    with: {message: hello}
  - id: second
    needs: [first]
    uses: noop@0
    with: {message: '${{ steps.first.outputs.message }} again'}
";

/// A scratch dir with a key pair and signed copies of these components
/// (from `plugins/dist`) in `plugins/`.
fn signed(components: &[&str], release: &str) -> Scratch {
    let s = Scratch::new();
    let keygen = s.cordon(&["plugin", "keygen", "--out", "key"]);
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    std::fs::create_dir_all(s.path().join("plugins")).expect("dir");
    for name in components {
        let file = format!("plugins/{name}.wasm");
        std::fs::copy(dist(name), s.path().join(&file)).expect("copy");
        let sign = s.cordon(&[
            "plugin",
            "sign",
            &file,
            "--key",
            "key",
            "--release",
            release,
        ]);
        assert!(sign.status.success(), "{}", text(&sign.stderr));
        assert!(
            text(&sign.stdout).contains(&format!("signed {name}@0.1.0")),
            "{}",
            text(&sign.stdout)
        );
    }
    s
}

/// A scratch dir with a key pair and a signed copy of `noop`.
fn signed_noop(release: &str) -> Scratch {
    signed(&["noop"], release)
}

const NODE: &[&str] = &["--plugins", "plugins", "--trust", "key.pub"];

fn with_node<'a>(args: &[&'a str]) -> Vec<&'a str> {
    args.iter().copied().chain(NODE.iter().copied()).collect()
}

#[test]
fn a_signed_plugin_is_inspected_pinned_and_run() {
    let s = signed_noop("1");
    let inspect = s.cordon(&[
        "plugin",
        "inspect",
        "plugins/noop.wasm",
        "--trust",
        "key.pub",
    ]);
    let shown = text(&inspect.stdout);
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    assert!(shown.contains("noop@0.1.0"), "{shown}");
    assert!(shown.contains("valid, signed by trusted key"), "{shown}");
    assert!(shown.contains("cordon:plugin/types@0.1.0"), "{shown}");
    let untrusted = s.cordon(&["plugin", "inspect", "plugins/noop.wasm"]);
    assert!(
        text(&untrusted.stdout).contains("not checked"),
        "{}",
        text(&untrusted.stdout)
    );

    std::fs::write(s.path().join("echo.yaml"), ECHO).expect("write");
    let publish = s.cordon(&with_node(&["publish", "echo.yaml"]));
    assert!(publish.status.success(), "{}", text(&publish.stderr));
    let show = s.cordon(&["show", "echo@1.0.0"]);
    let bytes = std::fs::read(s.path().join("plugins/noop.wasm")).expect("read");
    let digest = cordon_plugin_host::signing::digest(&bytes);
    assert!(
        text(&show.stdout).contains(&digest),
        "the version pins the digest: {}",
        text(&show.stdout)
    );

    let run = s.cordon(&with_node(&["run", "echo", "--wait"]));
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    let runs = s.cordon(&["runs", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("json");
    let id = listed[0]["id"].as_str().expect("id").to_string();
    let shown = s.cordon(&["runs", "show", &id, "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    let second = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|step| step["key"] == "second")
        .expect("second");
    assert_eq!(second["outputs"]["message"], "hello again", "{run}");

    // The audit log holds each call before it ran (with the pinned digest
    // and the inputs), then what the plugin left behind.
    let audit = s.cordon(&["audit", "query", "--run", &id, "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&audit.stdout).expect("json");
    let of_kind = |kind: &str| -> Vec<serde_json::Value> {
        events
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| e["kind"] == kind)
            .cloned()
            .collect()
    };
    let calls = of_kind("attempt.call");
    assert_eq!(calls.len(), 2, "{events}");
    assert_eq!(calls[0]["data"]["action"], "noop@0");
    assert_eq!(calls[0]["data"]["pin"], digest.as_str());
    assert_eq!(calls[1]["data"]["inputs"]["message"], "hello again");
    let outcomes = of_kind("plugin.outcome");
    assert_eq!(outcomes.len(), 2, "{events}");
    assert_eq!(outcomes[0]["actor"], "plugin:noop");
    let seq = |e: &serde_json::Value| e["seq"].as_u64().expect("seq");
    assert!(
        seq(&calls[0]) < seq(&outcomes[0]),
        "the call is recorded before its outcome"
    );

    // A dry run runs the same component; its output carries the plan.
    let dry = s.cordon(&with_node(&["run", "echo", "--wait", "--dry-run"]));
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry.stderr));
}

#[test]
fn a_tampered_component_is_refused_and_the_pinned_run_fails_cleanly() {
    let s = signed_noop("1");
    std::fs::write(s.path().join("echo.yaml"), ECHO).expect("write");
    let publish = s.cordon(&with_node(&["publish", "echo.yaml"]));
    assert!(publish.status.success(), "{}", text(&publish.stderr));
    let path = s.path().join("plugins/noop.wasm");
    let mut bytes = std::fs::read(&path).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).expect("write");
    let run = s.cordon(&with_node(&["run", "echo", "--wait"]));
    let stderr = text(&run.stderr);
    assert!(stderr.contains("error[plugin.digest_mismatch]"), "{stderr}");
    assert_eq!(
        run.status.code(),
        Some(1),
        "the run fails: {}{stderr}",
        text(&run.stdout)
    );
    // Without the component, noop is not in this node's catalog: the run is
    // refused as unplannable, and no step ran.
    let runs = s.cordon(&["runs", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("json");
    let id = listed[0]["id"].as_str().expect("id").to_string();
    let shown = text(&s.cordon(&["runs", "show", &id]).stdout);
    assert!(
        shown.contains("plugin `noop` is not in the catalog"),
        "{shown}"
    );
    assert!(shown.contains("skipped"), "{shown}");
}

#[test]
fn an_older_release_is_refused_after_a_newer_one_was_accepted() {
    let s = signed_noop("5");
    std::fs::write(s.path().join("echo.yaml"), ECHO).expect("write");
    // Publishing loads the plugins against the database: release 5 is accepted.
    let publish = s.cordon(&with_node(&["publish", "echo.yaml"]));
    assert!(publish.status.success(), "{}", text(&publish.stderr));
    let resign = s.cordon(&[
        "plugin",
        "sign",
        "plugins/noop.wasm",
        "--key",
        "key",
        "--release",
        "4",
    ]);
    assert!(resign.status.success(), "{}", text(&resign.stderr));
    let run = s.cordon(&with_node(&["run", "echo", "--wait"]));
    let stderr = text(&run.stderr);
    assert!(stderr.contains("error[plugin.rolled_back]"), "{stderr}");
    assert_eq!(run.status.code(), Some(1), "{}", text(&run.stdout));
}

#[test]
fn an_unsigned_component_is_never_loaded() {
    let s = Scratch::new();
    std::fs::create_dir_all(s.path().join("plugins")).expect("dir");
    std::fs::copy(dist("noop"), s.path().join("plugins/noop.wasm")).expect("copy");
    std::fs::write(s.path().join("echo.yaml"), ECHO).expect("write");
    let validate = s.cordon(&["validate", "echo.yaml", "--plugins", "plugins"]);
    assert!(
        text(&validate.stderr).contains("error[plugin.unsigned]"),
        "{}",
        text(&validate.stderr)
    );
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy");
        }
    }
}

#[test]
fn a_new_plugin_builds_signs_and_runs() {
    let s = Scratch::new();
    // A plugin workspace of its own: the SDK and the contract, no other plugin.
    let plugins = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins");
    let ws = s.path().join("ws");
    copy_tree(&plugins.join("sdk"), &ws.join("sdk"));
    copy_tree(&plugins.join("wit"), &ws.join("wit"));
    std::fs::copy(plugins.join("Cargo.lock"), ws.join("Cargo.lock")).expect("lock");
    let manifest = std::fs::read_to_string(plugins.join("Cargo.toml")).expect("manifest");
    let manifest = manifest.replace(
        r#"members = ["sdk", "fleet-kit", "fixtures/*", "inspect", "actions/*"]"#,
        r#"members = ["sdk", "actions/*"]"#,
    );
    assert!(
        manifest.contains(r#"members = ["sdk", "actions/*"]"#),
        "the workspace's members changed"
    );
    std::fs::write(ws.join("Cargo.toml"), manifest).expect("manifest");

    let created = s.cordon(&["plugin", "new", "demo-action", "--dir", "ws"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    // Share the repository's plugin build cache: only the new crate and the SDK compile.
    let target = plugins.join("target");
    let built = s.cordon_with(
        &["plugin", "build", "--dir", "ws", "-p", "demo-action"],
        &[("CARGO_TARGET_DIR", &target)],
    );
    assert!(
        built.status.success(),
        "{}{}",
        text(&built.stdout),
        text(&built.stderr)
    );
    assert!(
        text(&built.stdout).contains("demo-action@0.1.0"),
        "{}",
        text(&built.stdout)
    );

    let keygen = s.cordon(&["plugin", "keygen", "--out", "key"]);
    assert!(keygen.status.success(), "{}", text(&keygen.stderr));
    std::fs::create_dir_all(s.path().join("plugins")).expect("dir");
    std::fs::copy(
        ws.join("dist/demo-action.wasm"),
        s.path().join("plugins/demo-action.wasm"),
    )
    .expect("copy");
    let sign = s.cordon(&[
        "plugin",
        "sign",
        "plugins/demo-action.wasm",
        "--key",
        "key",
        "--release",
        "1",
    ]);
    assert!(sign.status.success(), "{}", text(&sign.stderr));

    std::fs::write(
        s.path().join("demo.yaml"),
        "cordon: v1\nname: demo\nversion: 1.0.0\nsteps:\n  - id: act\n    uses: demo-action@0\n    with: {device: plc-1}\n",
    )
    .expect("write");
    let publish = s.cordon(&with_node(&["publish", "demo.yaml"]));
    assert!(
        publish.status.success(),
        "{}{}",
        text(&publish.stdout),
        text(&publish.stderr)
    );
    let run = s.cordon(&with_node(&["run", "demo", "--wait"]));
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
}

#[test]
fn a_dry_run_prints_its_plan_and_connects_to_nothing() {
    let s = signed(&["fixture-host-calls"], "1");
    // The "broker" is a listener that counts connections: a dry run must make none.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let config = format!(
        "plugins:\n  dirs: [plugins]\n  trusted_keys: [key.pub]\n  grants:\n    fixture-host-calls: [mqtt:fleet-broker]\n  limits: {{timeout_ms: 3000}}\nconnections:\n  fleet-broker: {{kind: mqtt, host: 127.0.0.1, port: {port}}}\n"
    );
    std::fs::write(s.path().join("cordon.yaml"), config).expect("config");
    std::fs::write(
        s.path().join("publish.yaml"),
        "cordon: v1\nname: publish\nversion: 1.0.0\nsteps:\n  - id: tell\n    uses: fixture-host-calls@0\n    with: {mode: publish-ignoring-dry-run}\n",
    )
    .expect("playbook");
    let publish = s.cordon(&["publish", "publish.yaml", "--config", "cordon.yaml"]);
    assert!(publish.status.success(), "{}", text(&publish.stderr));
    let dry = s.cordon(&[
        "run",
        "publish",
        "--dry-run",
        "--wait",
        "--config",
        "cordon.yaml",
    ]);
    let progress = text(&dry.stderr);
    assert_eq!(dry.status.code(), Some(0), "{progress}");
    assert!(progress.contains("plan (nothing was sent"), "{progress}");
    assert!(progress.contains("mqtt.publish"), "{progress}");
    assert!(
        progress.contains("fleet-broker:cordon/fixture/publish"),
        "{progress}"
    );
    let accepted = |listener: &std::net::TcpListener| {
        let mut n = 0;
        while listener.accept().is_ok() {
            n += 1;
        }
        n
    };
    assert_eq!(accepted(&listener), 0, "a dry run connected to the broker");
    // The same run for real does reach the configured address (not a
    // broker: the fixture reports the host's error as its output), so the
    // configuration was live and only the dry run held back.
    let real = s.cordon(&["run", "publish", "--wait", "--config", "cordon.yaml"]);
    assert!(real.status.code().is_some(), "{}", text(&real.stderr));
    assert!(
        accepted(&listener) >= 1,
        "the real run never tried the broker"
    );
}

#[test]
fn a_step_does_not_run_when_its_call_cannot_be_audited() {
    let s = signed_noop("1");
    std::fs::write(s.path().join("echo.yaml"), ECHO).expect("write");
    let publish = s.cordon(&with_node(&["publish", "echo.yaml"]));
    assert!(publish.status.success(), "{}", text(&publish.stderr));
    // The audit log refuses to record plugin calls (a full disk, a broken
    // table): the run may start, but no step may call its plugin.
    let sql = "create trigger refuse before insert on audit_events when NEW.kind = 'attempt.call' begin select raise(abort, 'audit log unwritable'); end;";
    let db = s.path().join("c.db");
    let broken = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(sys.argv[2]); c.commit()"])
        .arg(&db)
        .arg(sql)
        .status()
        .expect("python3");
    assert!(broken.success());
    let run = s.cordon(&with_node(&["run", "echo", "--wait"]));
    let said = text(&run.stderr);
    assert_ne!(run.status.code(), Some(0), "{said}");
    assert!(
        said.contains("audit log unwritable"),
        "the node says why: {said}"
    );
    let runs = s.cordon(&["runs", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).expect("json");
    let id = listed[0]["id"].as_str().expect("id").to_string();
    let shown = s.cordon(&["runs", "show", &id, "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(
        run["attempts"],
        serde_json::json!([]),
        "no attempt started: {run}"
    );
    let audit = text(&s.cordon(&["audit", "query", "--run", &id]).stdout);
    assert!(
        !audit.contains("plugin.outcome"),
        "the plugin never ran: {audit}"
    );
}

#[test]
fn secret_inputs_never_reach_the_audit_log_in_clear() {
    let s = signed_noop("1");
    std::fs::write(
        s.path().join("secret.yaml"),
        "cordon: v1\nname: secret\nversion: 1.0.0\ninputs:\n  token: {type: string, secret: true}\nsteps:\n  - id: echo\n    uses: noop@0\n    with: {message: 'Bearer ${{ inputs.token }}'}\n",
    )
    .expect("write");
    let publish = s.cordon(&with_node(&["publish", "secret.yaml"]));
    assert!(publish.status.success(), "{}", text(&publish.stderr));
    let run = s.cordon(&with_node(&[
        "run",
        "secret",
        "-i",
        "token=hunter2-s3cret",
        "--wait",
    ]));
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let export = s.cordon(&["audit", "export"]);
    let log = text(&export.stdout);
    assert!(
        log.contains("attempt.call") && log.contains("plugin.outcome"),
        "{log}"
    );
    assert!(
        !log.contains("hunter2-s3cret"),
        "a secret reached the audit log"
    );
    assert!(log.contains("Bearer [secret]"), "{log}");
}

/// The descriptors compiled into `cordon` (for validating without loaded
/// components) are exactly what the shipped components describe.
#[test]
fn shipped_descriptors_are_what_the_components_describe() {
    let s = Scratch::new();
    for name in [
        "isolate",
        "revoke-cert",
        "rollback-firmware",
        "restore-device",
        "wait-for",
        "check-health",
        "http-request",
    ] {
        let path = dist(name);
        let inspect = s.cordon(&["plugin", "inspect", path.to_str().expect("utf-8"), "--json"]);
        assert!(inspect.status.success(), "{}", text(&inspect.stderr));
        let described: serde_json::Value =
            serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
        let file = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../plugins/descriptors")
            .join(format!("{name}.json"));
        let shipped: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("descriptor"))
                .expect("descriptor JSON");
        assert_eq!(
            described["descriptor"], shipped,
            "{name}: regenerate plugins/descriptors/{name}.json from `cordon plugin inspect --json`"
        );
    }
}
