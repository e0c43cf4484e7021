//! `cordon serve` over real HTTP on loopback: every request authenticated
//! and authorised, bad bodies refused with nothing written, the OpenAPI
//! document, tokens kept out of logs, the inventory, and a graceful stop
//! that leaves runs resumable. (The CLI's client mode: `server_cli.rs`.)

mod server_support;

use std::time::Duration;

use serde_json::{Value, json};
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

const PROBE: &str = "cordon: v1
name: probe
version: 1.0.0
inputs:
  device: {type: string}
steps:
  - id: check
    uses: check-health@1
    with: {device: \"${{ inputs.device }}\"}
";

/// The secret of a `cordon_<id>_<secret>` token.
fn secret_of(token: &str) -> &str {
    token.rsplit('_').next().expect("secret")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_are_refused() {
    let server = Server::start();
    let nobody = server.api(None);
    let missing = nobody.get("/api/v1/runs").await;
    assert_eq!(missing.status, 401, "{}", missing.text);
    assert_eq!(missing.body["code"], "unauthenticated");
    assert!(
        missing.headers["www-authenticate"]
            .to_str()
            .expect("ascii")
            .starts_with("Bearer"),
        "{:?}",
        missing.headers
    );
    // Health, readiness and the document need no token.
    for path in ["/api/v1/healthz", "/api/v1/readyz", "/openapi.json"] {
        assert_eq!(nobody.get(path).await.status, 200, "{path}");
    }
    assert_eq!(nobody.get("/api/v1/readyz").await.body["status"], "ready");

    let alice = server.token("alice", "responder");
    let mut forged = alice.clone();
    forged.replace_range(forged.len() - 4.., "0000");
    for bad in ["nonsense", "cordon_0123456789abcdef_00", forged.as_str()] {
        let refused = server.api(Some(bad)).get("/api/v1/runs").await;
        assert_eq!(refused.status, 401, "{bad}: {}", refused.text);
        assert_eq!(refused.body["code"], "unauthenticated", "{bad}");
    }

    let short = server.token_with("alice", "viewer", &["--expires", "1s"]);
    assert_eq!(
        server.api(Some(&short)).get("/api/v1/runs").await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = server.api(Some(&short)).get("/api/v1/runs").await;
    assert_eq!(expired.status, 401);
    assert_eq!(expired.body["code"], "token_expired", "{}", expired.text);

    let revoked = server.token("alice", "viewer");
    let listed = server.cordon(&["token", "list", "--json"]);
    let tokens: Value = serde_json::from_slice(&listed.stdout).expect("json");
    let id = tokens.as_array().expect("list").last().expect("one")["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(
        !text(&listed.stdout).contains(secret_of(&revoked)),
        "the list never shows a secret"
    );
    let out = server.cordon(&["token", "revoke", &id]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let refused = server.api(Some(&revoked)).get("/api/v1/runs").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["code"], "token_revoked", "{}", refused.text);

    // A token of someone the directory does not know.
    let stranger = server.token("mallory", "admin");
    let refused = server.api(Some(&stranger)).get("/api/v1/runs").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.body["code"], "unknown_user", "{}", refused.text);

    // Valid requests leave the user in the log, never a token.
    assert_eq!(
        server.api(Some(&alice)).get("/api/v1/runs").await.status,
        200
    );
    let log = server.log();
    for token in [&alice, &short, &revoked, &stranger, &forged] {
        assert!(!log.contains(secret_of(token)), "a token reached the log");
    }
    assert!(
        log.contains("user=alice"),
        "requests are logged by user:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_decide_what_a_token_may_do() {
    let server = Server::start();
    let viewer = server.api(Some(&server.token("victor", "viewer")));
    let responder = server.api(Some(&server.token("alice", "responder")));
    let admin = server.api(Some(&server.token("root", "admin")));
    assert_eq!(admin.publish(TIMER).await.status, 201);

    let start = json!({"playbook": "timer"});
    let refused = viewer.post_json("/api/v1/runs", &start).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.body["code"], "forbidden");
    assert!(
        refused.body["message"]
            .as_str()
            .expect("message")
            .contains("`responder`"),
        "{}",
        refused.text
    );
    assert_eq!(refused.body["details"]["needed"], "responder");
    // Authorisation comes before the body is read: a bad body is still 403.
    let refused = viewer
        .post_raw("/api/v1/runs", "application/json", b"{oops".to_vec())
        .await;
    assert_eq!(refused.status, 403);
    let runs = viewer.get("/api/v1/runs").await;
    assert_eq!(runs.body, json!([]), "nothing was started");

    // A responder may not publish; an admin may manage tokens, others not.
    let refused = responder.publish(SLOW).await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.body["details"]["needed"], "admin");
    assert_eq!(responder.get("/api/v1/tokens").await.status, 403);
    let made = admin
        .post_json(
            "/api/v1/tokens",
            &json!({"user": "victor", "role": "viewer", "expires_in": "1h"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let token = made.body["token"].as_str().expect("token").to_string();
    let via_api = server.api(Some(&token));
    assert_eq!(via_api.get("/api/v1/runs").await.status, 200);
    let id = made.body["record"]["id"].as_str().expect("id");
    let revoked = admin
        .post_raw(
            &format!("/api/v1/tokens/{id}/revoke"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(revoked.body["status"], "revoked", "{}", revoked.text);
    assert_eq!(
        via_api.get("/api/v1/runs").await.body["code"],
        "token_revoked"
    );
    let listed = admin.get("/api/v1/tokens").await;
    assert!(!listed.text.contains(secret_of(&token)), "{}", listed.text);
    let unknown = admin
        .post_json("/api/v1/tokens", &json!({"user": "zed", "role": "viewer"}))
        .await;
    assert_eq!(unknown.body["code"], "invalid_request", "{}", unknown.text);

    // Every token action is audited with its actor, never with a secret.
    let out = server.cordon(&["audit", "query", "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).expect("json");
    let token_events: Vec<&Value> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("token.")))
        .collect();
    assert!(
        token_events
            .iter()
            .any(|e| e["kind"] == "token.revoked" && e["actor"] == "user:root"),
        "{token_events:?}"
    );
    assert!(!text(&out.stdout).contains(secret_of(&token)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_run_and_read_back_over_http() {
    let server = Server::start();
    let admin = server.api(Some(&server.token("root", "admin")));
    let alice = server.api(Some(&server.token("alice", "responder")));

    let published = admin.publish(TIMER).await;
    assert_eq!(published.status, 201, "{}", published.text);
    assert_eq!(published.body["created"], true);
    let again = admin.publish(TIMER).await;
    assert_eq!(again.status, 200, "the same content again changes nothing");
    assert_eq!(again.body["created"], false);
    let conflict = admin.publish(&TIMER.replace("100ms", "200ms")).await;
    assert_eq!(conflict.status, 409);
    assert_eq!(conflict.body["code"], "version_conflict");
    let invalid = admin
        .publish("cordon: v1\nname: broken\nversion: 1.0.0\nsteps:\n  - id: a\n    needs: [ghost]\n    wait: 1s\n")
        .await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    assert_eq!(invalid.body["code"], "invalid_playbook");
    let first = &invalid.body["details"][0];
    assert!(
        first["code"].is_string() && first["line"].is_u64() && first["col"].is_u64(),
        "SPEC §3.2 diagnostics: {}",
        invalid.text
    );
    let checked = alice
        .post_raw(
            "/api/v1/validate",
            "application/yaml",
            b"cordon: v1\nname: x\n".to_vec(),
        )
        .await;
    assert_eq!(checked.status, 200);
    assert!(!checked.body.as_array().expect("diagnostics").is_empty());
    assert_eq!(
        alice
            .post_raw(
                "/api/v1/validate",
                "application/yaml",
                TIMER.as_bytes().to_vec()
            )
            .await
            .body,
        json!([])
    );
    admin
        .publish(
            &TIMER
                .replace("1.0.0", "1.1.0")
                .replace("100ms\n    needs", "150ms\n    needs"),
        )
        .await;
    let list = alice.get("/api/v1/playbooks").await;
    assert_eq!(list.body[0]["name"], "timer");
    assert_eq!(list.body[0]["latest"], "1.1.0");
    let versions = alice.get("/api/v1/playbooks/timer/versions").await;
    assert_eq!(versions.body.as_array().expect("list").len(), 2);
    assert_eq!(versions.body[0]["published_by"], "root");
    let shown = alice.get("/api/v1/playbooks/timer/versions/1.0.0").await;
    assert_eq!(shown.body["source"], TIMER);
    let latest = alice.get("/api/v1/playbooks/timer/versions/latest").await;
    assert_eq!(latest.body["version"], "1.1.0");
    let diff = alice
        .get("/api/v1/playbooks/timer/diff?from=1.0.0&to=1.1.0")
        .await;
    assert_eq!(diff.body["same"], false, "{}", diff.text);
    assert!(diff.body["text"].as_str().expect("text").contains("second"));
    assert_eq!(
        alice.get("/api/v1/playbooks/nope/versions").await.body["code"],
        "unknown_playbook"
    );

    let started = alice
        .post_json(
            "/api/v1/runs",
            &json!({"playbook": "timer", "version": "1.0.0"}),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text);
    let id = started.body["id"].as_str().expect("id").to_string();
    let run = alice
        .wait_for(&id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(run["version"], "1.0.0");
    assert_eq!(run["trigger"]["by"], "alice");
    let steps: Vec<(&str, &str)> = run["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().expect("key"),
                s["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(steps, [("first", "succeeded"), ("second", "succeeded")]);
    let listed = alice.get("/api/v1/runs?state=succeeded").await;
    assert_eq!(listed.body[0]["id"], id.as_str());
    assert_eq!(
        alice.get("/api/v1/runs?state=bogus").await.body["code"],
        "invalid_query"
    );
    assert_eq!(
        alice.get("/api/v1/runs/nope").await.body["code"],
        "unknown_run"
    );

    // A plugin step without its component fails honestly, attempt by attempt.
    admin.publish(PROBE).await;
    let started = alice
        .post_json(
            "/api/v1/runs",
            &json!({"playbook": "probe", "inputs": {"device": "plc-7"}}),
        )
        .await;
    let probe = started.body["id"].as_str().expect("id").to_string();
    let run = alice
        .wait_for(&probe, "failed", Duration::from_secs(30))
        .await;
    let attempt = &run["attempts"][0];
    assert_eq!(attempt["idempotency_key"], format!("{probe}/check/1"));
    assert_eq!(attempt["state"]["error"]["kind"], "unavailable");
    let missing = alice
        .post_json("/api/v1/runs", &json!({"playbook": "probe"}))
        .await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["code"], "invalid_inputs", "{}", missing.text);

    // Rerun the failed run from its step; cancel it while it is queued or failing.
    let rerun = alice
        .post_json(
            &format!("/api/v1/runs/{probe}/rerun"),
            &json!({"from": "check"}),
        )
        .await;
    assert_eq!(rerun.status, 201, "{}", rerun.text);
    let refused = alice
        .post_json(
            &format!("/api/v1/runs/{id}/rerun"),
            &json!({"from": "ghost"}),
        )
        .await;
    assert_eq!(refused.body["code"], "refused", "{}", refused.text);

    // Who did what is in the audit log.
    let out = server.cordon(&["audit", "query", "--run", &id, "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(events[0]["kind"], "run.created");
    assert_eq!(events[0]["actor"], "user:alice");
    let out = server.cordon(&["audit", "query", "--actor", "user:root", "--json"]);
    assert!(text(&out.stdout).contains("playbook.published"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_refused_and_nothing_is_written() {
    let server = Server::start();
    let admin = server.api(Some(&server.token("root", "admin")));
    admin.publish(TIMER).await;
    let before = server.cordon(&["audit", "query", "--json"]).stdout;
    let runs = "/api/v1/runs";
    let cases: [(&str, &str, Vec<u8>, u16, &str); 7] = [
        (
            "malformed",
            "application/json",
            b"{\"playbook\": ".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "trailing",
            "application/json",
            b"{\"playbook\": \"timer\"} x".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "unknown field",
            "application/json",
            br#"{"playbook": "timer", "colour": "red"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "wrong type",
            "application/json",
            br#"{"playbook": "timer", "dry_run": "yes"}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "missing field",
            "application/json",
            br#"{"inputs": {}}"#.to_vec(),
            422,
            "invalid_body",
        ),
        (
            "content type",
            "text/plain",
            br#"{"playbook": "timer"}"#.to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "oversized",
            "application/json",
            format!(
                r#"{{"playbook": "timer", "inputs": {{"x": "{}"}}}}"#,
                "a".repeat(64 * 1024)
            )
            .into_bytes(),
            413,
            "body_too_large",
        ),
    ];
    for (what, content_type, body, status, code) in cases {
        let answer = admin.post_raw(runs, content_type, body).await;
        assert_eq!(answer.status, status, "{what}: {}", answer.text);
        assert_eq!(answer.body["code"], code, "{what}: {}", answer.text);
        assert!(answer.body["message"].is_string(), "{what}");
    }
    let wrong = admin
        .post_raw(
            runs,
            "application/json",
            br#"{"playbook": "timer", "dry_run": "yes"}"#.to_vec(),
        )
        .await;
    assert_eq!(wrong.body["details"]["path"], "dry_run", "{}", wrong.text);
    let unknown = admin
        .post_raw(
            runs,
            "application/json",
            br#"{"playbook": "timer", "colour": 1}"#.to_vec(),
        )
        .await;
    assert!(
        unknown.body["message"]
            .as_str()
            .expect("message")
            .contains("colour")
    );
    // An oversized playbook and a malformed device list are refused the same way.
    let big = admin
        .publish(&format!("{TIMER}# {}\n", "x".repeat(64 * 1024)))
        .await;
    assert_eq!(big.status, 413);
    let devices = admin
        .post_json("/api/v1/inventory", &json!({"devices": [{"id": "plc-1", "type": "plc", "site": "a", "criticality": "urgent"}]}))
        .await;
    assert_eq!(devices.status, 422);
    assert_eq!(devices.body["code"], "invalid_inventory");
    assert_eq!(devices.body["details"][0]["path"], "devices[0]");
    // Unknown routes and methods answer in the same shape.
    assert_eq!(admin.get("/api/v1/nope").await.body["code"], "not_found");
    let method = admin
        .post_raw("/api/v1/healthz", "application/json", Vec::new())
        .await;
    assert_eq!(method.status, 405);
    assert_eq!(method.body["code"], "method_not_allowed");

    assert_eq!(admin.get(runs).await.body, json!([]), "no run was created");
    assert_eq!(admin.get("/api/v1/inventory").await.body, json!([]));
    let after = server.cordon(&["audit", "query", "--json"]).stdout;
    assert_eq!(text(&before), text(&after), "nothing reached the audit log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let server = Server::start();
    let document = server.api(None).get("/openapi.json").await;
    assert_eq!(document.status, 200);
    assert!(
        document.body["openapi"]
            .as_str()
            .expect("version")
            .starts_with('3')
    );
    let paths = document.body["paths"].as_object().expect("paths");
    for path in [
        "/api/v1/healthz",
        "/api/v1/readyz",
        "/api/v1/playbooks",
        "/api/v1/playbooks/{name}/versions",
        "/api/v1/playbooks/{name}/versions/{version}",
        "/api/v1/playbooks/{name}/diff",
        "/api/v1/validate",
        "/api/v1/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/cancel",
        "/api/v1/runs/{id}/pause",
        "/api/v1/runs/{id}/resume",
        "/api/v1/runs/{id}/rerun",
        "/api/v1/inventory",
        "/api/v1/inventory/{id}",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}/revoke",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing: {:?}",
            paths.keys()
        );
    }
    assert!(paths["/api/v1/runs"]["post"].is_object());
    assert_eq!(
        document.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(document.body["components"]["schemas"]["RunView"].is_object());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inventory_over_http() {
    let server = Server::start();
    let alice = server.api(Some(&server.token("alice", "responder")));
    let devices = json!({"devices": [
        {"id": "plc-1", "type": "plc", "site": "plant-a", "tags": ["line-3"], "criticality": "high"},
        {"id": "gw-1", "type": "gateway", "site": "plant-a", "criticality": "low", "firmware": "2.4.1"},
    ]});
    let imported = alice.post_json("/api/v1/inventory", &devices).await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    assert_eq!(
        imported.body,
        json!({"imported": 2, "new": 2, "updated": 0})
    );
    let again = alice.post_json("/api/v1/inventory", &devices).await;
    assert_eq!(again.body["updated"], 2);
    let selected = alice.get("/api/v1/inventory?select=tag=line-3").await;
    assert_eq!(
        selected.body.as_array().expect("list").len(),
        1,
        "{}",
        selected.text
    );
    assert_eq!(selected.body[0]["id"], "plc-1");
    let bad = alice.get("/api/v1/inventory?select=%3D%3D").await;
    assert_eq!(bad.body["code"], "invalid_selector", "{}", bad.text);
    let one = alice.get("/api/v1/inventory/gw-1").await;
    assert_eq!(one.body["firmware"], "2.4.1");
    assert_eq!(
        alice.get("/api/v1/inventory/nope").await.body["code"],
        "unknown_device"
    );
    let out = server.cordon(&["audit", "query", "--actor", "user:alice", "--json"]);
    let events: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(events[0]["kind"], "inventory.imported");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_gracefully_and_the_next_start_resumes_every_run() {
    let mut server = Server::start();
    let admin_token = server.token("root", "admin");
    let admin = server.api(Some(&admin_token));
    assert_eq!(admin.publish(SLOW).await.status, 201);
    let started = admin
        .post_json("/api/v1/runs", &json!({"playbook": "slow"}))
        .await;
    let id = started.body["id"].as_str().expect("id").to_string();
    admin
        .wait_for(&id, "waiting", Duration::from_secs(30))
        .await;

    let status = server.stop();
    assert!(
        status.success(),
        "a graceful stop exits 0: {status:?}\n{}",
        server.log()
    );
    assert!(server.log().contains("server stopped"), "{}", server.log());
    let shown = server.cordon(&["runs", "show", &id, "--json"]);
    let run: Value = serde_json::from_slice(&shown.stdout).expect("json");
    assert_eq!(run["status"], "waiting", "the run outlives the server");

    server.restart();
    let admin = server.api(Some(&admin_token));
    let run = admin
        .wait_for(&id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(run["steps"][1]["status"], "succeeded");
}
