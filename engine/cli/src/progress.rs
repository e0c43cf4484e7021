//! `--wait`: driving a run from the command line and showing its steps as
//! they move.
//!
//! The view is line-based — one line whenever a step (or, for a fan-out, a
//! step's item counts) changes — so it reads the same in a terminal, a CI
//! log or a pipe. It polls the store rather than listening to the driver,
//! so it shows the run truthfully even when another node drives it.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write as _;
use std::time::{Duration, Instant};

use cordon_runtime::run_state::RunStatus;
use cordon_runtime::{EngineError, Progress};
use cordon_storage::{RunRecord, Store};

use crate::node::Node;

/// How often the view reads the run back.
const POLL: Duration = Duration::from_millis(100);

/// How a wait ended.
pub enum Waited {
    /// The run finished.
    Finished(RunStatus),
    /// The person stopped waiting (Ctrl-C); the run goes on with any worker.
    Interrupted(String),
}

/// Drives run `id` here until it finishes, showing progress on stderr.
/// When another node holds the run, this only watches.
pub async fn drive_and_show(node: &Node, id: &str) -> anyhow::Result<Waited> {
    let started = Instant::now();
    let mut view = View::default();
    let drive = async {
        loop {
            let blocked_until = match node.engine.drive(id).await {
                Ok(Progress::Finished(status)) => return Ok(status),
                Ok(Progress::Blocked { until }) => until,
                // Another node drives it: watch.
                Err(EngineError::LeaseLost(_)) => None,
                Err(e) => {
                    // Hand the run back at once for a worker to carry on.
                    let _ = node.store.release_lease(id, &node.name).await;
                    return Err(anyhow::Error::from(e));
                }
            };
            // Blocked on a timer or on people: wait, showing what happens meanwhile.
            let pause = blocked_until
                .and_then(|t| (t - chrono::Utc::now()).to_std().ok())
                .map_or(Duration::from_millis(500), |d| {
                    d.clamp(Duration::from_millis(5), Duration::from_millis(500))
                });
            tokio::time::sleep(pause).await;
        }
    };
    let outcome = tokio::select! {
        status = drive => Waited::Finished(status?),
        failed = watch(&node.store, id, &mut view) => match failed? {},
        _ = tokio::signal::ctrl_c() => {
            // Hand the run back at once rather than when the lease expires.
            node.store.release_lease(id, &node.name).await?;
            let status = node.store.run(id).await?.map(|r| r.state.status).unwrap_or_default();
            Waited::Interrupted(status)
        }
    };
    if let Some(record) = node.store.run(id).await? {
        view.show(&record);
        say(&format!(
            "run {id} {} after {:.2}s",
            record.state.status,
            started.elapsed().as_secs_f64()
        ));
        if record.dry_run {
            say("plan (nothing was sent; what each step would do):");
            for line in plan(&record) {
                say(&format!("  {line}"));
            }
        }
    }
    Ok(outcome)
}

/// A dry run's plan: every intent of every step, in step order, one line
/// each (`step  kind  target  detail`). Plugins declare intents, and the
/// host records every side-effecting call it refused in the dry run.
pub fn plan(record: &RunRecord) -> Vec<String> {
    plan_of(
        record
            .steps
            .iter()
            .map(|s| (s.key.as_str(), s.outputs.as_ref())),
    )
}

/// [`plan`] from each step's key and outputs.
pub fn plan_of<'a>(
    steps: impl IntoIterator<Item = (&'a str, Option<&'a serde_json::Value>)>,
) -> Vec<String> {
    let mut lines = Vec::new();
    for (key, outputs) in steps {
        let intents = outputs
            .and_then(|o| o.get("_plan"))
            .and_then(serde_json::Value::as_array);
        for intent in intents.into_iter().flatten() {
            let text = |k: &str| {
                intent
                    .get(k)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            let detail = intent
                .get("detail")
                .map(ToString::to_string)
                .unwrap_or_default();
            lines.push(format!(
                "{:<24} {:<20} {:<32} {detail}",
                key,
                text("kind"),
                text("target")
            ));
        }
    }
    if lines.is_empty() {
        lines.push("(no step declared or attempted a side effect)".into());
    }
    lines
}

/// Shows the run's changes until reading it fails.
async fn watch(store: &Store, id: &str, view: &mut View) -> anyhow::Result<Infallible> {
    loop {
        if let Some(record) = store.run(id).await? {
            view.show(&record);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What the person has been shown so far, by step (or fan-out parent).
#[derive(Default)]
struct View {
    run: String,
    lines: BTreeMap<String, String>,
}

impl View {
    /// Prints a line for each step whose state changed since the last call.
    fn show(&mut self, record: &RunRecord) {
        if self.run != record.state.status {
            self.run.clone_from(&record.state.status);
            say(&format!(
                "{}  run {} {}",
                clock(),
                record.id,
                record.state.status
            ));
        }
        // Fan-out items (`id[3]`) are shown as counts on their parent's line.
        let mut items: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        let mut lines: Vec<(String, String)> = Vec::new();
        for step in &record.steps {
            if let Some((parent, _)) = step.key.split_once('[') {
                *items
                    .entry(parent)
                    .or_default()
                    .entry(step.state.status.as_str())
                    .or_default() += 1;
                continue;
            }
            let mut line = step.state.status.clone();
            if step.attempt > 1 {
                line.push_str(&format!(" (attempt {})", step.attempt));
            }
            if let Some(message) = step.state.state.get("message").and_then(|m| m.as_str()) {
                line.push_str(&format!(": {message}"));
            }
            if let Some(on) = step.state.state.get("on").and_then(|o| o.get("on")) {
                line.push_str(&format!(" on {}", on.as_str().unwrap_or("?")));
            }
            lines.push((step.key.clone(), line));
        }
        for (parent, counts) in items {
            let total: usize = counts.values().sum();
            let summary: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
            lines.push((
                parent.to_string(),
                format!("{total} items: {}", summary.join(", ")),
            ));
        }
        for (key, line) in lines {
            if self.lines.get(&key) != Some(&line) {
                say(&format!("{}    {key:<24} {line}", clock()));
                self.lines.insert(key, line);
            }
        }
    }
}

fn clock() -> String {
    chrono::Local::now().format("%H:%M:%S%.3f").to_string()
}

/// Writes a progress line to stderr; a closed stderr is not worth a panic.
fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// The exit code for a finished run: 0 succeeded, 1 failed, 3 cancelled.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Succeeded => crate::exit::OK,
        RunStatus::Cancelled => crate::exit::CANCELLED,
        _ => crate::exit::PROBLEMS,
    }
}
