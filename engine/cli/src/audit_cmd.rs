//! `cordon audit export|pubkey|verify|prove|query|checkpoint`.

use std::fmt::Write as _;

use anyhow::{Context as _, anyhow, bail};
use cordon_audit::{ExportLine, InclusionProof, NoteVerifier, verify_export};
use cordon_storage::{CheckpointRecord, EventFilter, Store, StoredEvent};

use crate::audit::Auditor;
use crate::cli::{AuditCommand, AuditFilterArgs};
use crate::database::with_store;
use crate::{Output, exit};

pub fn run(command: &AuditCommand, out: &mut Output) -> anyhow::Result<u8> {
    match command {
        AuditCommand::Pubkey => {
            writeln!(out.stdout, "{}", Auditor::open()?.verifier().to_vkey())?;
            Ok(exit::OK)
        }
        AuditCommand::Checkpoint { database } => with_store(database, async |store| {
            let auditor = Auditor::open()?;
            match auditor.checkpoint(store).await? {
                Some(c) => writeln!(
                    out.stdout,
                    "signed checkpoint: {} events, root {}",
                    c.size, c.root
                )?,
                None => writeln!(out.stdout, "the newest checkpoint already covers the log")?,
            }
            Ok(exit::OK)
        }),
        AuditCommand::Export { filter } => with_store(&filter.database, async |store| {
            let lines = export(store, &event_filter(filter)?, filter.is_filtered()).await?;
            for line in lines {
                out.stdout.push_str(&serde_json::to_string(&line)?);
                out.stdout.push('\n');
            }
            Ok(exit::OK)
        }),
        AuditCommand::Prove { seq, database } => with_store(database, async |store| {
            let auditor = Auditor::open()?;
            auditor.checkpoint(store).await?;
            let checkpoint = latest(store).await?;
            let event = store
                .audit_events(&EventFilter::default())
                .await?
                .into_iter()
                .find(|e| e.event.seq == *seq)
                .ok_or_else(|| anyhow!("no audit event {seq}"))?;
            let lines = proven(store, vec![event], &checkpoint).await?;
            for line in lines {
                out.stdout.push_str(&serde_json::to_string(&line)?);
                out.stdout.push('\n');
            }
            Ok(exit::OK)
        }),
        AuditCommand::Verify { file, key } => verify(file, key, out),
        AuditCommand::Query { filter, json } => with_store(&filter.database, async |store| {
            let events = store.audit_events(&event_filter(filter)?).await?;
            if *json {
                let list: Vec<_> = events.iter().map(|e| &e.event).collect();
                out.stdout.push_str(&serde_json::to_string_pretty(&list)?);
                out.stdout.push('\n');
                return Ok(exit::OK);
            }
            writeln!(
                out.stdout,
                "{:<7} {:<24} {:<24} {:<20} {:<36} DEVICE",
                "SEQ", "TIME", "ACTOR", "KIND", "RUN/STEP"
            )?;
            for e in &events {
                let e = &e.event;
                let place = match (&e.run, &e.step) {
                    (Some(run), Some(step)) => format!("{}…/{step}", &run[..run.len().min(8)]),
                    (Some(run), None) => run.clone(),
                    _ => String::new(),
                };
                writeln!(
                    out.stdout,
                    "{:<7} {:<24} {:<24} {:<20} {:<36} {}",
                    e.seq,
                    e.time.format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                    e.actor,
                    e.kind,
                    place,
                    e.device.as_deref().unwrap_or("")
                )?;
            }
            Ok(exit::OK)
        }),
    }
}

fn event_filter(args: &AuditFilterArgs) -> anyhow::Result<EventFilter> {
    let since = args
        .since
        .as_deref()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&chrono::Utc))
                .with_context(|| {
                    format!("--since {s}: expected an RFC 3339 time such as 2026-11-25T08:00:00Z")
                })
        })
        .transpose()?;
    Ok(EventFilter {
        run: args.run.clone(),
        device: args.device.clone(),
        actor: args.actor.clone(),
        since,
        limit: args.limit,
    })
}

async fn latest(store: &Store) -> anyhow::Result<CheckpointRecord> {
    store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| anyhow!("the audit log is empty: nothing to prove"))
}

/// Each event with its inclusion proof against `checkpoint`, then the checkpoint.
async fn proven(
    store: &Store,
    events: Vec<StoredEvent>,
    checkpoint: &CheckpointRecord,
) -> anyhow::Result<Vec<ExportLine>> {
    // One tree, many proofs.
    let tree = cordon_audit::merkle::Tree::from_leaves(&store.audit_leaves(checkpoint.size).await?);
    let mut lines = Vec::new();
    for e in events.into_iter().filter(|e| e.event.seq < checkpoint.size) {
        let hashes = tree
            .inclusion_proof(e.event.seq, checkpoint.size)
            .map_err(|err| anyhow!("{err}"))?;
        lines.push(ExportLine::Event {
            event: e.event,
            leaf: e.leaf,
            proof: Some(InclusionProof {
                size: checkpoint.size,
                hashes: hashes.iter().map(hex::encode).collect(),
            }),
        });
    }
    lines.push(ExportLine::Checkpoint {
        note: checkpoint.note.clone(),
    });
    Ok(lines)
}

/// The export: a checkpoint is signed first so that every event is covered.
/// Whole log: every event and every checkpoint (verifiable from the chain
/// alone). Filtered: the matching events, each with its inclusion proof
/// against the newest checkpoint.
async fn export(
    store: &Store,
    filter: &EventFilter,
    filtered: bool,
) -> anyhow::Result<Vec<ExportLine>> {
    let auditor = Auditor::open()?;
    auditor.checkpoint(store).await?;
    let events = store.audit_events(filter).await?;
    if filtered && events.is_empty() {
        bail!("no audit event matches the filter");
    }
    if filtered {
        let checkpoint = latest(store).await?;
        return proven(store, events, &checkpoint).await;
    }
    let mut lines: Vec<ExportLine> = events
        .into_iter()
        .map(|e| ExportLine::Event {
            event: e.event,
            leaf: e.leaf,
            proof: None,
        })
        .collect();
    for checkpoint in store.checkpoints().await? {
        lines.push(ExportLine::Checkpoint {
            note: checkpoint.note,
        });
    }
    Ok(lines)
}

fn verify(file: &std::path::Path, key: &std::path::Path, out: &mut Output) -> anyhow::Result<u8> {
    let vkey =
        std::fs::read_to_string(key).with_context(|| format!("cannot read {}", key.display()))?;
    let verifier =
        NoteVerifier::parse(vkey.trim()).map_err(|e| anyhow!("{}: {e}", key.display()))?;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let mut lines = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        match serde_json::from_str::<ExportLine>(line) {
            Ok(line) => lines.push(line),
            Err(e) => {
                writeln!(
                    out.stdout,
                    "FAILED: error[audit.malformed]: line {}: {e}",
                    n + 1
                )?;
                return Ok(exit::PROBLEMS);
            }
        }
    }
    if lines.is_empty() {
        bail!("{} holds no audit lines", file.display());
    }
    match verify_export(&lines, &verifier) {
        Ok(report) => {
            writeln!(
                out.stdout,
                "OK: {} events ({}), {} checkpoints, signatures by {}",
                report.events,
                if report.complete {
                    "the whole log, chain and roots checked"
                } else {
                    "each with an inclusion proof"
                },
                report.checkpoints,
                verifier.to_vkey()
            )?;
            Ok(exit::OK)
        }
        Err(e) => {
            writeln!(out.stdout, "FAILED: error[{}]: {e}", e.code())?;
            Ok(exit::PROBLEMS)
        }
    }
}
