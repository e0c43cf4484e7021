//! `cordon run`, `runs`, `runs show`, `cancel`, `pause`, `resume`, `rerun`
//! against an embedded SQLite file, as a user types them.

mod cli_support;

use cli_support::{Scratch, text};

const TIMER: &str = "cordon: v1
name: timer
version: 1.0.0
steps:
  - id: first
    wait: 100ms
  - id: second
    wait: 100ms
    needs: [first]
";

const CONTAIN: &str = "cordon: v1
name: contain
version: 1.0.0
inputs:
  device: {type: device}
  retries: {type: integer, default: 1}
steps:
  - id: probe
    uses: check-health@1
    with: {device: \"${{ inputs.device }}\"}
";

#[test]
fn a_waited_run_shows_its_steps_and_exits_with_its_outcome() {
    let s = Scratch::new();
    s.publish("timer.yaml", TIMER);
    let out = s.cordon(&["run", "timer", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    let progress = text(&out.stderr);
    assert!(
        progress.contains("first") && progress.contains("waiting on timer"),
        "{progress}"
    );
    assert!(
        progress.contains(&format!("run {id} succeeded")),
        "{progress}"
    );

    let listed = s.cordon(&["runs", "--state", "succeeded"]);
    assert!(text(&listed.stdout).contains(&id));
    let none = s.cordon(&["runs", "--state", "failed"]);
    assert!(!text(&none.stdout).contains(&id));
    let shown = s.cordon(&["runs", "show", &id]);
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("timer@1.0.0") && shown.contains("second") && shown.contains("succeeded"),
        "{shown}"
    );
}

#[test]
fn a_plugin_step_fails_honestly_without_its_component() {
    let s = Scratch::new();
    s.publish("contain.yaml", CONTAIN);
    let out = s.cordon(&["run", "contain@1.0.0", "--input", "device=plc-7", "--wait"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed run exits 1: {}",
        text(&out.stderr)
    );
    let id = text(&out.stdout).trim().to_string();
    let shown = s.cordon(&["runs", "show", &id, "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["inputs"]["device"], "plc-7");
    assert_eq!(run["inputs"]["retries"], 1, "defaults are filled in");
    let attempt = &run["attempts"][0];
    assert_eq!(attempt["idempotency_key"], format!("{id}/probe/1"));
    assert_eq!(attempt["state"]["error"]["kind"], "unavailable");
    assert!(
        attempt["state"]["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("no signed plugin component is loaded"),
        "{attempt}"
    );
}

#[test]
fn refused_starts_write_nothing() {
    let s = Scratch::new();
    s.publish("contain.yaml", CONTAIN);
    let unknown = s.cordon(&["run", "contain@9.9.9", "--input", "device=x"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        text(&unknown.stderr).contains("contain@9.9.9 is not published"),
        "{}",
        text(&unknown.stderr)
    );
    let bad = s.cordon(&[
        "run",
        "contain",
        "--input",
        "retries=many",
        "--input",
        "colour=red",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = text(&bad.stderr);
    assert!(err.contains("input `device` is required"), "{err}");
    assert!(err.contains("input `retries` must be"), "{err}");
    assert!(err.contains("no input `colour`"), "{err}");
    let malformed = s.cordon(&["run", "contain", "--input", "device"]);
    assert_eq!(malformed.status.code(), Some(2));
    let runs = s.cordon(&["runs", "--json"]);
    assert_eq!(text(&runs.stdout).trim(), "[]", "nothing was written");
    let missing = s.cordon(&["runs", "show", "no-such-run"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no run `no-such-run`"));
}

#[test]
fn cancel_pause_resume_and_rerun() {
    let s = Scratch::new();
    s.publish("timer.yaml", TIMER);
    // Queued, never driven: cancelling it ends it at once.
    let queued = s.cordon(&["run", "timer"]);
    let id = text(&queued.stdout).trim().to_string();
    assert!(text(&queued.stderr).contains("queued"));
    let cancel = s.cordon(&["cancel", &id]);
    assert!(cancel.status.success(), "{}", text(&cancel.stderr));
    assert_eq!(text(&cancel.stdout).trim(), "cancelled");
    let again = s.cordon(&["cancel", &id]);
    assert!(
        text(&again.stderr).contains("nothing to cancel"),
        "{}",
        text(&again.stderr)
    );
    // Pausing needs a started run; resuming a run that is not paused changes nothing.
    let pause = s.cordon(&["pause", &id]);
    assert!(
        text(&pause.stderr).contains("nothing to pause"),
        "{}",
        text(&pause.stderr)
    );

    // A finished run is rerun from a step: the steps before it are carried over.
    let done = s.cordon(&["run", "timer", "--wait"]);
    let done = text(&done.stdout).trim().to_string();
    let rerun = s.cordon(&["rerun", &done, "--from", "second", "--wait"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun.stderr));
    let new = text(&rerun.stdout).trim().to_string();
    assert_ne!(new, done);
    let shown = s.cordon(&["runs", "show", &new, "--json"]);
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(run["trigger"]["kind"], "rerun");
    assert_eq!(run["trigger"]["of"], done.as_str());
    assert_eq!(run["trigger"]["by"], "alice");
    let refused = s.cordon(&["rerun", &done, "--from", "nope"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("no step `nope`"),
        "{}",
        text(&refused.stderr)
    );
    assert!(s.path().join("c.db").exists());
}
