//! The audit log from the command line: every run leaves events, exports
//! verify offline with the public key alone, and any tampering — with the
//! export or with the database — is caught.

mod cli_support;

use cli_support::{Scratch, text};

const TIMER: &str = "cordon: v1
name: timer
version: 1.0.0
steps:
  - id: pause
    wait: 10ms
  - id: after
    needs: [pause]
    wait: 10ms
";

/// A scratch dir with one finished run; returns its id.
fn one_run() -> (Scratch, String) {
    let s = Scratch::new();
    s.publish("timer.yaml", TIMER);
    let run = s.cordon(&["run", "timer", "--wait"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    let id = text(&run.stdout).trim().to_string();
    let key = s.cordon(&["audit", "pubkey"]);
    assert!(key.status.success(), "{}", text(&key.stderr));
    std::fs::write(s.path().join("audit.pub"), key.stdout).expect("key");
    (s, id)
}

fn verify(s: &Scratch, file: &str) -> (Option<i32>, String) {
    let out = s.cordon(&["audit", "verify", file, "--key", "audit.pub"]);
    (out.status.code(), text(&out.stdout) + &text(&out.stderr))
}

fn export(s: &Scratch, args: &[&str], file: &str) -> String {
    let mut all = vec!["audit", "export"];
    all.extend_from_slice(args);
    let out = s.cordon(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(s.path().join(file), &out.stdout).expect("write");
    text(&out.stdout)
}

#[test]
fn a_run_is_recorded_and_its_export_verifies_offline() {
    let (s, id) = one_run();
    let query = s.cordon(&["audit", "query", "--run", &id, "--json"]);
    let events: serde_json::Value = serde_json::from_slice(&query.stdout).expect("json");
    let kinds: Vec<&str> = events
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds.first(), Some(&"run.created"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"run.succeeded"), "{kinds:?}");
    assert!(
        kinds.contains(&"timer.armed") && kinds.contains(&"step.succeeded"),
        "{kinds:?}"
    );
    assert_eq!(events[0]["actor"], "user:alice");

    export(&s, &[], "log.jsonl");
    let (code, said) = verify(&s, "log.jsonl");
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("the whole log"), "{said}");

    // One run's events, each with an inclusion proof.
    export(&s, &["--run", &id], "run.jsonl");
    let (code, said) = verify(&s, "run.jsonl");
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("inclusion proof"), "{said}");

    let proof = s.cordon(&["audit", "prove", "2"]);
    assert!(proof.status.success(), "{}", text(&proof.stderr));
    std::fs::write(s.path().join("proof.jsonl"), &proof.stdout).expect("write");
    assert_eq!(verify(&s, "proof.jsonl").0, Some(0));
}

#[test]
fn a_tampered_export_fails_verification() {
    let (s, _) = one_run();
    let log = export(&s, &[], "log.jsonl");
    let lines: Vec<&str> = log.lines().collect();
    // An event edited (its kind), then one removed.
    let edited: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replacen("\"kind\":\"", "\"kind\":\"x", 1)
            } else {
                (*l).to_string()
            }
        })
        .collect();
    std::fs::write(s.path().join("edited.jsonl"), edited.join("\n")).expect("write");
    let (code, said) = verify(&s, "edited.jsonl");
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("audit."), "{said}");
    let removed: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(s.path().join("removed.jsonl"), removed.join("\n")).expect("write");
    let (code, said) = verify(&s, "removed.jsonl");
    assert_eq!(code, Some(1), "{said}");
    // Another key does not vouch for this log.
    let other = Scratch::new();
    let key = other.cordon(&["audit", "pubkey"]);
    std::fs::write(s.path().join("audit.pub"), key.stdout).expect("key");
    assert_eq!(verify(&s, "log.jsonl").0, Some(1));
}

#[test]
fn a_database_edited_behind_cordons_back_is_never_signed_over() {
    let (s, _) = one_run();
    let db = s.path().join("c.db");
    // An attacker with the database file rewrites the first event.
    let edit = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"update audit_events set body=replace(body,'user:alice','user:mallory') where seq=0\"); c.commit()",
        ])
        .arg(&db)
        .status()
        .expect("python3");
    assert!(edit.success());
    s.publish("timer2.yaml", &TIMER.replace("name: timer", "name: timer2"));
    let run = s.cordon(&["run", "timer2", "--wait"]);
    assert!(
        text(&run.stderr).contains("no audit checkpoint signed"),
        "{}",
        text(&run.stderr)
    );
    let checkpoint = s.cordon(&["audit", "checkpoint"]);
    assert!(!checkpoint.status.success());
    assert!(
        text(&checkpoint.stderr).contains("tampered"),
        "{}",
        text(&checkpoint.stderr)
    );
}
