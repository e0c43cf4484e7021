//! The harness: the real `cordon` binary in child processes (cleaned up by
//! PID), the ledger its test executor writes, and the checks run on it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cordon_storage::Store;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;

/// The scenario playbooks, by short name.
pub const SCENARIOS: [&str; 5] = ["sequential", "parallel", "foreach", "retry", "compensation"];

/// Nanoseconds since the epoch (the ledger's clock).
pub fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// One database, one ledger directory: where a test's processes meet.
pub struct Site {
    pub url: String,
    pub ledger: PathBuf,
}

impl Site {
    pub fn new(url: &str) -> Site {
        let ledger =
            std::env::temp_dir().join(format!("cordon-crash-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&ledger).expect("ledger dir");
        Site {
            url: url.to_string(),
            ledger,
        }
    }

    /// `cordon ARGS` against this site, with no failpoint armed.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cordon"));
        command
            .args(args)
            .env("CORDON_DATABASE", &self.url)
            .env("CORDON_TEST_LEDGER", &self.ledger)
            .env("CORDON_LOG", "warn")
            .env_remove("CORDON_CRASH_AT")
            .env_remove("CORDON_PLUGINS");
        command
    }

    pub fn publish_scenarios(&self) {
        for name in SCENARIOS {
            self.publish(name);
        }
    }

    /// Publishes `tests/crash/playbooks/NAME.yaml`.
    pub fn publish(&self, name: &str) {
        let file = repo_path(&format!("tests/crash/playbooks/{name}.yaml"));
        let out = self
            .command(&["publish", &file.display().to_string()])
            .output()
            .expect("publish");
        assert!(
            out.status.success(),
            "publish {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Queues a run of scenario `name`; its id.
    pub fn start_run(&self, name: &str) -> String {
        let out = self
            .command(&["run", &format!("crash-{name}")])
            .output()
            .expect("cordon run");
        assert!(
            out.status.success(),
            "run {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts a worker node; `crash` arms a failpoint (`NAME:HIT`).
    pub fn worker(&self, name: &str, lease: &str, crash: Option<&str>) -> Worker {
        self.worker_with(name, lease, crash, "64")
    }

    /// [`Site::worker`] driving at most `capacity` runs at once.
    pub fn worker_with(
        &self,
        name: &str,
        lease: &str,
        crash: Option<&str>,
        capacity: &str,
    ) -> Worker {
        let mut command = self.command(&[
            "worker",
            "--name",
            name,
            "--lease",
            lease,
            "--poll",
            "20ms",
            "--grace",
            "2s",
            "--capacity",
            capacity,
        ]);
        if let Some(point) = crash {
            command.env("CORDON_CRASH_AT", point);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn cordon worker");
        Worker { child }
    }

    pub fn ledger(&self) -> Vec<Line> {
        let text = std::fs::read_to_string(self.ledger.join("ledger.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("ledger line"))
            .collect()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.ledger);
    }
}

/// A `cordon worker` child process; killed and reaped on drop.
pub struct Worker {
    child: Child,
}

impl Worker {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// SIGKILL now; the time it was dead by.
    pub fn kill_hard(&mut self) -> u128 {
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
        now_nanos()
    }

    /// SIGTERM, then waits for the graceful stop.
    pub fn stop(mut self) {
        let _ = kill(Pid::from_raw(self.pid() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.exited().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether a process ended by SIGKILL.
pub fn killed(status: ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt as _;
    status.signal() == Some(9)
}

/// Waits until run `id` is over (or `limit` passes); its final status.
pub async fn wait_terminal(store: &Store, id: &str, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(record) = store.run(id).await.expect("read run")
            && ["succeeded", "failed", "cancelled"].contains(&record.state.status.as_str())
        {
            return Some(record.state.status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// What a run ended as, without anything that differs between runs (ids, times).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: String,
    /// Step key → (status, attempts, outputs with the run id blanked).
    pub steps: BTreeMap<String, (String, u32, String)>,
}

pub async fn outcome(store: &Store, id: &str) -> Outcome {
    let record = store.run(id).await.expect("read").expect("run exists");
    let steps = record
        .steps
        .iter()
        .map(|s| {
            let outputs = s
                .outputs
                .as_ref()
                .map(|o| o.to_string().replace(id, "RUN"))
                .unwrap_or_default();
            (s.key.clone(), (s.state.status.clone(), s.attempt, outputs))
        })
        .collect();
    Outcome {
        status: record.state.status,
        steps,
    }
}

/// One line of the ledger (see `engine/cli/src/harness.rs`).
#[derive(Debug, Clone, Deserialize)]
pub struct Line {
    pub event: String,
    pub kind: String,
    pub key: String,
    pub run: String,
    pub step: String,
    pub pid: u32,
    pub t: u128,
}

/// Checks run `id` against the ledger: every execution carried a stored
/// attempt's idempotency key; a step's effect was applied under exactly one
/// key (a crash re-delivers the same key, never a new one); no execution of
/// a key overlapped another (a killed process's unfinished execution lasts
/// until it was dead, per `deaths`). Returns every violation found.
pub async fn check_ledger(
    ledger_dir: &Path,
    store: &Store,
    id: &str,
    lines: &[Line],
    deaths: &HashMap<u32, u128>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let record = store.run(id).await.expect("read").expect("run");
    let attempts = store.attempts(id).await.expect("attempts");
    let keys: BTreeSet<&str> = attempts
        .iter()
        .map(|a| a.idempotency_key.as_str())
        .collect();
    let mine: Vec<&Line> = lines.iter().filter(|l| l.run == id).collect();
    for line in &mine {
        if line.kind == "execute" && !keys.contains(line.key.as_str()) {
            problems.push(format!(
                "{}: executed under unknown key {}",
                line.step, line.key
            ));
        }
    }
    // Effects: one applied key per step, the key of the attempt that
    // succeeded. The effect files are the truth: a process killed right
    // after applying an effect never wrote its `end` line.
    let effects = effect_keys(ledger_dir, "effects");
    let undos = effect_keys(ledger_dir, "undone");
    for step in &record.steps {
        let prefix = format!("{id}/{}/", step.key);
        let applied: BTreeSet<&str> = effects
            .iter()
            .filter(|k| k.starts_with(&prefix))
            .map(String::as_str)
            .collect();
        let succeeded: Vec<&str> = attempts
            .iter()
            .filter(|a| a.step == step.key && a.state.status == "succeeded")
            .map(|a| a.idempotency_key.as_str())
            .collect();
        if succeeded.len() > 1 {
            problems.push(format!(
                "{}: {} attempts succeeded",
                step.key,
                succeeded.len()
            ));
        }
        if applied.len() > 1 {
            problems.push(format!(
                "{}: effect applied under {} keys {applied:?}",
                step.key,
                applied.len()
            ));
        }
        if let Some(key) = succeeded.first()
            && !applied.contains(key)
        {
            problems.push(format!(
                "{}: attempt {key} succeeded but its effect is not in the ledger",
                step.key
            ));
        }
        let undo_prefix = format!("{id}/{}.compensate/", step.key);
        let undone = undos.iter().filter(|k| k.starts_with(&undo_prefix)).count();
        let expected_undo = usize::from(step.state.status == "compensated");
        if undone != expected_undo {
            problems.push(format!(
                "{}: undone {undone} times, status {}",
                step.key, step.state.status
            ));
        }
    }
    problems.extend(overlaps(&mine, deaths));
    problems
}

/// The idempotency keys under which effects (or undos) were applied.
fn effect_keys(ledger_dir: &Path, sub: &str) -> Vec<String> {
    std::fs::read_dir(ledger_dir.join(sub))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().replace("__", "/"))
                .collect()
        })
        .unwrap_or_default()
}

/// One execution: began, ended (or its process died), in which process.
type Span = (u128, u128, u32);

/// Executions of one key that overlapped in time.
pub fn overlaps(lines: &[&Line], deaths: &HashMap<u32, u128>) -> Vec<String> {
    // (key, kind) → intervals [begin, end] with their pid.
    let mut intervals: BTreeMap<(&str, &str), Vec<Span>> = BTreeMap::new();
    let mut open: HashMap<(&str, &str, u32), u128> = HashMap::new();
    let mut problems = Vec::new();
    for line in lines {
        let slot = (line.key.as_str(), line.kind.as_str(), line.pid);
        match line.event.as_str() {
            "begin" => {
                if open.insert(slot, line.t).is_some() {
                    problems.push(format!(
                        "{}: began twice in process {} without ending",
                        line.key, line.pid
                    ));
                }
            }
            _ => {
                if let Some(begin) = open.remove(&slot) {
                    intervals
                        .entry((slot.0, slot.1))
                        .or_default()
                        .push((begin, line.t, line.pid));
                }
            }
        }
    }
    for ((key, kind, pid), begin) in open {
        // Never ended: it lasted until its process died (or forever, if it did not).
        let end = deaths.get(&pid).copied().unwrap_or(u128::MAX);
        intervals
            .entry((key, kind))
            .or_default()
            .push((begin, end, pid));
    }
    for ((key, kind), mut spans) in intervals {
        spans.sort();
        for pair in spans.windows(2) {
            if pair[1].0 < pair[0].1 {
                problems.push(format!(
                    "{kind} {key} ran concurrently in processes {} and {}",
                    pair[0].2, pair[1].2
                ));
            }
        }
    }
    problems
}

/// A path inside the repository.
pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}
