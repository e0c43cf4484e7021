//! Scheduler benchmark: start a run and drive it to completion, end to end
//! through storage with full durability. Steps call either an in-process
//! no-op executor (the scheduler's own cost) or, with `--wasm`, the real
//! `noop` WebAssembly plugin in the sandbox (a fresh instance per attempt).
//! Prints median and p95 per shape and backend, beside the cost of one
//! durable commit on the same database.
//!
//! Then a rollout over 10,000 inventory devices in waves, run several times,
//! printing peak RSS after each run.
//!
//! `cargo bench -p cordon-runtime --bench scheduler [-- --iterations N --rollouts N --wasm]`
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
use cordon_storage::{DeviceRecord, NewVersion, StoredState};
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

/// What steps call: the plugin `uses`, its `with`, the executor, the catalog.
struct Steps {
    uses: &'static str,
    with: &'static str,
    executor: Arc<dyn Executor>,
    catalog: Arc<PluginCatalog>,
}

fn noop_steps() -> Steps {
    Steps {
        uses: "check-health@1",
        with: "{device: dev}",
        executor: Arc::new(NoOp),
        catalog: catalog(),
    }
}

/// The real `noop` component (plugins/dist), signed with a throwaway key and
/// loaded into a sandbox.
async fn wasm_steps() -> Steps {
    use cordon_plugin_host::signing::{self, Manifest, SigningKey, TrustedKeys};
    use cordon_plugin_host::{
        MemoryFloors, PluginExecutor, PluginFile, Sandbox, SandboxConfig, Services,
    };
    let key = SigningKey::from_bytes(&[3; 32]);
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/dist/noop.wasm");
    let bytes = std::fs::read(&path).expect("plugins/dist/noop.wasm (run plugins/build.sh)");
    let manifest = Manifest {
        name: "noop".into(),
        version: "0.1.0".into(),
        release_counter: 1,
        digest: signing::digest(&bytes),
        capabilities: vec![],
        expires: chrono::Utc::now() + chrono::Duration::days(1),
    };
    let file = PluginFile {
        path,
        signature: Some(signing::sign(manifest, &key)),
        bytes,
    };
    let sandbox = Sandbox::new(SandboxConfig {
        trusted_keys: TrustedKeys::new(vec![key.verifying_key()]),
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let plugin = sandbox
        .load(&file, None, &MemoryFloors::default())
        .await
        .expect("load noop");
    let mut descriptors: Vec<PluginDescriptor> = catalog().descriptors().cloned().collect();
    descriptors.push(plugin.descriptor.clone());
    let executor = PluginExecutor::new(
        Arc::new(sandbox),
        vec![Arc::new(plugin)],
        Services::default(),
    );
    Steps {
        uses: "noop@0",
        with: "{message: hi}",
        executor: Arc::new(executor),
        catalog: Arc::new(PluginCatalog::new(descriptors).expect("catalog")),
    }
}

/// `seq` steps in a chain, or `fan` parallel steps joined by one.
fn playbook(name: &str, seq: usize, fan: usize, steps: &Steps) -> String {
    let (uses, with) = (steps.uses, steps.with);
    let mut y = format!("cordon: v1\nname: {name}\nversion: 1.0.0\nsteps:\n");
    for i in 0..seq {
        let needs = if i == 0 {
            String::new()
        } else {
            format!("    needs: [s{}]\n", i - 1)
        };
        let _ = write!(
            y,
            "  - id: s{i}\n{needs}    uses: {uses}\n    with: {with}\n"
        );
    }
    if fan > 0 {
        for i in 0..fan {
            let _ = write!(y, "  - id: f{i}\n    uses: {uses}\n    with: {with}\n");
        }
        let all: Vec<String> = (0..fan).map(|i| format!("f{i}")).collect();
        let _ = write!(
            y,
            "  - id: join\n    needs: [{}]\n    uses: {uses}\n    with: {with}\n",
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

async fn bench_backend(label: &str, store: &TestStore, iterations: usize, steps: &Steps) {
    let catalog = steps.catalog.clone();
    let engine = Engine::new(
        store.store.clone(),
        Arc::new(SystemClock),
        steps.executor.clone(),
        catalog.clone(),
        "bench",
        Duration::from_secs(30),
    );
    // One durable commit on this database, for scale.
    let yaml = playbook("commit", 1, 0, steps);
    publish(store, &catalog, &yaml).await;
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
        let yaml = playbook(name, seq, fan, steps);
        publish(store, &catalog, &yaml).await;
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

/// Validates and publishes a playbook.
async fn publish(store: &TestStore, catalog: &PluginCatalog, yaml: &str) {
    let valid = validate("b.yaml", yaml.as_bytes(), &Context::new(catalog))
        .into_valid()
        .expect("valid");
    store
        .publish(
            NewVersion::new(
                valid.playbook(),
                yaml.to_string(),
                BTreeMap::new(),
                chrono::Utc::now(),
                "bench".into(),
            )
            .expect("v"),
        )
        .await
        .expect("publish");
}

/// Peak and current resident memory of this process, in MiB (Linux).
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A rollout over 10,000 inventory devices in waves, repeated: the time of
/// each run and the process's memory after each (it must not grow with the
/// runs already finished).
async fn bench_inventory_rollout(label: &str, store: &TestStore, runs: usize) {
    const DEVICES: usize = 10_000;
    if runs == 0 {
        return;
    }
    let catalog = catalog();
    let engine = Engine::new(
        store.store.clone(),
        Arc::new(SystemClock),
        Arc::new(NoOp),
        catalog.clone(),
        "bench",
        Duration::from_secs(30),
    );
    let devices: Vec<DeviceRecord> = (0..DEVICES)
        .map(|i| DeviceRecord {
            id: format!("plc-{i:05}"),
            device_type: "plc".into(),
            site: "plant-a".into(),
            tags: vec!["fleet".into(), format!("line-{}", i % 8)],
            criticality: "high".into(),
            firmware: "2.4.1".into(),
            cert_serial: None,
            owner: "ot".into(),
            drill: false,
        })
        .collect();
    store
        .upsert_devices(&devices, chrono::Utc::now())
        .await
        .expect("inventory");
    let yaml = "cordon: v1\nname: fleet-rollout\nversion: 1.0.0\nsteps:\n  - id: roll\n    foreach:\n      items: '${{ inventory.select(\"tag=fleet\") }}'\n      concurrency: 500\n      waves: [1%, 10%, 50%, 100%]\n    uses: check-health@1\n    with: {device: '${{ item }}'}\n";
    publish(store, &catalog, yaml).await;
    let (peak_before, _) = memory_mib();
    let mut times = Vec::new();
    for i in 0..runs {
        let start = Instant::now();
        let run = engine
            .start_run(RunRequest {
                playbook: "fleet-rollout".into(),
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
        let took = start.elapsed();
        times.push(took);
        let (peak, now) = memory_mib();
        println!(
            "{label:<10} fan10k  run {}: {:>8.0} ms ({:.3} ms per device)  peak RSS {peak:.0} MiB, now {now:.0} MiB",
            i + 1,
            ms(took),
            ms(took) / DEVICES as f64
        );
    }
    times.sort();
    let (peak_after, _) = memory_mib();
    println!(
        "{label:<10} fan10k  (10,000 devices, waves 1%/10%/50%/100%, concurrency 500)  median {:>8.0} ms  peak RSS {peak_before:.0} -> {peak_after:.0} MiB over {runs} runs",
        ms(percentile(&times, 0.5)),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iterations: usize = std::env::args()
        .skip_while(|a| a != "--iterations")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let steps = if std::env::args().any(|a| a == "--wasm") {
        wasm_steps().await
    } else {
        noop_steps()
    };
    println!(
        "start run + drive to completion, steps call {}, {iterations} iterations (2 warm-up)",
        if steps.uses == "noop@0" {
            "the WASM noop plugin"
        } else {
            "an in-process no-op executor"
        }
    );
    let rollouts: usize = std::env::args()
        .skip_while(|a| a != "--rollouts")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let sqlite = TestStore::sqlite().await.expect("sqlite");
    bench_backend("sqlite", &sqlite, iterations, &steps).await;
    bench_inventory_rollout("sqlite", &sqlite, rollouts).await;
    sqlite.destroy().await.expect("cleanup");
    match TestStore::postgres().await {
        Ok(pg) => {
            bench_backend("postgres", &pg, iterations, &steps).await;
            bench_inventory_rollout("postgres", &pg, rollouts).await;
            pg.destroy().await.expect("cleanup");
        }
        Err(e) => println!("postgres   skipped: {e}"),
    }
}
