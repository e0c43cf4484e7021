//! The crash harness's side inside the `cordon` process (built only with
//! the `crash-harness` feature, never into a release):
//!
//! - `CORDON_CRASH_AT=NAME:HIT` arms the failpoint `NAME` so that its
//!   `HIT`-th evaluation kills this process with SIGKILL — no destructor,
//!   no flush, exactly what a power cut or the OOM killer does.
//! - `CORDON_TEST_LEDGER=DIR` replaces the executor with a ledger: every
//!   execution appends `begin`/`end` lines (key, pid, time) to
//!   `DIR/ledger.jsonl` and applies its effect once per idempotency key, the
//!   way an idempotent device action does. The test reads the ledger to
//!   prove that no attempt ran twice at the same time and that every effect
//!   happened once per key. Step names choose the behaviour: `flaky-*` fails
//!   transiently on attempt 1, `broken-*` fails for good, `slow-*` takes
//!   300 ms; every other step takes 10 ms.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cordon_runtime::attempt_state::{AttemptError, ErrorKind};
use cordon_runtime::executor::{BoxFuture, Executor, StepCall};
use serde_json::{Value, json};

/// Arms the failpoint named in `CORDON_CRASH_AT`, if any.
pub fn arm_failpoint() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var("CORDON_CRASH_AT") else {
        return Ok(());
    };
    let (name, hit) = spec
        .rsplit_once(':')
        .ok_or_else(|| anyhow::anyhow!("CORDON_CRASH_AT must be NAME:HIT, not `{spec}`"))?;
    let hit: u32 = hit.parse()?;
    let name = name.to_string();
    let seen = AtomicU32::new(0);
    let label = format!("{name}:{hit}");
    fail::cfg_callback(name, move || {
        if seen.fetch_add(1, Ordering::SeqCst) + 1 == hit {
            let _ = writeln!(std::io::stderr(), "crash-harness: SIGKILL at {label}");
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    })
    .map_err(|e| anyhow::anyhow!(e))
}

/// The ledger executor (see the module documentation).
#[derive(Debug)]
pub struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    /// The ledger in `CORDON_TEST_LEDGER`, if set.
    pub fn from_env() -> Option<Ledger> {
        let dir = PathBuf::from(std::env::var_os("CORDON_TEST_LEDGER")?);
        for sub in ["effects", "undone"] {
            std::fs::create_dir_all(dir.join(sub)).ok()?;
        }
        Some(Ledger { dir })
    }
}

/// One ledger line, appended with a single `write` (O_APPEND keeps lines whole across processes).
fn append(dir: &std::path::Path, line: &Value) {
    let mut text = line.to_string();
    text.push('\n');
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("ledger.jsonl"));
    if let Ok(mut file) = file {
        let _ = file.write_all(text.as_bytes());
    }
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Applies an effect once per key: `true` when this call applied it.
fn apply_once(dir: &std::path::Path, sub: &str, key: &str) -> bool {
    let file = dir.join(sub).join(key.replace('/', "__"));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(file)
        .is_ok()
}

/// The step's name without a fan-out item suffix.
fn behaviour(step: &str) -> &str {
    step.split('[').next().unwrap_or(step)
}

impl Executor for Ledger {
    fn execute(&self, call: StepCall) -> BoxFuture<Result<Value, AttemptError>> {
        let dir = self.dir.clone();
        Box::pin(async move {
            let key = call.key.to_string();
            let pid = std::process::id();
            append(
                &dir,
                &json!({"event": "begin", "kind": "execute", "key": key, "run": call.run, "step": call.step, "pid": pid, "t": now_nanos()}),
            );
            let name = behaviour(&call.step);
            let pause = if name.starts_with("slow") { 300 } else { 10 };
            tokio::time::sleep(Duration::from_millis(pause)).await;
            let attempt = key.rsplit('/').next().unwrap_or("1");
            let (outcome, result) = if name.starts_with("broken") {
                (
                    "failed",
                    Err(AttemptError {
                        kind: ErrorKind::Plugin,
                        message: "the device refused (scripted by the crash harness)".into(),
                        retryable: false,
                    }),
                )
            } else if name.starts_with("flaky") && attempt == "1" {
                (
                    "transient",
                    Err(AttemptError {
                        kind: ErrorKind::Plugin,
                        message: "the device did not answer (scripted by the crash harness)".into(),
                        retryable: true,
                    }),
                )
            } else {
                let applied = apply_once(&dir, "effects", &key);
                (
                    if applied { "applied" } else { "deduplicated" },
                    Ok(json!({"device": call.inputs.get("device"), "key": key})),
                )
            };
            append(
                &dir,
                &json!({"event": "end", "kind": "execute", "key": key, "run": call.run, "step": call.step, "pid": pid, "t": now_nanos(), "outcome": outcome}),
            );
            result
        })
    }

    fn compensate(&self, call: StepCall, _outputs: Value) -> BoxFuture<Result<(), String>> {
        let dir = self.dir.clone();
        Box::pin(async move {
            let key = call.key.to_string();
            let pid = std::process::id();
            append(
                &dir,
                &json!({"event": "begin", "kind": "compensate", "key": key, "run": call.run, "step": call.step, "pid": pid, "t": now_nanos()}),
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            let applied = apply_once(&dir, "undone", &key);
            append(
                &dir,
                &json!({"event": "end", "kind": "compensate", "key": key, "run": call.run, "step": call.step, "pid": pid, "t": now_nanos(), "outcome": if applied { "applied" } else { "deduplicated" }}),
            );
            Ok(())
        })
    }
}
