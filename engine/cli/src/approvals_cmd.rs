//! `cordon approvals [ID]`, `cordon approve ID`, `cordon deny ID`: approval
//! gates from a terminal, against the embedded database or a server
//! (`--server`). Before deciding, the command shows the plan the gate
//! guards as it is now, and decides on exactly that plan's digest (or on
//! `--digest`, the one you reviewed earlier): if the plan changed, the
//! decision is refused and nothing is written.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::anyhow;
use cordon_runtime::approval::{ApprovalError, Ballot, Person, Verdict};
use cordon_server::{ApprovalView, DecideBody, DecisionOutcome};
use cordon_storage::ApprovalFilter;
use serde_json::Value;

use crate::cli::{ApprovalsArgs, DecideArgs};
use crate::client::{Client, ClientError, report};
use crate::config::Config;
use crate::node::{Node, default_node_name};
use crate::{Output, exit};

/// How long a CLI node would hold a lease (it drives nothing here).
const CLI_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

/// `cordon approvals [ID]`.
pub fn list(args: &ApprovalsArgs, out: &mut Output) -> anyhow::Result<u8> {
    let status = match args.status.as_deref() {
        None => Some("pending".to_string()),
        Some("all") => None,
        Some(s) => Some(s.to_string()),
    };
    runtime()?.block_on(async {
        let views: Vec<ApprovalView> = if let Some(client) = Client::from_args(&args.remote)? {
            let result = match &args.id {
                Some(id) => client.get(&["approvals", id], &[]).await.map(|v| vec![v]),
                None => {
                    let mut query =
                        vec![("status", status.clone().unwrap_or_else(|| "all".into()))];
                    if let Some(run) = &args.run {
                        query.push(("run", run.clone()));
                    }
                    client.get(&["approvals"], &query).await
                }
            };
            match result {
                Ok(views) => views,
                Err(e) => return report(&e, out),
            }
        } else {
            let node = Node::open(&args.node, default_node_name("cli"), CLI_LEASE).await?;
            match &args.id {
                Some(id) => match node.engine.approval(id).await {
                    Ok(record) => vec![record.into()],
                    Err(e) => return refused(&e, out),
                },
                None => {
                    let filter = ApprovalFilter {
                        status,
                        run: args.run.clone(),
                    };
                    let mut views = Vec::new();
                    for record in node.store.approvals(&filter).await? {
                        let record = if record.is_pending() {
                            // Pending ones through the engine: their plan is re-checked.
                            match node.engine.approval(&record.id).await {
                                Ok(r) => r,
                                Err(e) => return refused(&e, out),
                            }
                        } else {
                            record
                        };
                        views.push(record.into());
                    }
                    views
                }
            }
        };
        if args.json {
            let json = match &args.id {
                Some(_) => serde_json::to_string_pretty(&views.first())?,
                None => serde_json::to_string_pretty(&views)?,
            };
            writeln!(out.stdout, "{json}")?;
        } else if args.id.is_some() {
            for view in &views {
                describe(view, &mut out.stdout)?;
            }
        } else if views.is_empty() {
            writeln!(out.stderr, "no approval requests")?;
        } else {
            for v in &views {
                writeln!(
                    out.stdout,
                    "{}  {:<9} {}/{}  run {} gate {}  {}{}",
                    v.id,
                    v.status,
                    v.approvals,
                    v.min,
                    v.run,
                    v.step,
                    v.message,
                    v.deadline
                        .map(|d| format!("  (before {})", d.format("%Y-%m-%d %H:%M UTC")))
                        .unwrap_or_default()
                )?;
            }
        }
        Ok(exit::OK)
    })
}

/// One request in words: the question, who decides, the plan, the decisions.
fn describe(v: &ApprovalView, to: &mut String) -> anyhow::Result<()> {
    writeln!(
        to,
        "approval {}: {} ({} of {} approvals)",
        v.id, v.status, v.approvals, v.min
    )?;
    writeln!(
        to,
        "  run {}, gate {}, started by {}",
        v.run,
        v.step,
        v.initiator.as_deref().unwrap_or("a trigger")
    )?;
    writeln!(to, "  question: {}", v.message)?;
    writeln!(to, "  approvers: {}", v.approvers)?;
    if let Some(deadline) = v.deadline {
        writeln!(
            to,
            "  decide before: {}",
            deadline.format("%Y-%m-%d %H:%M:%S UTC")
        )?;
    }
    if v.require_comment {
        writeln!(to, "  a comment is required")?;
    }
    if v.input.as_object().is_some_and(|o| !o.is_empty()) {
        writeln!(to, "  input asked for (--input NAME=VALUE): {}", v.input)?;
    }
    writeln!(to, "  plan {}:", v.plan_digest)?;
    for step in v.plan["steps"].as_array().into_iter().flatten() {
        let what = cordon_server::plan_step_action(step);
        write!(to, "    {}  {what}", step["id"].as_str().unwrap_or(""))?;
        if let Some(with) = step.get("with") {
            write!(to, "  with {with}")?;
        }
        if let Some(items) = step.get("foreach") {
            write!(to, "  for each of {items}")?;
        }
        writeln!(to)?;
    }
    let devices: Vec<&str> = v.plan["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    writeln!(
        to,
        "  devices touched ({}): {}",
        devices.len(),
        devices.join(", ")
    )?;
    for d in &v.decisions {
        writeln!(
            to,
            "  {} {}s via {} at {}{}{}",
            d.user,
            d.verdict,
            d.channel,
            d.decided_at.format("%Y-%m-%d %H:%M:%S"),
            d.comment
                .as_deref()
                .map(|c| format!(": {c}"))
                .unwrap_or_default(),
            if d.plan_digest == v.plan_digest {
                ""
            } else {
                " (on an earlier plan: does not count)"
            }
        )?;
    }
    if let Some(outcome) = &v.outcome {
        writeln!(to, "  outcome: {outcome}")?;
    }
    Ok(())
}

/// `NAME=VALUE` pairs.
fn pairs(inputs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    inputs
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--input takes NAME=VALUE, not `{pair}`"))
        })
        .collect()
}

/// `cordon approve ID` / `cordon deny ID`.
pub fn decide(args: &DecideArgs, verdict: Verdict, out: &mut Output) -> anyhow::Result<u8> {
    let text_input = pairs(&args.input)?;
    runtime()?.block_on(async {
        if let Some(client) = Client::from_args(&args.remote)? {
            let view: ApprovalView = match client.get(&["approvals", &args.id], &[]).await {
                Ok(v) => v,
                Err(e) => return report(&e, out),
            };
            describe(&view, &mut out.stderr)?;
            let body = DecideBody {
                plan_digest: args
                    .digest
                    .clone()
                    .unwrap_or_else(|| view.plan_digest.clone()),
                comment: args.comment.clone(),
                input: cordon_runtime::approval::typed_input(&view.input, &text_input),
            };
            let verb = match verdict {
                Verdict::Approve => "approve",
                Verdict::Deny => "deny",
            };
            let outcome: Result<DecisionOutcome, ClientError> =
                client.post(&["approvals", &args.id, verb], &body).await;
            return match outcome {
                Ok(o) => decided(out, verdict, &o.status, o.approvals, o.min),
                Err(e) => report(&e, out),
            };
        }
        let config = Config::read(args.node.catalog.config.as_deref())?;
        let node = Node::open(&args.node, default_node_name("cli"), CLI_LEASE).await?;
        let request = match node.engine.approval(&args.id).await {
            Ok(r) => r,
            Err(e) => return refused(&e, out),
        };
        let spec = request.input.clone();
        let view: ApprovalView = request.into();
        describe(&view, &mut out.stderr)?;
        // The directory of the configuration says which groups and roles
        // the person has; someone not in it is known by name only.
        let entry = config.users.user(&node.actor).cloned().unwrap_or_default();
        let person = Person {
            user: node.actor.clone(),
            groups: entry.groups,
            roles: entry.roles,
        };
        let ballot = Ballot {
            request: args.id.clone(),
            verdict,
            comment: args.comment.clone(),
            input: cordon_runtime::approval::typed_input(&spec, &text_input),
            plan_digest: args.digest.clone().unwrap_or(view.plan_digest),
            channel: "cli".into(),
            link: None,
        };
        match node.engine.decide_approval(&person, &ballot).await {
            Ok(s) => decided(out, verdict, &s.status, s.approvals, s.min),
            Err(e) => refused(&e, out),
        }
    })
}

fn decided(
    out: &mut Output,
    verdict: Verdict,
    status: &str,
    approvals: u32,
    min: u32,
) -> anyhow::Result<u8> {
    writeln!(
        out.stderr,
        "{} recorded: the request is {status} ({approvals} of {min} approvals)",
        match verdict {
            Verdict::Approve => "approval",
            Verdict::Deny => "denial",
        }
    )?;
    writeln!(out.stdout, "{status}")?;
    Ok(exit::OK)
}

/// A refused decision: `error[code]: message`, exit 2 (nothing was written).
fn refused(e: &ApprovalError, out: &mut Output) -> anyhow::Result<u8> {
    if let ApprovalError::Engine(inner) = e {
        return Err(anyhow!("{inner}"));
    }
    writeln!(out.stderr, "error[{}]: {e}", e.code())?;
    Ok(exit::USAGE)
}
