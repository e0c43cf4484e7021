//! The `cordon` binary as a user runs it: exit codes, output formats, help.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cordon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .current_dir(repo())
        .env_remove("CORDON_PLUGINS")
        .output()
        .expect("run cordon")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn example_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("playbooks"))
        .expect("playbooks/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            format!(
                "playbooks/{}",
                p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn examples_validate_with_exit_zero() {
    let files = example_files();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = cordon(&args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout(&out), "");
}

#[test]
fn an_invalid_fixture_exits_one_with_located_diagnostics() {
    let out = cordon(&[
        "validate",
        "tests/playbooks/invalid/001-broken-indentation.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let first = text.lines().next().expect("a diagnostic line");
    assert!(
        first.starts_with("tests/playbooks/invalid/001-broken-indentation.yaml:"),
        "{first}"
    );
    assert!(first.contains(": error[P001]: "), "{first}");
    assert!(
        text.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("  help: ")),
        "{text}"
    );
}

#[test]
fn json_format_is_one_array_of_spec_objects() {
    let out = cordon(&[
        "validate",
        "--format",
        "json",
        "tests/playbooks/invalid/001-broken-indentation.yaml",
        "playbooks/restore-device.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let items = value.as_array().expect("array");
    assert!(!items.is_empty());
    for item in items {
        let keys: Vec<&str> = item
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["code", "severity", "message", "file", "line", "col", "hint"]
        );
    }
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(cordon(&["validate"]).status.code(), Some(2), "no file");
    assert_eq!(
        cordon(&["validate", "--frmat", "json", "x.yaml"])
            .status
            .code(),
        Some(2),
        "unknown flag"
    );
    assert_eq!(
        cordon(&["validate", "does/not/exist.yaml"]).status.code(),
        Some(2),
        "missing file"
    );
    assert_eq!(
        cordon(&["graph", "playbooks/restore-device.yaml", "--format", "png"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn graph_renders_gates_and_irreversible_steps_distinctly() {
    let out = cordon(&["graph", "playbooks/isolate-compromised-device.yaml"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mermaid = stdout(&out);
    assert!(mermaid.contains("flowchart TD"));
    assert!(mermaid.contains("{{\""), "gates are hexagons:\n{mermaid}");
    assert!(
        mermaid.contains(" irreversible\n") || mermaid.contains(" irreversible"),
        "{mermaid}"
    );

    let out = cordon(&[
        "graph",
        "playbooks/isolate-compromised-device.yaml",
        "--format",
        "dot",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let dot = stdout(&out);
    assert!(dot.starts_with("digraph "));
    assert!(dot.contains("shape=hexagon"));
    assert!(dot.contains("peripheries=2"));
}

#[test]
fn graph_of_an_invalid_playbook_exits_one() {
    let out = cordon(&[
        "graph",
        "tests/playbooks/invalid/001-broken-indentation.yaml",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[P001]"));
}

#[test]
fn schema_command_prints_the_committed_schema() {
    let out = cordon(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let committed =
        std::fs::read_to_string(repo().join("schemas/playbook.schema.json")).expect("schema file");
    assert_eq!(stdout(&out), committed);
}

#[test]
fn explain_describes_a_code() {
    let out = cordon(&["explain", "g203"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("G203 — dependency cycle"));
    assert_eq!(cordon(&["explain", "Z999"]).status.code(), Some(2));
}

#[test]
fn help_speaks_to_a_responder() {
    let out = cordon(&["validate", "--help"]);
    let help = stdout(&out);
    assert!(
        help.contains("Exit status: 0 no errors, 1 errors found"),
        "{help}"
    );
    assert!(help.contains("--format"));
}

#[test]
fn stdin_and_github_annotations() {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(["validate", "--format", "github", "-"])
        .current_dir(repo())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"cordon: v1\nname: x\nversion: 1.0.0\nsteps:\n  - id: a\n    wait: 1s\n    needs: [b]\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("::error file=<stdin>,line=7,col=13,title=G202 unknown step in `needs`::step `a` needs `b`"),
        "{text}"
    );
}

/// A fresh SQLite database for one test, removed afterwards.
struct TempDb(PathBuf);

impl TempDb {
    fn new(name: &str) -> TempDb {
        let dir = std::env::temp_dir().join(format!("cordon-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDb(dir)
    }

    fn url(&self) -> String {
        format!("sqlite://{}?mode=rwc", self.0.join("cordon.db").display())
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cordon_db(db: &TempDb, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args(args)
        .current_dir(repo())
        .env("CORDON_DATABASE", db.url())
        .env("USER", "alice")
        .output()
        .expect("run cordon")
}

#[test]
fn publish_versions_show_and_diff() {
    let db = TempDb::new("publish");
    let original = "playbooks/isolate-compromised-device.yaml";
    let out = cordon_db(&db, &["publish", original]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).starts_with("published isolate-compromised-device@1.2.0 sha256:"),
        "{}",
        stdout(&out)
    );

    let out = cordon_db(&db, &["publish", original]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("unchanged: "), "{}", stdout(&out));

    // Same version, different content: refused, nothing written.
    let text = std::fs::read_to_string(repo().join(original)).expect("read");
    let changed = db.0.join("changed.yaml");
    std::fs::create_dir_all(&db.0).expect("dir");
    std::fs::write(&changed, text.replace("min: 2", "min: 3")).expect("write");
    let out = cordon_db(&db, &["publish", changed.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already published with different content")
    );

    let newer = db.0.join("newer.yaml");
    std::fs::write(
        &newer,
        text.replace("min: 2", "min: 3")
            .replace("version: 1.2.0", "version: 1.3.0"),
    )
    .expect("write");
    assert_eq!(
        cordon_db(&db, &["publish", newer.to_str().expect("utf-8")])
            .status
            .code(),
        Some(0)
    );

    let out = cordon_db(&db, &["versions", "isolate-compromised-device"]);
    let listing = stdout(&out);
    let versions: Vec<&str> = listing
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(versions, ["1.2.0", "1.3.0"], "{listing}");
    assert!(listing.contains("alice"));

    let out = cordon_db(&db, &["show", "isolate-compromised-device@1.2.0"]);
    assert_eq!(out.status.code(), Some(0));
    let shown = stdout(&out);
    assert!(
        shown.contains("# plugin:       revoke-cert@1 = 1.0.0"),
        "{shown}"
    );
    assert!(
        shown.ends_with(&text),
        "show prints the published source byte for byte"
    );

    let out = cordon_db(&db, &["diff", "isolate-compromised-device@1.2.0", "1.3.0"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "--- isolate-compromised-device@1.2.0\n+++ isolate-compromised-device@1.3.0\n~ version: \"1.2.0\" → \"1.3.0\"\n~ step approve-revoke\n    ~ approval.min: 2 → 3\n"
    );

    assert_eq!(
        cordon_db(&db, &["show", "isolate-compromised-device@9.9.9"])
            .status
            .code(),
        Some(1)
    );
    assert_eq!(
        cordon_db(&db, &["versions", "nothing-here"]).status.code(),
        Some(1)
    );
}

#[test]
fn publishing_an_invalid_playbook_writes_nothing() {
    let db = TempDb::new("invalid");
    let out = cordon_db(
        &db,
        &[
            "publish",
            "tests/playbooks/invalid/079-revoke-without-approval.yaml",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("error[A501]"));
    assert_eq!(
        cordon_db(&db, &["versions", "revoke-without-approval"])
            .status
            .code(),
        Some(1)
    );
}

#[test]
fn an_unreachable_database_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_cordon"))
        .args([
            "versions",
            "x",
            "--database",
            "postgres://cordon:pw@127.0.0.1:1/cordon",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the database at postgres://…@127.0.0.1:1/cordon"),
        "{err}"
    );
}

#[test]
fn every_invalid_fixture_fails_validation() {
    let dir = repo().join("tests/playbooks/invalid");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| {
            p.strip_prefix(repo())
                .map(|r| r.display().to_string())
                .unwrap_or_default()
        })
        .collect();
    files.sort();
    assert!(files.len() >= 40);
    for file in &files {
        let text = std::fs::read_to_string(repo().join(file)).expect("read");
        // Fixtures whose planted problems are all warnings pass plain validation
        // (a warning does not block), and fail with --strict like the rest.
        let only_warnings = ["G205", "G210", "A505", "T606"];
        let expected = text.lines().next().unwrap_or_default();
        let warnings_only = expected
            .trim_start_matches("# expect:")
            .split(',')
            .all(|c| only_warnings.contains(&c.trim()));
        let plain = cordon(&["validate", file]);
        assert_eq!(
            plain.status.code(),
            Some(if warnings_only { 0 } else { 1 }),
            "{file}"
        );
        if warnings_only {
            let strict = cordon(&["validate", "--strict", file]);
            assert_eq!(strict.status.code(), Some(1), "{file} with --strict");
        }
    }
}
