//! `cordon run`, `runs`, `runs show`, `cancel`, `pause`, `resume`, `rerun`:
//! runs in the embedded database, no server needed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::anyhow;
use cordon_playbook::inputs::parse_text;
use cordon_runtime::{EngineError, RunRequest, StartError};
use cordon_storage::{AttemptRecord, RunRecord, Store};
use serde_json::{Value, json};

use crate::cli::{ControlArgs, RerunArgs, RunArgs, RunsArgs, RunsCommand};
use crate::database::{split_reference, with_store};
use crate::node::{Node, default_node_name};
use crate::progress::{Waited, drive_and_show, exit_code};
use crate::{Output, exit};

/// A command-line node holds a run's lease only while it drives it; a short
/// lease lets a worker take over soon after the command is interrupted.
const CLI_LEASE: Duration = Duration::from_secs(15);

/// Runs `work` with an engine node of this command (it holds a run's lease
/// only while it drives it), on a runtime of its own.
fn with_cli_node<T>(
    args: &crate::cli::NodeArgs,
    work: impl AsyncFnOnce(&Node) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    runtime()?.block_on(async {
        let node = Node::open(args, default_node_name("cli"), CLI_LEASE).await?;
        work(&node).await
    })
}

/// A runtime for commands that drive runs.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

pub fn run(args: &RunArgs, out: &mut Output) -> anyhow::Result<u8> {
    with_cli_node(&args.node, async |node| {
        let (name, version) = split_reference(&args.reference);
        let stored = match version {
            Some(v) => node.store.version(name, v).await?,
            None => node.store.latest(name).await?,
        }
        .ok_or_else(|| {
            anyhow!(
                "{} is not published (see `cordon versions {name}`)",
                args.reference
            )
        })?;
        let inputs = parse_inputs(&args.inputs, &stored.playbook)?;
        let request = RunRequest {
            playbook: stored.name.clone(),
            version: Some(stored.version.clone()),
            inputs,
            trigger: json!({"kind": "manual", "by": node.actor, "via": "cli"}),
            dry_run: args.dry_run,
        };
        let id = match node.engine.start_run(request).await {
            Ok(id) => id,
            Err(StartError::Inputs(problems)) => {
                for p in &problems {
                    writeln!(out.stderr, "error: {p}")?;
                }
                writeln!(
                    out.stderr,
                    "not started: {}@{} needs other inputs (nothing was written)",
                    stored.name, stored.version
                )?;
                return Ok(exit::USAGE);
            }
            Err(e) => return Err(e.into()),
        };
        writeln!(out.stdout, "{id}")?;
        if !args.wait {
            writeln!(
                out.stderr,
                "run {id} queued: {}@{}; a worker (`cordon worker`) starts it, or pass --wait to drive it here",
                stored.name, stored.version
            )?;
            return Ok(exit::OK);
        }
        finish(node, &id, out).await
    })
}

/// Drives a run here until it finishes and turns its outcome into an exit code.
async fn finish(node: &Node, id: &str, out: &mut Output) -> anyhow::Result<u8> {
    match drive_and_show(node, id).await? {
        Waited::Finished(status) => {
            // A signed checkpoint at the end of each run.
            if let Err(e) = crate::audit::Auditor::open()?.checkpoint(&node.store).await {
                writeln!(out.stderr, "warning: no audit checkpoint signed: {e:#}")?;
            }
            Ok(exit_code(status))
        }
        Waited::Interrupted(status) => {
            writeln!(
                out.stderr,
                "stopped waiting; run {id} is {status} and goes on with any worker"
            )?;
            Ok(exit::INTERRUPTED)
        }
    }
}

/// `NAME=VALUE` pairs, each value read as the input's declared type (an
/// undeclared name is kept as text so the engine reports it with the rest).
fn parse_inputs(
    pairs: &[String],
    playbook: &cordon_playbook::model::Playbook,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut inputs = BTreeMap::new();
    for pair in pairs {
        let (name, text) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--input takes NAME=VALUE, not `{pair}`"))?;
        let value = match playbook.inputs.get(name) {
            Some(spec) => parse_text(spec.kind, text),
            None => Value::String(text.to_string()),
        };
        if inputs.insert(name.to_string(), value).is_some() {
            return Err(anyhow!("input `{name}` is given twice"));
        }
    }
    Ok(inputs)
}

pub fn runs(args: &RunsArgs, out: &mut Output) -> anyhow::Result<u8> {
    if let Some(RunsCommand::Show { id, json, database }) = &args.command {
        return with_store(database, async |store| show(store, id, *json, out).await);
    }
    for state in &args.states {
        if !cordon_runtime::run_state::RunStatus::ALL
            .iter()
            .any(|s| s.as_str() == state)
        {
            return Err(anyhow!(
                "`{state}` is not a run state (queued, running, waiting, paused, compensating, succeeded, failed, cancelled)"
            ));
        }
    }
    with_store(&args.database, async |store| {
        let states: Vec<&str> = args.states.iter().map(String::as_str).collect();
        let runs = store.runs(&states, args.limit).await?;
        if args.json {
            let rows: Vec<Value> = runs
                .iter()
                .map(|r| json!({"id": r.id, "playbook": r.playbook, "version": r.version, "status": r.status, "created_at": r.created_at}))
                .collect();
            writeln!(out.stdout, "{}", serde_json::to_string_pretty(&rows)?)?;
            return Ok(exit::OK);
        }
        if runs.is_empty() {
            writeln!(out.stderr, "no runs")?;
            return Ok(exit::OK);
        }
        writeln!(
            out.stdout,
            "{:<36}  {:<13} {:<20} PLAYBOOK",
            "ID", "STATE", "CREATED"
        )?;
        for r in runs {
            writeln!(
                out.stdout,
                "{:<36}  {:<13} {:<20} {}@{}",
                r.id,
                r.status,
                r.created_at.format("%Y-%m-%d %H:%M:%S"),
                r.playbook,
                r.version
            )?;
        }
        Ok(exit::OK)
    })
}

/// `cordon runs show ID`.
async fn show(store: &Store, id: &str, as_json: bool, out: &mut Output) -> anyhow::Result<u8> {
    let record = store
        .run(id)
        .await?
        .ok_or_else(|| anyhow!("no run `{id}` (see `cordon runs`)"))?;
    let attempts = store.attempts(id).await?;
    if as_json {
        writeln!(
            out.stdout,
            "{}",
            serde_json::to_string_pretty(&run_json(&record, &attempts))?
        )?;
        return Ok(exit::OK);
    }
    let o = &mut out.stdout;
    writeln!(o, "run       {}", record.id)?;
    writeln!(
        o,
        "playbook  {}@{} ({})",
        record.playbook, record.version, record.digest
    )?;
    writeln!(o, "state     {}", describe(&record.state.state))?;
    writeln!(o, "created   {}", record.created_at.to_rfc3339())?;
    writeln!(o, "updated   {}", record.updated_at.to_rfc3339())?;
    if record.dry_run {
        writeln!(o, "dry run   yes: plugins record what they would do")?;
        writeln!(o, "plan")?;
        for line in crate::progress::plan(&record) {
            writeln!(o, "  {line}")?;
        }
    }
    writeln!(o, "trigger   {}", record.trigger)?;
    writeln!(o, "inputs    {}", serde_json::to_string(&record.inputs)?)?;
    writeln!(
        o,
        "\nSTEP                      STATE          ATTEMPTS  DETAIL"
    )?;
    for step in &record.steps {
        writeln!(
            o,
            "{:<25} {:<14} {:<9} {}",
            step.key,
            step.state.status,
            step.attempt,
            describe(&step.state.state)
        )?;
    }
    if !attempts.is_empty() {
        writeln!(
            o,
            "\nATTEMPT (idempotency key)                                   STATE        NODE                 TOOK     ERROR"
        )?;
        for a in &attempts {
            let took = a.finished_at.map_or_else(
                || "-".to_string(),
                |f| format!("{:.3}s", (f - a.started_at).as_seconds_f64()),
            );
            let error = a
                .state
                .state
                .get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("");
            writeln!(
                o,
                "{:<59} {:<12} {:<20} {:<8} {error}",
                a.idempotency_key, a.state.status, a.node, took
            )?;
        }
    }
    Ok(exit::OK)
}

/// One line about a stored state: its reason, message or times, whatever
/// it holds. A nested record with one field shows as its value
/// (`reason=run_ended`), a larger one in parentheses.
fn describe(state: &Value) -> String {
    let Value::Object(fields) = state else {
        return String::new();
    };
    let mut parts = Vec::new();
    for (name, value) in fields {
        if name == "state" {
            continue;
        }
        let shown = match value {
            Value::String(s) => s.clone(),
            Value::Object(inner) if inner.len() == 1 => match inner.values().next() {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            },
            Value::Object(_) => format!("({})", describe(value)),
            other => other.to_string(),
        };
        parts.push(format!("{name}={shown}"));
    }
    parts.join(" ")
}

fn run_json(record: &RunRecord, attempts: &[AttemptRecord]) -> Value {
    json!({
        "id": record.id,
        "playbook": record.playbook,
        "version": record.version,
        "digest": record.digest,
        "status": record.state.status,
        "state": record.state.state,
        "inputs": record.inputs,
        "trigger": record.trigger,
        "dry_run": record.dry_run,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "steps": record.steps.iter().map(|s| json!({
            "key": s.key,
            "status": s.state.status,
            "state": s.state.state,
            "attempt": s.attempt,
            "outputs": s.outputs,
            "updated_at": s.updated_at,
        })).collect::<Vec<_>>(),
        "attempts": attempts.iter().map(|a| json!({
            "step": a.step,
            "number": a.number,
            "idempotency_key": a.idempotency_key,
            "status": a.state.status,
            "state": a.state.state,
            "node": a.node,
            "started_at": a.started_at,
            "finished_at": a.finished_at,
        })).collect::<Vec<_>>(),
    })
}

/// What a person does to a run.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    Cancel,
    Pause,
    Resume,
}

impl Control {
    fn verb(self) -> &'static str {
        match self {
            Control::Cancel => "cancel",
            Control::Pause => "pause",
            Control::Resume => "resume",
        }
    }
}

pub fn control(args: &ControlArgs, action: Control, out: &mut Output) -> anyhow::Result<u8> {
    with_cli_node(&args.node, async |node| {
        let before = node
            .store
            .run(&args.id)
            .await?
            .ok_or_else(|| anyhow!("no run `{}` (see `cordon runs`)", args.id))?;
        let result = match action {
            Control::Cancel => node.engine.cancel(&args.id, &node.actor).await,
            Control::Pause => node.engine.pause(&args.id, &node.actor).await,
            Control::Resume => node.engine.resume(&args.id, &node.actor).await,
        };
        let status = result.map_err(refusal)?;
        let verb = action.verb();
        if status.as_str() == before.state.status {
            writeln!(
                out.stderr,
                "run {} is {}: nothing to {verb}",
                args.id, before.state.status
            )?;
        } else {
            writeln!(
                out.stderr,
                "run {}: {} -> {}",
                args.id,
                before.state.status,
                status.as_str()
            )?;
        }
        writeln!(out.stdout, "{}", status.as_str())?;
        if args.wait && !status.is_terminal() {
            return finish(node, &args.id, out).await;
        }
        Ok(exit::OK)
    })
}

pub fn rerun(args: &RerunArgs, out: &mut Output) -> anyhow::Result<u8> {
    with_cli_node(&args.node, async |node| {
        let id = node
            .engine
            .rerun(&args.id, &args.from, &node.actor)
            .await
            .map_err(refusal)?;
        writeln!(out.stdout, "{id}")?;
        writeln!(
            out.stderr,
            "run {id} queued: a rerun of {} from step `{}`",
            args.id, args.from
        )?;
        if args.wait {
            return finish(node, &id, out).await;
        }
        Ok(exit::OK)
    })
}

/// Engine refusals become plain messages (exit 2); storage failures keep their cause.
fn refusal(e: EngineError) -> anyhow::Error {
    match e {
        EngineError::UnknownRun(id) => anyhow!("no run `{id}` (see `cordon runs`)"),
        other => other.into(),
    }
}
