//! What the webhook tests share: the server configuration with every
//! source, the playbooks they bind, signed and bearer requests, payloads,
//! and readers of runs and audit events.

#![allow(dead_code)] // each test binary uses a part

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::server_support::{self, Answer, Server, text};

pub const AM_TOKEN: &str = "am-token-3f9c2b7e";
pub const SCANNER_SECRET: &str = "scanner-secret-81d0";

/// Every source these tests use.
pub const CONFIG: &str = "server:
  body_limit_kib: 16
users:
  root: {}
webhooks:
  alertmanager:
    format: alertmanager
    auth: {bearer: {token: am-token-3f9c2b7e}}
  grafana:
    format: grafana
    auth: {basic: {username: grafana, password: g-pass-77}}
  scanner:
    format: json
    auth: {hmac: {secret: scanner-secret-81d0}}
    mapping: {alerts: /findings, labels: /tags, fingerprint: /id, status: /state, resolved: [closed]}
  tiny:
    format: json
    auth: {bearer: {token: tiny-token}}
    body_limit_kib: 1
  flood:
    format: json
    auth: {bearer: {token: flood-token}}
    rate_limit: {rate_per_sec: 0.5, burst: 3}
  am-groups:
    format: alertmanager
    auth: {bearer: {token: groups-token}}
";

/// The follow-up a resolved Alertmanager alert starts.
pub const RESTORE: &str = "cordon: v1
name: restore-device
version: 1.0.0
inputs:
  device: {type: string}
steps:
  - id: settle
    wait: 10ms
";

/// One run per alert group.
pub const TRIAGE: &str = r#"cordon: v1
name: triage-group
version: 1.0.0
inputs:
  device: {type: string}
  site: {type: string}
triggers:
  webhooks:
    - source: am-groups
      start: per_group
      inputs: {device: '${{ alert.labels.device }}', site: '${{ alert.labels.site }}'}
steps:
  - id: hold
    wait: 10ms
"#;

/// Bound to every source: a one-second wait, no plugin needed.
pub const CONTAIN: &str = r#"cordon: v1
name: contain-device
version: 1.0.0
inputs:
  device: {type: string}
  origin: {type: string, default: manual}
triggers:
  webhooks:
    - source: alertmanager
      when: 'alert.labels.alertname == "DeviceCompromised"'
      inputs: {device: '${{ alert.labels.device }}', origin: alertmanager}
      on_resolved:
        playbook: restore-device@1.0.0
        inputs: {device: '${{ alert.labels.device }}'}
    - source: grafana
      inputs: {device: '${{ alert.labels.device }}', origin: grafana}
    - source: scanner
      inputs: {device: '${{ alert.labels.device }}', origin: scanner}
    - source: flood
      when: 'false'
      inputs: {device: none}
steps:
  - id: hold
    wait: 1s
"#;

pub async fn started() -> (Server, server_support::Api) {
    let server = Server::start_with(CONFIG);
    let token = server.token("root", "admin");
    let api = server.api(Some(&token));
    for playbook in [RESTORE, CONTAIN, TRIAGE] {
        let published = api.publish(playbook).await;
        assert!(published.status < 300, "{}", published.text);
    }
    (server, api)
}

/// POSTs `body` to `/hooks/{source}` with these headers (no Cordon token).
pub async fn hook(
    server: &Server,
    source: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}/hooks/{source}", server.url))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

pub fn bearer(token: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Bearer {token}"))]
}

/// HMAC-SHA256 (RFC 2104) over `"{ts}.{body}"`, hex.
pub fn sign(secret: &str, ts: &str, body: &[u8]) -> String {
    let mut key = [0u8; 64];
    key[..secret.len()].copy_from_slice(secret.as_bytes());
    let pad = |byte: u8| key.iter().map(|k| k ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(ts.as_bytes())
        .chain_update(b".")
        .chain_update(body)
        .finalize();
    hex::encode(
        Sha256::new()
            .chain_update(pad(0x5c))
            .chain_update(inner)
            .finalize(),
    )
}

pub fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("seconds")
}

pub fn signed(ts: i64, body: &[u8]) -> Vec<(&'static str, String)> {
    vec![
        ("x-cordon-timestamp", ts.to_string()),
        (
            "x-cordon-signature",
            format!("sha256={}", sign(SCANNER_SECRET, &ts.to_string(), body)),
        ),
    ]
}

/// An Alertmanager v4 payload of one alert.
pub fn am_payload(status: &str, device: &str, alertname: &str) -> Vec<u8> {
    let ends = if status == "firing" {
        "0001-01-01T00:00:00Z"
    } else {
        "2026-11-25T10:05:00Z"
    };
    json!({
        "receiver": "cordon", "status": status, "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\", device=\"{device}\"}}"),
        "truncatedAlerts": 0,
        "groupLabels": {"alertname": alertname, "device": device},
        "commonLabels": {"alertname": alertname, "device": device},
        "commonAnnotations": {}, "externalURL": "http://127.0.0.1:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "device": device, "severity": "critical"},
            "annotations": {"summary": "unexpected outbound traffic"},
            "startsAt": "2026-11-25T10:00:00Z", "endsAt": ends,
            "generatorURL": "http://prometheus/graph",
            "fingerprint": format!("fp-{device}"),
        }],
    })
    .to_string()
    .into_bytes()
}

pub async fn runs(api: &server_support::Api) -> Vec<Value> {
    let list = api.get("/api/v1/runs?limit=1000").await;
    assert_eq!(list.status, 200, "{}", list.text);
    list.body.as_array().cloned().unwrap_or_default()
}

/// The audit events of a source (`webhook:NAME`), read with `cordon audit query`.
pub fn events(server: &Server, source: &str) -> Vec<Value> {
    let out = server.cordon(&[
        "audit",
        "query",
        "--actor",
        &format!("webhook:{source}"),
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("events")
}

pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect()
}
