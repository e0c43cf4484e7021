//! The CLI as a client of `cordon serve` (`--server`/`CORDON_SERVER`,
//! `--token`/`CORDON_TOKEN`): the same output as the embedded mode, the
//! server's refusals as `error[code]: message` with exit 2, and secret
//! inputs shown by neither.

mod server_support;

use std::time::Duration;

use serde_json::json;
use server_support::{Server, text};

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

const SLOW: &str = "cordon: v1
name: slow
version: 1.0.0
steps:
  - id: settle
    wait: 3s
  - id: after
    needs: [settle]
    wait: 10ms
";

const SECRET: &str = "cordon: v1
name: rotate
version: 1.0.0
inputs:
  device: {type: string}
  api_key: {type: string, secret: true}
steps:
  - id: settle
    wait: 10ms
";

/// The secret of a `cordon_<id>_<secret>` token.
fn secret_of(token: &str) -> &str {
    token.rsplit('_').next().expect("secret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_to_a_server() {
    let server = Server::start();
    let admin = server.api(Some(&server.token("root", "admin")));
    admin.publish(TIMER).await;
    admin.publish(SLOW).await;
    let alice = server.token("alice", "responder");
    let remote = [
        ("CORDON_SERVER", server.url.as_str()),
        ("CORDON_TOKEN", alice.as_str()),
    ];

    let out = server.cordon_with(&["run", "timer"], &remote);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let id = text(&out.stdout).trim().to_string();
    server
        .api(Some(&alice))
        .wait_for(&id, "succeeded", Duration::from_secs(30))
        .await;
    for args in [
        &["runs"][..],
        &["runs", "--json"],
        &["runs", "show", &id, "--json"],
    ] {
        let embedded = server.cordon(args);
        let through = server.cordon_with(args, &remote);
        assert!(
            through.status.success(),
            "{args:?}: {}",
            text(&through.stderr)
        );
        assert_eq!(text(&through.stdout), text(&embedded.stdout), "{args:?}");
    }

    let out = server.cordon_with(&["run", "slow"], &remote);
    let slow = text(&out.stdout).trim().to_string();
    let api = server.api(Some(&alice));
    api.wait_for(&slow, "waiting", Duration::from_secs(30))
        .await;
    let out = server.cordon_with(&["pause", &slow], &remote);
    assert_eq!(text(&out.stdout).trim(), "paused", "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("waiting -> paused"),
        "{}",
        text(&out.stderr)
    );
    // Pausing a paused run is refused, as it is without a server.
    let out = server.cordon_with(&["pause", &slow], &remote);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error[refused]: "),
        "{}",
        text(&out.stderr)
    );
    let out = server.cordon_with(&["resume", &slow], &remote);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_ne!(text(&out.stdout).trim(), "paused");
    let out = server.cordon_with(&["cancel", &slow], &remote);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Cancelling goes by way of compensating (nothing to undo here).
    let said = text(&out.stdout);
    assert!(
        ["cancelled", "compensating"].contains(&said.trim()),
        "{said}"
    );
    assert!(
        text(&out.stderr).contains(&format!("run {slow}: ")),
        "{}",
        text(&out.stderr)
    );
    server
        .api(Some(&alice))
        .wait_for(&slow, "cancelled", Duration::from_secs(30))
        .await;

    // Refusals print the server's code and exit 2.
    let viewer = server.token("victor", "viewer");
    let out = server.cordon_with(
        &["run", "timer"],
        &[
            ("CORDON_SERVER", server.url.as_str()),
            ("CORDON_TOKEN", viewer.as_str()),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("error[forbidden]: "),
        "{}",
        text(&out.stderr)
    );
    let out = server.cordon_with(&["runs", "show", "nope"], &remote);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error[unknown_run]"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cordon_with(&["run", "timer", "-i", "x=1"], &remote);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("error[invalid_inputs]"),
        "{}",
        text(&out.stderr)
    );
    let out = server.cordon_with(&["runs"], &[("CORDON_SERVER", server.url.as_str())]);
    assert_eq!(out.status.code(), Some(2), "a server without a token");
    assert!(text(&out.stderr).contains("needs a token"));
    let out = server.cordon_with(
        &["runs"],
        &[
            ("CORDON_SERVER", "http://127.0.0.1:9"),
            ("CORDON_TOKEN", alice.as_str()),
        ],
    );
    assert_eq!(out.status.code(), Some(2), "an unreachable server");
    assert!(
        !text(&out.stderr).contains(secret_of(&alice)),
        "no token in messages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_inputs_never_appear_in_responses() {
    let server = Server::start();
    let admin = server.api(Some(&server.token("root", "admin")));
    let alice_token = server.token("alice", "responder");
    let alice = server.api(Some(&alice_token));
    admin.publish(SECRET).await;
    let secret = "hunter2-s3cr3t-value";
    let started = alice
        .post_json(
            "/api/v1/runs",
            &json!({"playbook": "rotate", "inputs": {"device": "plc-7", "api_key": secret}}),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    assert!(!started.text.contains(secret));
    let id = started.body["id"].as_str().expect("id").to_string();
    let run = alice
        .wait_for(&id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(run["inputs"]["api_key"], "[secret]");
    assert_eq!(run["inputs"]["device"], "plc-7");
    for path in [format!("/api/v1/runs/{id}"), "/api/v1/runs".to_string()] {
        assert!(!alice.get(&path).await.text.contains(secret), "{path}");
    }
    // The CLI shows it the same way, embedded or through the server.
    let embedded = server.cordon(&["runs", "show", &id]);
    assert!(embedded.status.success(), "{}", text(&embedded.stderr));
    assert!(!text(&embedded.stdout).contains(secret));
    let remote = server.cordon_with(
        &["runs", "show", &id],
        &[
            ("CORDON_SERVER", &server.url),
            ("CORDON_TOKEN", &alice_token),
        ],
    );
    assert!(remote.status.success(), "{}", text(&remote.stderr));
    assert_eq!(text(&remote.stdout), text(&embedded.stdout));
    assert!(!server.log().contains(secret), "the server never logs it");
}
