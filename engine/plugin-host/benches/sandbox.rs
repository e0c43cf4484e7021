//! Sandbox benchmark: what one plugin call costs once the component is
//! loaded (a fresh instance from the pre-linked `InstancePre` + the call),
//! what loading costs cold (compile) and warm (the compiled cache), and
//! what one call on a named connection costs on loopback (a private
//! Mosquitto and an HTTP listener, as in the tests).
//!
//! `cargo bench -p cordon-plugin-host --bench sandbox [-- --calls N]`
//! Needs the components in `plugins/dist/` (`plugins/build.sh`) and `mosquitto`.

// The tests' servers (a private Mosquitto, a recording HTTP listener).
#[path = "../tests/sandbox/support.rs"]
#[allow(dead_code, reason = "the bench uses only the servers")]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use cordon_plugin_host::signing::{self, Manifest, SigningKey, TrustedKeys};
use cordon_plugin_host::{
    ConnectionHub, Connections as _, ConnectionsConfig, Grants, HttpRequest, Invocation,
    MemoryFloors, MqttQos, PluginFile, Sandbox, SandboxConfig, Services,
};
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn signed(name: &str, key: &SigningKey) -> PluginFile {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run plugins/build.sh)", path.display()));
    let manifest = Manifest {
        name: name.into(),
        version: "0.1.0".into(),
        release_counter: 1,
        digest: signing::digest(&bytes),
        capabilities: vec![],
        expires: Utc::now() + chrono::Duration::days(1),
    };
    PluginFile {
        path,
        signature: Some(signing::sign(manifest, key)),
        bytes,
    }
}

fn sandbox(key: &SigningKey, cache: Option<PathBuf>) -> Sandbox {
    Sandbox::new(SandboxConfig {
        cache_dir: cache,
        trusted_keys: TrustedKeys::new(vec![key.verifying_key()]),
        grants: Grants::none(),
        ..SandboxConfig::default()
    })
    .expect("sandbox")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls = args
        .iter()
        .position(|a| a == "--calls")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5000usize);
    let key = SigningKey::from_bytes(&[1; 32]);
    let file = signed("noop", &key);
    println!("noop component: {} bytes", file.bytes.len());

    // Cold: compile (no cache), five times.
    let mut cold = Vec::new();
    for _ in 0..5 {
        let sandbox = sandbox(&key, None);
        let start = Instant::now();
        sandbox
            .load(&file, None, &MemoryFloors::default())
            .await
            .expect("load");
        cold.push(start.elapsed());
    }
    cold.sort();
    println!(
        "load, cold (verify + compile + describe + pre-link): median {:.1} ms",
        cold[2].as_secs_f64() * 1e3
    );

    // Warm: from the compiled cache, as after a restart.
    let dir = std::env::temp_dir().join(format!("cordon-bench-cache-{}", std::process::id()));
    sandbox(&key, Some(dir.clone()))
        .load(&file, None, &MemoryFloors::default())
        .await
        .expect("fill cache");
    let mut warm = Vec::new();
    for _ in 0..20 {
        let sandbox = sandbox(&key, Some(dir.clone()));
        let start = Instant::now();
        sandbox
            .load(&file, None, &MemoryFloors::default())
            .await
            .expect("load");
        warm.push(start.elapsed());
    }
    warm.sort();
    println!(
        "load, warm (verify + cached code + describe + pre-link): median {:.1} ms",
        percentile(&warm, 0.5).as_secs_f64() * 1e3
    );
    let _ = std::fs::remove_dir_all(&dir);

    // One call: fresh Store + instantiate from InstancePre + execute + output check.
    let sandbox = sandbox(&key, None);
    let plugin = sandbox
        .load(&file, None, &MemoryFloors::default())
        .await
        .expect("load");
    let invocation = |i: usize| Invocation {
        run: "bench".into(),
        step: "s".into(),
        attempt: 1,
        key: format!("bench/s/{i}"),
        dry_run: false,
        input: json!({"message": "hi"}),
        services: Services::default(),
    };
    for i in 0..200 {
        sandbox
            .execute(&plugin, invocation(i))
            .await
            .result
            .expect("warm-up");
    }
    let mut times = Vec::with_capacity(calls);
    let total = Instant::now();
    for i in 0..calls {
        let start = Instant::now();
        let outcome = sandbox.execute(&plugin, invocation(i)).await;
        times.push(start.elapsed());
        outcome.result.expect("noop call");
    }
    let total = total.elapsed();
    times.sort();
    println!(
        "noop instantiate + execute, {calls} calls: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs, {:.0} calls/s on one task",
        micros(percentile(&times, 0.5)),
        micros(percentile(&times, 0.99)),
        micros(*times.last().expect("calls")),
        calls as f64 / total.as_secs_f64()
    );

    connections(calls.min(1000)).await;
}

/// One MQTT publish (QoS 1, its own session: connect, publish, ack,
/// disconnect) and one HTTP GET (pooled client), each `calls` times.
async fn connections(calls: usize) {
    let broker = support::Mosquitto::start();
    let server = support::HttpServer::start();
    let config: ConnectionsConfig = serde_json::from_value(json!({"connections": {
        "fleet-broker": {"kind": "mqtt", "host": "127.0.0.1", "port": broker.port()},
        "fleet-ca": {"kind": "http", "base_url": format!("http://127.0.0.1:{}/api", server.port())},
    }}))
    .expect("config");
    let hub = ConnectionHub::new(&config).expect("hub");
    let second = Duration::from_secs(1);
    let mut mqtt = Vec::with_capacity(calls);
    for i in 0..calls {
        let start = Instant::now();
        hub.mqtt_publish(
            "fleet-broker".into(),
            "cordon/bench".into(),
            i.to_string().into_bytes(),
            MqttQos::AtLeastOnce,
            false,
            second,
        )
        .await
        .expect("published");
        mqtt.push(start.elapsed());
    }
    let mut http = Vec::with_capacity(calls);
    for _ in 0..calls {
        let request = HttpRequest {
            method: "GET",
            path: "/health".into(),
            headers: vec![],
            body: vec![],
        };
        let start = Instant::now();
        hub.http_send("fleet-ca".into(), request, second)
            .await
            .expect("answered");
        http.push(start.elapsed());
    }
    mqtt.sort();
    http.sort();
    println!(
        "mqtt publish QoS 1 (own session), {calls} calls: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&mqtt, 0.5).as_secs_f64() * 1e3,
        percentile(&mqtt, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "http GET (pooled client), {calls} calls: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&http, 0.5).as_secs_f64() * 1e3,
        percentile(&http, 0.99).as_secs_f64() * 1e3
    );
}
