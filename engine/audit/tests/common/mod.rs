//! The test log shared by the export tests: 50 chained events from several
//! actors, checkpoints signed by a fixed key, whole and partial exports.

// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]

use chrono::{Duration, TimeZone, Utc};
use cordon_audit::{
    Checkpoint, Event, ExportLine, GENESIS_PREV, InclusionProof, NoteSigner, Report, Tree,
    VerifyError, verify_export,
};
use ed25519_dalek::SigningKey;
use serde_json::json;

pub const ORIGIN: &str = "cordon.example/audit";

pub fn signer(seed: u8) -> NoteSigner {
    NoteSigner::new(ORIGIN, SigningKey::from_bytes(&[seed; 32])).expect("signer")
}

/// `n` chained events, from several actors about several runs.
pub fn log(n: u64) -> Vec<Event> {
    let start = Utc
        .with_ymd_and_hms(2026, 11, 25, 8, 0, 0)
        .single()
        .expect("time");
    let mut prev = GENESIS_PREV.to_string();
    let mut events = Vec::new();
    for seq in 0..n {
        let event = Event {
            seq,
            time: start + Duration::milliseconds(1234 * seq as i64 + 7),
            actor: ["user:alice", "node:worker-1", "webhook:alertmanager"][seq as usize % 3].into(),
            kind: [
                "run.created",
                "step.succeeded",
                "attempt.started",
                "timer.armed",
            ][seq as usize % 4]
                .into(),
            run: (seq % 5 != 4).then(|| format!("run-{}", seq / 10)),
            step: (seq % 2 == 1).then(|| format!("isolate[plc-{seq}]")),
            device: (seq % 2 == 1).then(|| format!("plc-{seq}")),
            data: json!({
                "attempt": seq,
                "note": "quarantine — ünïcode \"quoted\" \n newline",
                "nested": {"z": [1, 2.5, null, true], "a": {"deep": seq * 3}},
            }),
            prev,
        };
        prev = event.next_prev();
        events.push(event);
    }
    events
}

pub fn checkpoint_line(events: &[Event], size: u64, signer: &NoteSigner) -> ExportLine {
    let leaves: Vec<_> = events.iter().map(Event::leaf).collect();
    let checkpoint = Checkpoint {
        origin: ORIGIN.into(),
        size,
        root: Tree::from_leaves(&leaves).root_at(size).expect("root"),
    };
    ExportLine::Checkpoint {
        note: checkpoint.sign(signer),
    }
}

pub const SIZES: [u64; 5] = [1, 7, 16, 33, 50];

/// The whole log, then its checkpoints (as `cordon audit export` writes it).
pub fn whole(events: &[Event], sizes: &[u64]) -> Vec<ExportLine> {
    let mut lines: Vec<ExportLine> = events
        .iter()
        .map(|e| ExportLine::event(e.clone(), None))
        .collect();
    lines.extend(
        sizes
            .iter()
            .map(|&s| checkpoint_line(events, s, &signer(1))),
    );
    lines
}

/// The chosen events with inclusion proofs against the checkpoint of
/// `size`, then that checkpoint.
pub fn partial(events: &[Event], seqs: impl Iterator<Item = u64>, size: u64) -> Vec<ExportLine> {
    let tree = Tree::from_leaves(&events.iter().map(Event::leaf).collect::<Vec<_>>());
    let mut lines: Vec<ExportLine> = seqs
        .map(|seq| {
            let proof = tree.inclusion_proof(seq, size).expect("proof");
            ExportLine::event(
                events[seq as usize].clone(),
                Some(InclusionProof::new(size, &proof)),
            )
        })
        .collect();
    lines.push(checkpoint_line(events, size, &signer(1)));
    lines
}

pub fn verify(lines: &[ExportLine]) -> Result<Report, VerifyError> {
    verify_export(lines, &signer(1).verifier())
}
