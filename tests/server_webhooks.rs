//! Monitoring webhooks end to end through the real server on loopback:
//! an Alertmanager v4 delivery (bearer token) starts one run with inputs
//! from its labels, its repeats start nothing — also after a restart — and
//! its resolution is recorded; forged, unsigned, stale and replayed HMAC
//! deliveries are refused (401, audited, no run); unknown sources,
//! malformed and oversized bodies get their codes; a flood is limited on
//! its own source only; Grafana and signed generic JSON payloads start
//! runs; and the real Alertmanager (Debian's, via
//! `tests/servers/alertmanager.sh`) fires, repeats and resolves an alert.

mod server_support;
mod webhook_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use server_support::text;
use webhook_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_alert_starts_one_run_its_repeats_none_even_after_a_restart() {
    let (mut server, api) = started().await;
    let firing = am_payload("firing", "plc-7", "DeviceCompromised");
    let first = hook(&server, "alertmanager", &bearer(AM_TOKEN), &firing).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_eq!(first.body["accepted"], 1, "{}", first.text);
    assert_eq!(first.body["deduplicated"], 0);
    let run = first.body["runs"][0].as_str().expect("a run").to_string();
    let shown = api.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["inputs"]["device"], "plc-7", "{}", shown.text);
    assert_eq!(shown.body["inputs"]["origin"], "alertmanager");
    assert_eq!(shown.body["trigger"]["kind"], "webhook", "{}", shown.text);
    assert_eq!(shown.body["trigger"]["fingerprint"], "fp-plc-7");
    api.wait_for(&run, "succeeded", Duration::from_secs(20))
        .await;

    let again = hook(&server, "alertmanager", &bearer(AM_TOKEN), &firing).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.body["accepted"], 0, "{}", again.text);
    assert_eq!(again.body["deduplicated"], 1);
    assert_eq!(again.body["runs"], json!([]));
    assert_eq!(again.body["existing_runs"], json!([run]));

    server.restart();
    let api = server.api(Some(&server.token("root", "admin")));
    let after = hook(&server, "alertmanager", &bearer(AM_TOKEN), &firing).await;
    assert_eq!(after.status, 202, "{}", after.text);
    assert_eq!(
        after.body["deduplicated"], 1,
        "a restart forgets nothing: {}",
        after.text
    );
    assert_eq!(runs(&api).await.len(), 1);

    // An alert the binding's `when:` does not admit starts nothing.
    let other = am_payload("firing", "plc-8", "DiskFull");
    let ignored = hook(&server, "alertmanager", &bearer(AM_TOKEN), &other).await;
    assert_eq!(ignored.status, 202, "{}", ignored.text);
    assert_eq!(ignored.body["accepted"], 0);
    assert_eq!(runs(&api).await.len(), 1);

    // Resolved: recorded, and the binding's follow-up starts, once.
    let resolved = am_payload("resolved", "plc-7", "DeviceCompromised");
    let closing = hook(&server, "alertmanager", &bearer(AM_TOKEN), &resolved).await;
    assert_eq!(closing.status, 202, "{}", closing.text);
    assert_eq!(closing.body["resolved"], 1, "{}", closing.text);
    let restore = closing.body["runs"][0]
        .as_str()
        .expect("follow-up")
        .to_string();
    let shown = api.get(&format!("/api/v1/runs/{restore}")).await;
    assert_eq!(shown.body["playbook"], "restore-device", "{}", shown.text);
    assert_eq!(shown.body["inputs"]["device"], "plc-7");
    assert_eq!(shown.body["trigger"]["status"], "resolved");
    let twice = hook(&server, "alertmanager", &bearer(AM_TOKEN), &resolved).await;
    assert_eq!(twice.body["deduplicated"], 1, "{}", twice.text);
    assert_eq!(runs(&api).await.len(), 2);

    let kinds = kinds(&events(&server, "alertmanager"));
    assert_eq!(
        kinds,
        [
            "webhook.accepted",
            "webhook.deduplicated",
            "webhook.deduplicated",
            "webhook.ignored",
            "webhook.resolved",
            "webhook.deduplicated"
        ],
        "{kinds:?}"
    );
    assert!(
        !server.log().contains(AM_TOKEN),
        "the token never reaches the log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_or_missing_credentials_are_refused_audited_and_start_nothing() {
    let (server, api) = started().await;
    let firing = am_payload("firing", "plc-1", "DeviceCompromised");
    for headers in [
        vec![],
        bearer("not-the-token"),
        vec![("authorization", "Basic Zm9vOmJhcg==".into())],
    ] {
        let refused = hook(&server, "alertmanager", &headers, &firing).await;
        assert_eq!(refused.status, 401, "{}", refused.text);
        assert_eq!(
            refused.body["code"], "webhook_unauthorized",
            "{}",
            refused.text
        );
    }
    assert!(runs(&api).await.is_empty());
    let events = events(&server, "alertmanager");
    let reasons: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["reason"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        reasons,
        [
            "missing_credentials",
            "bad_credentials",
            "missing_credentials"
        ]
    );
    assert!(kinds(&events).iter().all(|k| k == "webhook.rejected"));
    assert!(!server.log().contains("not-the-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_json_starts_a_run_and_forged_stale_unsigned_or_replayed_ones_are_refused() {
    let (server, api) = started().await;
    let body = json!({"scanner": "ids-1", "findings": [
        {"id": 4242, "state": "open", "tags": {"device": "rtu-3", "rule": "c2-beacon"}}]})
    .to_string()
    .into_bytes();
    let ts = now();
    let mut headers = signed(ts, &body);
    headers.push(("idempotency-key", "scan-0001".into()));
    let accepted = hook(&server, "scanner", &headers, &body).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.body["accepted"], 1, "{}", accepted.text);
    let run = accepted.body["runs"][0].as_str().expect("run").to_string();
    let shown = api.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.body["inputs"]["device"], "rtu-3", "{}", shown.text);

    // The very same request again: its signature is spent.
    let replayed = hook(&server, "scanner", &headers, &body).await;
    assert_eq!(replayed.status, 401, "{}", replayed.text);
    assert_eq!(replayed.body["details"]["reason"], "replayed_signature");
    // Signed anew, same idempotency key: a repeat, not a second run.
    let mut resent = signed(ts + 1, &body);
    resent.push(("idempotency-key", "scan-0001".into()));
    let repeat = hook(&server, "scanner", &resent, &body).await;
    assert_eq!(repeat.status, 202, "{}", repeat.text);
    assert_eq!(repeat.body["deduplicated"], 1, "{}", repeat.text);

    let forged = vec![
        ("x-cordon-timestamp", ts.to_string()),
        (
            "x-cordon-signature",
            sign("guessed-secret", &ts.to_string(), &body),
        ),
    ];
    let stale = signed(ts - 3600, &body);
    let tampered = signed(now(), b"{\"findings\": []}");
    for (headers, reason) in [
        (forged, "bad_signature"),
        (stale, "stale_timestamp"),
        (vec![], "missing_credentials"),
        (tampered, "bad_signature"),
    ] {
        let refused = hook(&server, "scanner", &headers, &body).await;
        assert_eq!(refused.status, 401, "{reason}: {}", refused.text);
        assert_eq!(refused.body["code"], "webhook_unauthorized");
        assert_eq!(
            refused.body["details"]["reason"], reason,
            "{}",
            refused.text
        );
    }
    // A finding without the label the binding's inputs read: refused, audited, nothing recorded.
    let unlabelled = json!({"findings": [{"id": 5, "state": "open", "tags": {"rule": "scan"}}]})
        .to_string()
        .into_bytes();
    let refused = hook(&server, "scanner", &signed(now(), &unlabelled), &unlabelled).await;
    assert_eq!(refused.status, 202, "{}", refused.text);
    assert_eq!(refused.body["accepted"], 0, "{}", refused.text);
    assert!(
        refused.body["refused"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("device"),
        "{}",
        refused.text
    );
    assert_eq!(runs(&api).await.len(), 1);
    assert!(kinds(&events(&server, "scanner")).contains(&"webhook.refused".to_string()));
    let rejected: Vec<String> = events(&server, "scanner")
        .iter()
        .filter(|e| e["kind"] == "webhook.rejected")
        .map(|e| e["data"]["reason"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        rejected,
        [
            "replayed_signature",
            "bad_signature",
            "stale_timestamp",
            "missing_credentials",
            "bad_signature"
        ]
    );
}

/// Grafana's webhook contact point, as its documentation shows it.
const GRAFANA_SAMPLE: &str = r#"{
  "receiver": "cordon",
  "status": "firing",
  "orgId": 1,
  "alerts": [{
    "status": "firing",
    "labels": {"alertname": "High memory usage", "team": "ot", "zone": "plant-a", "device": "hmi-12"},
    "annotations": {"description": "The system has high memory usage", "summary": "This alert was triggered for zone plant-a"},
    "startsAt": "2026-11-25T09:51:03.157076+02:00",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "https://grafana.example.net/alerting/1afz29v7z/edit",
    "fingerprint": "c6eadffa33fcdf37",
    "silenceURL": "https://grafana.example.net/alerting/silence/new",
    "dashboardURL": "",
    "panelURL": "",
    "values": {"B": 44.23943737541908, "C": 1}
  }],
  "groupLabels": {"alertname": "High memory usage"},
  "commonLabels": {"alertname": "High memory usage", "team": "ot", "zone": "plant-a"},
  "commonAnnotations": {},
  "externalURL": "https://grafana.example.net/",
  "version": "1",
  "groupKey": "{}:{alertname=\"High memory usage\"}",
  "truncatedAlerts": 0,
  "title": "[FIRING:1]  (High memory usage ot plant-a)",
  "state": "alerting",
  "message": "**Firing**\n\nValue: B=44.239, C=1\n"
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grafana_alert_starts_a_run_with_basic_auth() {
    let (server, api) = started().await;
    // base64("grafana:g-pass-77")
    let basic = vec![(
        "authorization",
        "Basic Z3JhZmFuYTpnLXBhc3MtNzc=".to_string(),
    )];
    let accepted = hook(&server, "grafana", &basic, GRAFANA_SAMPLE.as_bytes()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    let run = accepted.body["runs"][0].as_str().expect("run").to_string();
    let shown = api.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.body["inputs"]["device"], "hmi-12", "{}", shown.text);
    assert_eq!(shown.body["inputs"]["origin"], "grafana");
    let again = hook(&server, "grafana", &basic, GRAFANA_SAMPLE.as_bytes()).await;
    assert_eq!(again.body["deduplicated"], 1, "{}", again.text);
    let wrong = vec![("authorization", "Basic Z3JhZmFuYTp3cm9uZw==".to_string())];
    assert_eq!(
        hook(&server, "grafana", &wrong, GRAFANA_SAMPLE.as_bytes())
            .await
            .status,
        401
    );
    // Resolved, with no follow-up bound: recorded (and audited), nothing started.
    let resolved = GRAFANA_SAMPLE.replace("\"firing\"", "\"resolved\"");
    let closing = hook(&server, "grafana", &basic, resolved.as_bytes()).await;
    assert_eq!(closing.status, 202, "{}", closing.text);
    assert_eq!(closing.body["resolved"], 1, "{}", closing.text);
    assert_eq!(closing.body["runs"], json!([]));
    assert_eq!(runs(&api).await.len(), 1);
    let kinds = kinds(&events(&server, "grafana"));
    assert_eq!(
        kinds,
        [
            "webhook.accepted",
            "webhook.deduplicated",
            "webhook.rejected",
            "webhook.resolved"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_sources_malformed_and_oversized_bodies_get_their_codes() {
    let (server, api) = started().await;
    let unknown = hook(&server, "nagios", &bearer(AM_TOKEN), b"{}").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.body["code"], "unknown_webhook_source");
    for body in [
        &b"{not json"[..],
        br#"{"version": "3", "groupKey": "g", "alerts": []}"#,
        br#"{"version": "4", "groupKey": "g", "alerts": [{"status": "firing", "labels": {}}]}"#,
        br#"[1, 2]"#,
    ] {
        let malformed = hook(&server, "alertmanager", &bearer(AM_TOKEN), body).await;
        assert_eq!(malformed.status, 400, "{}", malformed.text);
        assert_eq!(
            malformed.body["code"], "invalid_webhook_payload",
            "{}",
            malformed.text
        );
    }
    let big = json!({"labels": {"device": "x".repeat(4096)}})
        .to_string()
        .into_bytes();
    let oversized = hook(&server, "tiny", &bearer("tiny-token"), &big).await;
    assert_eq!(oversized.status, 413, "{}", oversized.text);
    assert_eq!(oversized.body["code"], "body_too_large");
    assert!(runs(&api).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_limited_on_its_own_source_while_others_still_answer() {
    let (server, api) = started().await;
    let server = std::sync::Arc::new(server);
    let flood: Vec<_> = (0..12)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                let body = json!({"labels": {"n": i}}).to_string().into_bytes();
                hook(&server, "flood", &bearer("flood-token"), &body).await
            })
        })
        .collect();
    let mut limited = 0;
    for answer in flood {
        let answer = answer.await.expect("task");
        if answer.status == 429 {
            limited += 1;
            assert_eq!(
                answer.body["code"], "webhook_rate_limited",
                "{}",
                answer.text
            );
            let retry: u64 = answer.headers["retry-after"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("secs");
            assert!((1..=2).contains(&retry), "Retry-After {retry}");
        } else {
            assert_eq!(answer.status, 202, "{}", answer.text);
        }
    }
    assert_eq!(limited, 9, "a burst of 3 then 429s");
    let began = Instant::now();
    let firing = am_payload("firing", "plc-2", "DeviceCompromised");
    let other = hook(&server, "alertmanager", &bearer(AM_TOKEN), &firing).await;
    assert_eq!(other.status, 202, "{}", other.text);
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "not slowed by the flood"
    );
    assert_eq!(runs(&api).await.len(), 1);
}

/// Debian's Alertmanager on loopback, stopped by PID when dropped.
struct Alertmanager {
    dir: PathBuf,
}

fn alertmanager_sh() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers/alertmanager.sh")
}

impl Alertmanager {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("bash")
            .arg(alertmanager_sh())
            .args(args)
            .env("AM_WEBHOOK_TOKEN", AM_TOKEN)
            .output()
            .expect("alertmanager.sh");
        assert!(
            out.status.success(),
            "alertmanager.sh {args:?}: {}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let dir = self.dir.display().to_string();
        let _ = Command::new("bash")
            .arg(alertmanager_sh())
            .args(["stop", &dir])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn runs_within(api: &server_support::Api, wanted: usize, within: Duration) -> Vec<Value> {
    let began = Instant::now();
    loop {
        let list = runs(api).await;
        if list.len() >= wanted || began.elapsed() > within {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_alertmanager_fires_repeats_and_resolves_an_alert() {
    let (server, api) = started().await;
    let am = Alertmanager {
        dir: server.path().join("alertmanager"),
    };
    let dir = am.dir.display().to_string();
    let hook_url = format!("{}/hooks/alertmanager", server.url);
    let started = am.run(&["start", &dir, &hook_url]);
    assert!(started.contains("alertmanager pid="), "{started}");
    let labels = [
        "alertname=DeviceCompromised",
        "device=plc-42",
        "severity=critical",
    ];
    let fire: Vec<&str> = ["fire", dir.as_str()].into_iter().chain(labels).collect();
    am.run(&fire);
    let list = runs_within(&api, 1, Duration::from_secs(20)).await;
    assert_eq!(
        list.len(),
        1,
        "the alert started a run: {list:?}\n{}",
        server.log()
    );
    let run = list[0]["id"].as_str().expect("id").to_string();
    let shown = api.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.body["inputs"]["device"], "plc-42", "{}", shown.text);
    assert_eq!(shown.body["trigger"]["source"], "alertmanager");

    // Fired again: Alertmanager folds it into the same alert; whatever it
    // re-sends is a repeat.
    am.run(&fire);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs(&api).await.len(), 1, "no second run");

    let resolve: Vec<&str> = ["resolve", dir.as_str()]
        .into_iter()
        .chain(labels)
        .collect();
    am.run(&resolve);
    let began = Instant::now();
    loop {
        let kinds = kinds(&events(&server, "alertmanager"));
        if kinds.iter().any(|k| k == "webhook.resolved") {
            assert_eq!(
                kinds.iter().filter(|k| *k == "webhook.accepted").count(),
                1,
                "{kinds:?}"
            );
            assert!(!kinds.iter().any(|k| k == "webhook.rejected"), "{kinds:?}");
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "no resolution recorded: {kinds:?}\n{}",
            std::fs::read_to_string(am.dir.join("alertmanager.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let list = runs_within(&api, 2, Duration::from_secs(10)).await;
    assert_eq!(
        list.len(),
        2,
        "the resolution started the follow-up: {list:?}"
    );
    assert!(
        list.iter().any(|r| r["playbook"] == "restore-device"),
        "{list:?}"
    );
    drop(am);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_alerts_starts_one_run_per_group() {
    let (server, api) = started().await;
    let alert = |device: &str, site: &str| {
        json!({"status": "firing", "labels": {"alertname": "PlcDown", "device": device, "site": site},
               "annotations": {}, "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
               "generatorURL": "", "fingerprint": format!("fp-{device}")})
    };
    let group = |alerts: Vec<Value>| {
        json!({"version": "4", "groupKey": "{}:{alertname=\"PlcDown\"}", "status": "firing",
               "receiver": "cordon", "groupLabels": {"alertname": "PlcDown"}, "commonLabels": {},
               "commonAnnotations": {}, "externalURL": "", "truncatedAlerts": 0, "alerts": alerts})
        .to_string()
        .into_bytes()
    };
    let two = group(vec![alert("plc-1", "plant-a"), alert("plc-2", "plant-a")]);
    let first = hook(&server, "am-groups", &bearer("groups-token"), &two).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_eq!(
        first.body["runs"].as_array().map(Vec::len),
        Some(1),
        "{}",
        first.text
    );
    let run = first.body["runs"][0].as_str().expect("run").to_string();
    let shown = api.get(&format!("/api/v1/runs/{run}")).await;
    assert_eq!(shown.body["inputs"]["device"], "plc-1", "{}", shown.text);
    assert_eq!(
        shown.body["trigger"]["alerts"].as_array().map(Vec::len),
        Some(2)
    );
    // A third alert joins the same group episode: still one run.
    let three = group(vec![
        alert("plc-1", "plant-a"),
        alert("plc-2", "plant-a"),
        alert("plc-3", "plant-a"),
    ]);
    let grown = hook(&server, "am-groups", &bearer("groups-token"), &three).await;
    assert_eq!(grown.body["deduplicated"], 1, "{}", grown.text);
    assert_eq!(runs(&api).await.len(), 1);
}
