//! Scheduler benchmark: start a run and drive it to completion, end to end
//! through storage with full durability, with a no-op executor standing in
//! for plugins (the real WASM no-op plugin replaces it once the sandbox
//! lands). Prints median and p95 per shape and backend, beside the cost of
//! one durable commit on the same database.
//!
//! `cargo bench -p cordon-runtime --bench scheduler [-- --iterations N]`
//! PostgreSQL is measured when `CORDON_TEST_POSTGRES` (or 127.0.0.1:5432/test) answers.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cordon_playbook::{Context, PluginCatalog, PluginDescriptor, validate};
use cordon_runtime::attempt_state::AttemptError;
use cordon_runtime::executor::{BoxFuture, Executor, StepCall};
use cordon_runtime::{Engine, Progress, RunRequest, SystemClock};
use cordon_storage::testing::TestStore;
use cordon_storage::{NewVersion, StoredState};
use serde_json::{Value, json};

#[derive(Debug)]
struct NoOp;

impl Executor for NoOp {
    fn execute(&self, _call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        Box::pin(async { Ok(json!({"ok": true})) })
    }

    fn compensate(&self, _call: StepCall, _outputs: Value) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

fn catalog() -> Arc<PluginCatalog> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/descriptors");
    let descriptors = std::fs::read_dir(dir).expect("descriptors").map(|e| {
        serde_json::from_str::<PluginDescriptor>(
            &std::fs::read_to_string(e.expect("entry").path()).expect("read"),
        )
        .expect("descriptor")
    });
    Arc::new(PluginCatalog::new(descriptors).expect("catalog"))
}

/// `seq` steps in a chain, or `fan` parallel steps joined by one.
fn playbook(name: &str, seq: usize, fan: usize) -> String {
    let mut y = format!("cordon: v1\nname: {name}\nversion: 1.0.0\nsteps:\n");
    for i in 0..seq {
        let needs = if i == 0 {
            String::new()
        } else {
            format!("    needs: [s{}]\n", i - 1)
        };
        let _ = write!(
            y,
            "  - id: s{i}\n{needs}    uses: check-health@1\n    with: {{device: dev-{i}}}\n"
        );
    }
    if fan > 0 {
        for i in 0..fan {
            let _ = write!(
                y,
                "  - id: f{i}\n    uses: check-health@1\n    with: {{device: dev-{i}}}\n"
            );
        }
        let all: Vec<String> = (0..fan).map(|i| format!("f{i}")).collect();
        let _ = write!(
            y,
            "  - id: join\n    needs: [{}]\n    uses: check-health@1\n    with: {{device: all}}\n",
            all.join(", ")
        );
    }
    y
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn bench_backend(label: &str, store: &TestStore, iterations: usize) {
    let catalog = catalog();
    let engine = Engine::new(
        store.store.clone(),
        Arc::new(SystemClock),
        Arc::new(NoOp),
        catalog.clone(),
        "bench",
        Duration::from_secs(30),
    );
    // One durable commit on this database, for scale.
    let yaml = playbook("commit", 1, 0);
    let valid = validate("b.yaml", yaml.as_bytes(), &Context::new(&catalog))
        .into_valid()
        .expect("valid");
    store
        .publish(
            NewVersion::new(
                valid.playbook(),
                yaml,
                BTreeMap::new(),
                chrono::Utc::now(),
                "bench".into(),
            )
            .expect("v"),
        )
        .await
        .expect("publish");
    let run = engine
        .start_run(RunRequest {
            playbook: "commit".into(),
            version: None,
            inputs: BTreeMap::new(),
            trigger: json!({}),
            dry_run: false,
        })
        .await
        .expect("run");
    let mut commits = Vec::new();
    for revision in 1..=(iterations * 4) as i64 {
        let state = StoredState {
            status: "queued".into(),
            state: json!({"state": "queued", "queued_at": chrono::Utc::now()}),
        };
        let start = Instant::now();
        store
            .transition_run(&run, revision, &state, chrono::Utc::now())
            .await
            .expect("commit");
        commits.push(start.elapsed());
    }
    commits.sort();
    println!(
        "{label:<10} one durable commit (UPDATE)   median {:>8.3} ms  p95 {:>8.3} ms",
        ms(percentile(&commits, 0.5)),
        ms(percentile(&commits, 0.95))
    );

    for (name, seq, fan) in [("seq10", 10, 0), ("seq40", 40, 0), ("fan100", 0, 100)] {
        let yaml = playbook(name, seq, fan);
        let valid = validate("b.yaml", yaml.as_bytes(), &Context::new(&catalog))
            .into_valid()
            .expect("valid");
        store
            .publish(
                NewVersion::new(
                    valid.playbook(),
                    yaml,
                    BTreeMap::new(),
                    chrono::Utc::now(),
                    "bench".into(),
                )
                .expect("v"),
            )
            .await
            .expect("publish");
        let mut times = Vec::new();
        for i in 0..iterations + 2 {
            let start = Instant::now();
            let run = engine
                .start_run(RunRequest {
                    playbook: name.into(),
                    version: None,
                    inputs: BTreeMap::new(),
                    trigger: json!({}),
                    dry_run: false,
                })
                .await
                .expect("run");
            let progress = engine.drive(&run).await.expect("drive");
            assert_eq!(
                progress,
                Progress::Finished(cordon_runtime::run_state::RunStatus::Succeeded)
            );
            if i >= 2 {
                times.push(start.elapsed());
            }
        }
        times.sort();
        let steps = seq + if fan > 0 { fan + 1 } else { 0 };
        println!(
            "{label:<10} {name:<7} ({steps:>3} steps)          median {:>8.3} ms  p95 {:>8.3} ms  per step {:>6.3} ms",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            ms(percentile(&times, 0.5)) / steps as f64
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    println!(
        "start run + drive to completion, no-op executor, {iterations} iterations (2 warm-up)"
    );
    let sqlite = TestStore::sqlite().await.expect("sqlite");
    bench_backend("sqlite", &sqlite, iterations).await;
    sqlite.destroy().await.expect("cleanup");
    match TestStore::postgres().await {
        Ok(pg) => {
            bench_backend("postgres", &pg, iterations).await;
            pg.destroy().await.expect("cleanup");
        }
        Err(e) => println!("postgres   skipped: {e}"),
    }
}
