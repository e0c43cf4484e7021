//! `cordon run`, `runs`, `runs show`, `cancel`, `pause`, `resume`, `rerun`:
//! runs in the embedded database, no server needed — or, with `--server`,
//! through a server's API (`client.rs`), printing the same output.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use anyhow::anyhow;
use cordon_playbook::inputs::parse_text;
use cordon_playbook::model::InputSpec;
use cordon_runtime::{EngineError, RunRequest, StartError};
use cordon_server::views::{RunSummaryView, RunView, StartRun, secret_inputs};
use cordon_storage::Store;
use serde_json::{Value, json};

use crate::cli::{ControlArgs, RerunArgs, RunArgs, RunsArgs, RunsCommand};
use crate::client::{Client, report};
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
    if let Some(client) = Client::from_args(&args.remote)? {
        return remote_run(&client, args, out);
    }
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
        let inputs = parse_inputs(&args.inputs, &stored.playbook.inputs)?;
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

/// `cordon run --server`: the server's node starts it.
fn remote_run(client: &Client, args: &RunArgs, out: &mut Output) -> anyhow::Result<u8> {
    if args.wait {
        return Err(anyhow!(
            "--wait drives the run here; with --server the server drives it (follow it with `cordon runs show ID --server …`)"
        ));
    }
    remote_runtime()?.block_on(async {
        let (name, version) = split_reference(&args.reference);
        let version = match client.version(name, version).await {
            Ok(v) => v,
            Err(e) => return report(&e, out),
        };
        let request = StartRun {
            inputs: parse_inputs(&args.inputs, &client.inputs(&version).await?)?,
            playbook: version.name,
            version: Some(version.version),
            dry_run: args.dry_run,
        };
        let started = match client.start_run(&request).await {
            Ok(started) => started,
            Err(e) => return report(&e, out),
        };
        writeln!(out.stdout, "{}", started.id)?;
        writeln!(
            out.stderr,
            "run {} queued: {}@{}; the server's node starts it",
            started.id, started.playbook, started.version
        )?;
        Ok(exit::OK)
    })
}

/// A small runtime for a client call.
fn remote_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `NAME=VALUE` pairs, each value read as the input's declared type (an
/// undeclared name is kept as text so the engine reports it with the rest).
fn parse_inputs(
    pairs: &[String],
    declared: &BTreeMap<String, InputSpec>,
) -> anyhow::Result<BTreeMap<String, Value>> {
    let mut inputs = BTreeMap::new();
    for pair in pairs {
        let (name, text) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--input takes NAME=VALUE, not `{pair}`"))?;
        let value = match declared.get(name) {
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
    if let Some(RunsCommand::Show {
        id,
        json,
        database,
        remote,
    }) = &args.command
    {
        if let Some(client) = Client::from_args(remote)? {
            return remote_runtime()?.block_on(async {
                match client.run(id).await {
                    Ok(view) => show(&view, *json, out),
                    Err(e) => report(&e, out),
                }
            });
        }
        return with_store(database, async |store| {
            let Some(view) = run_view(store, id).await? else {
                return Err(anyhow!("no run `{id}` (see `cordon runs`)"));
            };
            show(&view, *json, out)
        });
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
    let runs = if let Some(client) = Client::from_args(&args.remote)? {
        match remote_runtime()?.block_on(client.runs(&args.states, args.limit)) {
            Ok(runs) => runs,
            Err(e) => return report(&e, out),
        }
    } else {
        with_store(&args.database, async |store| {
            let states: Vec<&str> = args.states.iter().map(String::as_str).collect();
            Ok(store
                .runs(&states, args.limit)
                .await?
                .into_iter()
                .map(|r| RunSummaryView {
                    id: r.id,
                    playbook: r.playbook,
                    version: r.version,
                    status: r.status,
                    created_at: r.created_at,
                })
                .collect())
        })?
    };
    list(&runs, args.json, out)
}

/// A run listing, as a table or JSON.
fn list(runs: &[RunSummaryView], as_json: bool, out: &mut Output) -> anyhow::Result<u8> {
    if as_json {
        writeln!(out.stdout, "{}", serde_json::to_string_pretty(runs)?)?;
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
}

/// A stored run as the API shows it: secret inputs redacted.
async fn run_view(store: &Store, id: &str) -> anyhow::Result<Option<RunView>> {
    let Some(record) = store.run(id).await? else {
        return Ok(None);
    };
    let attempts = store.attempts(id).await?;
    let secrets = store
        .version(&record.playbook, &record.version)
        .await?
        .map(|v| secret_inputs(&v.playbook))
        .unwrap_or_default();
    Ok(Some(RunView::new(&record, &attempts, &secrets)))
}

/// `cordon runs show ID`: one run, whether it came from the database or a server.
fn show(run: &RunView, as_json: bool, out: &mut Output) -> anyhow::Result<u8> {
    if as_json {
        writeln!(out.stdout, "{}", serde_json::to_string_pretty(run)?)?;
        return Ok(exit::OK);
    }
    let o = &mut out.stdout;
    writeln!(o, "run       {}", run.id)?;
    writeln!(
        o,
        "playbook  {}@{} ({})",
        run.playbook, run.version, run.digest
    )?;
    writeln!(o, "state     {}", describe(&run.state))?;
    writeln!(o, "created   {}", run.created_at.to_rfc3339())?;
    writeln!(o, "updated   {}", run.updated_at.to_rfc3339())?;
    if run.dry_run {
        writeln!(o, "dry run   yes: plugins record what they would do")?;
        writeln!(o, "plan")?;
        let steps = run
            .steps
            .iter()
            .map(|s| (s.key.as_str(), s.outputs.as_ref()));
        for line in crate::progress::plan_of(steps) {
            writeln!(o, "  {line}")?;
        }
    }
    writeln!(o, "trigger   {}", run.trigger)?;
    writeln!(o, "inputs    {}", serde_json::to_string(&run.inputs)?)?;
    writeln!(
        o,
        "\nSTEP                      STATE          ATTEMPTS  DETAIL"
    )?;
    for step in &run.steps {
        writeln!(
            o,
            "{:<25} {:<14} {:<9} {}",
            step.key,
            step.status,
            step.attempt,
            describe(&step.state)
        )?;
    }
    if !run.attempts.is_empty() {
        writeln!(
            o,
            "\nATTEMPT (idempotency key)                                   STATE        NODE                 TOOK     ERROR"
        )?;
        for a in &run.attempts {
            let took = a.finished_at.map_or_else(
                || "-".to_string(),
                |f| format!("{:.3}s", (f - a.started_at).as_seconds_f64()),
            );
            let error = a
                .state
                .get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .unwrap_or("");
            writeln!(
                o,
                "{:<59} {:<12} {:<20} {:<8} {error}",
                a.idempotency_key, a.status, a.node, took
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
    if let Some(client) = Client::from_args(&args.remote)? {
        if args.wait {
            return Err(anyhow!(
                "--wait drives the run here; with --server the server drives it"
            ));
        }
        return remote_runtime()?.block_on(async {
            let outcome = match client.control(&args.id, action.verb()).await {
                Ok(outcome) => outcome,
                Err(e) => return report(&e, out),
            };
            changed(out, &args.id, action, &outcome.previous, &outcome.status)
        });
    }
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
        changed(out, &args.id, action, &before.state.status, status.as_str())?;
        if args.wait && !status.is_terminal() {
            return finish(node, &args.id, out).await;
        }
        Ok(exit::OK)
    })
}

/// What a control did: the change on stderr, the state on stdout.
fn changed(
    out: &mut Output,
    id: &str,
    action: Control,
    before: &str,
    after: &str,
) -> anyhow::Result<u8> {
    if before == after {
        writeln!(
            out.stderr,
            "run {id} is {before}: nothing to {}",
            action.verb()
        )?;
    } else {
        writeln!(out.stderr, "run {id}: {before} -> {after}")?;
    }
    writeln!(out.stdout, "{after}")?;
    Ok(exit::OK)
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
