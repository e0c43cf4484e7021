//! The JSON Lines export format and its offline verifier.
//!
//! An export is a sequence of lines, each an [`ExportLine`]: events (with
//! their recorded leaf hash and, optionally, an inclusion proof) and signed
//! checkpoints. Two shapes verify:
//!
//! - **Whole log** (no event carries a proof): events seq 0, 1, 2, … in
//!   order. The verifier follows the `prev` chain from the genesis, rebuilds
//!   the Merkle tree and checks every checkpoint's root against it, and each
//!   checkpoint's consistency with the previous one. A checkpoint larger
//!   than the export means its tail was cut off (so an export with a
//!   checkpoint and no events at all fails as truncated).
//! - **Partial** (at least one event carries a proof; for example one run's
//!   events): events in increasing seq order, each with an inclusion proof
//!   against a checkpoint in the same export. `prev` links are checked
//!   between consecutive seqs only.
//!
//! Either way every checkpoint must carry a valid signature by the given
//! key, and two checkpoints of one size must agree on the root.
//!
//! What no offline check can see: a tail cut off together with every
//! checkpoint covering it. Compare [`Report::latest`] with a checkpoint kept
//! elsewhere (a witness, another sink) to close that gap.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, open_checkpoint};
use crate::event::{Event, GENESIS_PREV};
use crate::merkle::{Hash, Tree};
use crate::note::{NoteError, NoteVerifier};
use crate::proof::{verify_consistency, verify_inclusion};
use crate::verify_error::VerifyError;

/// One line of an export.
// The event variant is much larger than the checkpoint one; boxing it would
// change the constructor every caller writes, for no gain: exports are
// mostly events.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ExportLine {
    /// An event.
    Event {
        /// The event.
        event: Event,
        /// Its leaf hash as recorded when it was appended (hex).
        leaf: String,
        /// Its inclusion proof, in partial exports.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        proof: Option<InclusionProof>,
    },
    /// A signed checkpoint note.
    Checkpoint {
        /// The note (c2sp.org/tlog-checkpoint).
        note: String,
    },
}

impl ExportLine {
    /// An event line, with the event's leaf hash computed now.
    pub fn event(event: Event, proof: Option<InclusionProof>) -> ExportLine {
        let leaf = event.next_prev();
        ExportLine::Event { event, leaf, proof }
    }
}

/// An inclusion proof against the checkpoint of `size` in the same export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// The tree size of the checkpoint the proof is against.
    pub size: u64,
    /// The proof's hashes, bottom up (hex).
    pub hashes: Vec<String>,
}

impl InclusionProof {
    /// A proof against the tree of `size` leaves, from its hashes.
    pub fn new(size: u64, hashes: &[Hash]) -> InclusionProof {
        InclusionProof {
            size,
            hashes: hashes.iter().map(hex::encode).collect(),
        }
    }
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Event lines.
    pub events: u64,
    /// Checkpoint lines.
    pub checkpoints: u64,
    /// The first event's seq.
    pub first_seq: Option<u64>,
    /// The last event's seq.
    pub last_seq: Option<u64>,
    /// Whether the export was verified as the whole log: contiguous from seq
    /// 0, chained, and every checkpoint recomputed from it. False for a
    /// partial export, even one that happens to start at seq 0.
    pub complete: bool,
    /// Events no checkpoint in the export covers (a whole log's events after
    /// its largest checkpoint): chained, but vouched for by no signature.
    /// Always 0 for a partial export, where every event is proven.
    pub uncovered: u64,
    /// The largest checkpoint in the export, if any.
    pub latest: Option<Checkpoint>,
}

/// An event line, read.
struct Seen<'a> {
    line: usize,
    event: &'a Event,
    leaf: Hash,
    proof: Option<&'a InclusionProof>,
}

/// A checkpoint line, opened.
struct Signed {
    line: usize,
    checkpoint: Checkpoint,
}

fn parse_hash(text: &str) -> Option<Hash> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// Verifies an export (see the module documentation for the rules).
///
/// `lines[i]` is called line `i + 1` in errors: the line number in the file
/// when each element is one line and none were skipped. Events must also be
/// representable exactly ([`Event::check_exact`]). Never panics, whatever
/// the lines hold.
pub fn verify_export(lines: &[ExportLine], verifier: &NoteVerifier) -> Result<Report, VerifyError> {
    let Read {
        events,
        checkpoints,
        checkpoint_lines,
    } = read_lines(lines, verifier)?;
    // A proof anywhere marks the export as partial; whole-log exports need
    // none, since every root is recomputed from the events.
    let partial = events.iter().any(|e| e.proof.is_some());
    check_chain(&events, partial)?;
    let uncovered = if partial {
        check_proofs(&events, &checkpoints)?;
        0
    } else {
        check_whole_log(&events, &checkpoints)?
    };
    Ok(Report {
        events: events.len() as u64,
        checkpoints: checkpoint_lines,
        first_seq: events.first().map(|e| e.event.seq),
        last_seq: events.last().map(|e| e.event.seq),
        complete: !partial,
        uncovered,
        latest: checkpoints
            .values()
            .next_back()
            .map(|s| s.checkpoint.clone()),
    })
}

/// The lines, read one by one.
struct Read<'a> {
    events: Vec<Seen<'a>>,
    /// One per size (repeats of a checkpoint are dropped).
    checkpoints: BTreeMap<u64, Signed>,
    checkpoint_lines: u64,
}

/// Checks each line on its own: every event's leaf is the hash of the event,
/// every checkpoint is validly signed, and no two checkpoints of one size
/// disagree.
fn read_lines<'a>(
    lines: &'a [ExportLine],
    verifier: &NoteVerifier,
) -> Result<Read<'a>, VerifyError> {
    let mut events = Vec::new();
    let mut checkpoints: BTreeMap<u64, Signed> = BTreeMap::new();
    let mut checkpoint_lines = 0;
    for (index, item) in lines.iter().enumerate() {
        let line = index + 1;
        match item {
            ExportLine::Event { event, leaf, proof } => {
                let recorded = parse_hash(leaf).ok_or_else(|| VerifyError::Malformed {
                    line,
                    reason: format!("event {}: its leaf hash is not 64 hex digits", event.seq),
                })?;
                let actual = event.leaf();
                if actual != recorded {
                    return Err(VerifyError::LeafMismatch {
                        line,
                        seq: event.seq,
                        recorded: leaf.clone(),
                        actual: hex::encode(actual),
                    });
                }
                // A number the canonical form rounds could be changed without
                // changing the leaf: refuse what the hash does not pin down.
                event.check_exact().map_err(|why| VerifyError::Malformed {
                    line,
                    reason: format!(
                        "event {}: {why}, so its leaf hash does not cover it",
                        event.seq
                    ),
                })?;
                events.push(Seen {
                    line,
                    event,
                    leaf: actual,
                    proof: proof.as_ref(),
                });
            }
            ExportLine::Checkpoint { note } => {
                checkpoint_lines += 1;
                let checkpoint =
                    open_checkpoint(note, verifier).map_err(|reason| note_error(line, reason))?;
                match checkpoints.entry(checkpoint.size) {
                    Entry::Occupied(first) if first.get().checkpoint.root != checkpoint.root => {
                        return Err(VerifyError::Equivocation {
                            line,
                            first_line: first.get().line,
                            size: checkpoint.size,
                        });
                    }
                    Entry::Occupied(_) => {}
                    Entry::Vacant(slot) => {
                        slot.insert(Signed { line, checkpoint });
                    }
                }
            }
        }
    }
    Ok(Read {
        events,
        checkpoints,
        checkpoint_lines,
    })
}

fn note_error(line: usize, reason: NoteError) -> VerifyError {
    if reason.is_signature_error() {
        VerifyError::BadSignature { line, reason }
    } else {
        VerifyError::Malformed {
            line,
            reason: format!("checkpoint: {reason}"),
        }
    }
}

/// Checks seq order and `prev` links. In a whole-log export seqs run 0, 1,
/// 2, … with no gap; in a partial one they increase, and the proofs stand
/// in for the events between.
fn check_chain(events: &[Seen<'_>], partial: bool) -> Result<(), VerifyError> {
    let mut previous: Option<&Seen<'_>> = None;
    for e in events {
        if let Some(reason) = chain_fault(previous, e, partial) {
            return Err(VerifyError::BrokenChain {
                line: e.line,
                seq: e.event.seq,
                reason,
            });
        }
        previous = Some(e);
    }
    Ok(())
}

/// What is wrong with event `e` coming after `previous`, if anything.
fn chain_fault(previous: Option<&Seen<'_>>, e: &Seen<'_>, partial: bool) -> Option<String> {
    let seq = e.event.seq;
    let Some(p) = previous else {
        return if seq == 0 {
            (e.event.prev != GENESIS_PREV)
                .then(|| "the first event's prev must be 64 zeros".to_string())
        } else {
            (!partial).then(|| format!("a whole-log export starts at seq 0, this one at {seq}: its first events are missing"))
        };
    };
    let before = p.event.seq;
    if seq <= before {
        return Some(format!(
            "follows event {before}: events are out of order or repeated"
        ));
    }
    if seq == before + 1 {
        let expected = hex::encode(p.leaf);
        return (e.event.prev != expected)
            .then(|| format!("its prev is not the leaf hash of event {before} ({expected})"));
    }
    (!partial).then(|| {
        format!(
            "follows event {before}: events {}..{seq} are missing",
            before + 1
        )
    })
}

/// A partial export: every event proven included in a checkpoint of the
/// export.
fn check_proofs(
    events: &[Seen<'_>],
    checkpoints: &BTreeMap<u64, Signed>,
) -> Result<(), VerifyError> {
    for e in events {
        let seq = e.event.seq;
        let bad = |reason: String| VerifyError::BadProof {
            line: e.line,
            seq,
            reason,
        };
        let proof = e.proof.ok_or_else(|| {
            bad(
                "a partial export needs an inclusion proof for every event; this one has none"
                    .into(),
            )
        })?;
        let signed = checkpoints.get(&proof.size).ok_or_else(|| {
            bad(format!(
                "its proof is against size {}, but no checkpoint of that size is in the export",
                proof.size
            ))
        })?;
        let mut hashes = Vec::with_capacity(proof.hashes.len());
        for (i, text) in proof.hashes.iter().enumerate() {
            hashes.push(parse_hash(text).ok_or_else(|| VerifyError::Malformed {
                line: e.line,
                reason: format!("event {seq}: proof hash {i} is not 64 hex digits"),
            })?);
        }
        verify_inclusion(seq, proof.size, &e.leaf, &hashes, &signed.checkpoint.root).map_err(
            |err| {
                bad(format!(
                    "its inclusion proof against the checkpoint at size {} (line {}) fails: {err}",
                    proof.size, signed.line
                ))
            },
        )?;
    }
    Ok(())
}

/// A whole-log export: every checkpoint recomputed from the events and
/// consistent with the previous one. Returns how many events follow the
/// largest checkpoint.
fn check_whole_log(
    events: &[Seen<'_>],
    checkpoints: &BTreeMap<u64, Signed>,
) -> Result<u64, VerifyError> {
    let count = events.len() as u64;
    // Before building anything: a checkpoint beyond the end means events
    // were cut off, whatever the rest says.
    if let Some((&size, signed)) = checkpoints.iter().find(|&(&size, _)| size > count) {
        return Err(VerifyError::Truncated {
            line: signed.line,
            size,
            events: count,
        });
    }
    let tree = Tree::from_leaves(&events.iter().map(|e| e.leaf).collect::<Vec<_>>());
    let mut previous: Option<&Signed> = None;
    for (&size, signed) in checkpoints {
        // Cannot fail: sizes beyond the events were refused above.
        let computed = tree.root_at(size).map_err(|_| VerifyError::Truncated {
            line: signed.line,
            size,
            events: count,
        })?;
        if computed != signed.checkpoint.root {
            return Err(VerifyError::RootMismatch {
                line: signed.line,
                size,
                signed: hex::encode(signed.checkpoint.root),
                computed: hex::encode(computed),
            });
        }
        // Both roots now match the events, so the two trees are consistent
        // by construction. The proof is checked anyway, as the check a
        // witness holding only the two checkpoints would make: it guards
        // the proof code itself against a regression.
        if let Some(old) = previous.filter(|old| old.checkpoint.size > 0) {
            let old_size = old.checkpoint.size;
            let inconsistent = |reason: String| VerifyError::Inconsistent {
                line: signed.line,
                new_size: size,
                old_line: old.line,
                old_size,
                reason,
            };
            let proof = tree
                .consistency_proof(old_size, size)
                .map_err(|err| inconsistent(err.to_string()))?;
            verify_consistency(
                old_size,
                size,
                &old.checkpoint.root,
                &signed.checkpoint.root,
                &proof,
            )
            .map_err(|err| inconsistent(err.to_string()))?;
        }
        previous = Some(signed);
    }
    let covered = checkpoints.keys().next_back().copied().unwrap_or(0);
    Ok(count.saturating_sub(covered))
}
