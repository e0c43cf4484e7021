//! Webhook benchmark: an Alertmanager v4 delivery received by the server's
//! router (in process, bearer-authenticated) → the delivery and its run
//! committed together → the run's first step durably started (the engine's
//! first change set, which starts the `wait` step and arms its timer, is
//! committed). SQLite with full durability (`synchronous=FULL`, WAL), the
//! storage Cordon ships with. Prints p50, p90 and p99 of the whole path and
//! of its HTTP part (202 answered).
//!
//! `cargo bench -p cordon-server --bench webhook [-- --iterations N]`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use cordon_playbook::{Context, PluginCatalog, validate};
use cordon_runtime::attempt_state::AttemptError;
use cordon_runtime::executor::{BoxFuture, Executor, StepCall};
use cordon_runtime::{Engine, Progress, SystemClock};
use cordon_server::{AppState, Webhooks, WebhooksConfig};
use cordon_storage::NewVersion;
use cordon_storage::testing::TestStore;
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

#[derive(Debug)]
struct NoOp;

impl Executor for NoOp {
    fn execute(&self, _call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        Box::pin(async { Ok(json!({})) })
    }

    fn compensate(&self, _call: StepCall, _outputs: Value) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

const PLAYBOOK: &str = r#"cordon: v1
name: contain-device
version: 1.0.0
inputs:
  device: {type: string}
triggers:
  webhooks:
    - source: alertmanager
      when: 'alert.labels.alertname == "DeviceCompromised"'
      inputs: {device: '${{ alert.labels.device }}'}
steps:
  - id: hold
    wait: 1h
  - id: after
    needs: [hold]
    wait: 1s
"#;

fn payload(i: usize) -> String {
    json!({
        "version": "4", "status": "firing", "receiver": "cordon",
        "groupKey": format!("{{}}:{{alertname=\"DeviceCompromised\", device=\"plc-{i}\"}}"),
        "truncatedAlerts": 0, "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{"status": "firing",
            "labels": {"alertname": "DeviceCompromised", "device": format!("plc-{i}")},
            "annotations": {}, "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "", "fingerprint": format!("fp-{i}")}],
    })
    .to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let iterations = args
        .iter()
        .position(|a| a == "--iterations")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(300usize);
    let test = TestStore::sqlite().await.expect("sqlite");
    let store = test.store.clone();
    let catalog = PluginCatalog::default();
    let valid = validate("bench.yaml", PLAYBOOK.as_bytes(), &Context::new(&catalog))
        .into_valid()
        .expect("valid playbook");
    let version = NewVersion::new(
        valid.playbook(),
        PLAYBOOK.to_string(),
        BTreeMap::new(),
        chrono::Utc::now(),
        "bench".into(),
    )
    .expect("version");
    store.publish(version).await.expect("publish");
    let engine = Engine::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(NoOp),
        Arc::new(catalog),
        "bench",
        Duration::from_secs(30),
    );
    let config: WebhooksConfig = serde_json::from_value(json!({
        "alertmanager": {"format": "alertmanager", "auth": {"bearer": {"token": "bench-token"}},
                          "rate_limit": {"rate_per_sec": 1_000_000.0, "burst": 1_000_000}}
    }))
    .expect("config");
    let state = AppState {
        store: store.clone(),
        engine: engine.clone(),
        directory: Arc::default(),
        config: Arc::default(),
        catalog: Arc::default(),
        links: None,
        webhooks: Arc::new(Webhooks::from_config(&config, &|_| None).expect("sources")),
    };
    let app = cordon_server::app(state);
    let warmup = 20;
    let mut total = Vec::with_capacity(iterations);
    let mut http = Vec::with_capacity(iterations);
    for i in 0..warmup + iterations {
        let request = Request::post("/hooks/alertmanager")
            .header("content-type", "application/json")
            .header("authorization", "Bearer bench-token")
            .body(Body::from(payload(i)))
            .expect("request");
        let began = Instant::now();
        let response = app.clone().oneshot(request).await.expect("answer");
        assert_eq!(response.status(), 202);
        let answered = began.elapsed();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let outcome: Value = serde_json::from_slice(&body).expect("json");
        let run = outcome["runs"][0].as_str().expect("a run").to_string();
        // The first drive commits the first step's start (its timer armed) and blocks.
        let progress = engine.drive(&run).await.expect("drive");
        assert!(matches!(progress, Progress::Blocked { .. }), "{progress:?}");
        let started = began.elapsed();
        if i >= warmup {
            total.push(started);
            http.push(answered);
        }
    }
    total.sort_unstable();
    http.sort_unstable();
    println!(
        "webhook received → first step durably started (SQLite, synchronous=FULL), {iterations} deliveries"
    );
    for (name, sample) in [
        ("received → 202 (delivery + run committed)", &http),
        ("received → first step started", &total),
    ] {
        println!(
            "  {name:<44} p50 {}  p90 {}  p99 {}",
            ms(percentile(sample, 0.5)),
            ms(percentile(sample, 0.9)),
            ms(percentile(sample, 0.99))
        );
    }
    test.destroy().await.expect("cleanup");
}
