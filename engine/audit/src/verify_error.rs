//! What [`crate::verify_export`] found wrong, with stable codes.

use crate::note::NoteError;

/// Why an export does not verify. Lines are 1-based positions in the slice
/// of export lines (one JSON line each); `seq` is the event's position in
/// the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A line that cannot be read: a leaf or proof hash that is not 64 hex
    /// digits, a checkpoint note that does not parse.
    #[error("line {line}: {reason}")]
    Malformed {
        /// The line.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// An event's recorded leaf hash is not the hash of the event as it
    /// reads now: the event was edited.
    #[error(
        "line {line}: event {seq} was changed: its leaf hash is {actual}, but {recorded} was recorded"
    )]
    LeafMismatch {
        /// The line.
        line: usize,
        /// The event's seq.
        seq: u64,
        /// The leaf hash recorded beside the event (hex).
        recorded: String,
        /// The hash of the event as it reads (hex).
        actual: String,
    },
    /// The `prev` chain or the order of seqs is broken: events were
    /// deleted, inserted, reordered or rewritten.
    #[error("line {line}: event {seq}: {reason}")]
    BrokenChain {
        /// The line.
        line: usize,
        /// The event's seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A checkpoint's root is not the root of the export's first `size`
    /// events.
    #[error(
        "line {line}: the checkpoint at size {size} signs root {signed}, but the export's first {size} events have root {computed}"
    )]
    RootMismatch {
        /// The checkpoint's line.
        line: usize,
        /// Its size.
        size: u64,
        /// The root it signs (hex).
        signed: String,
        /// The root recomputed from the events (hex).
        computed: String,
    },
    /// Two checkpoints of different sizes are not consistent: the larger
    /// tree does not extend the smaller one.
    #[error(
        "line {line}: the checkpoint at size {new_size} does not extend the one at size {old_size} (line {old_line}): {reason}"
    )]
    Inconsistent {
        /// The larger checkpoint's line.
        line: usize,
        /// Its size.
        new_size: u64,
        /// The smaller checkpoint's line.
        old_line: usize,
        /// Its size.
        old_size: u64,
        /// Why the consistency proof failed.
        reason: String,
    },
    /// Two validly signed checkpoints of the same size with different roots:
    /// the log showed two histories.
    #[error(
        "line {line}: equivocation: the checkpoint at size {size} signs another root than the one on line {first_line}"
    )]
    Equivocation {
        /// The later checkpoint's line.
        line: usize,
        /// The first checkpoint's line.
        first_line: usize,
        /// The size both sign.
        size: u64,
    },
    /// A checkpoint covers more events than a whole-log export holds: its
    /// tail was cut off.
    #[error(
        "line {line}: the export holds {events} events, but a checkpoint covers {size}: events at the end are missing"
    )]
    Truncated {
        /// The checkpoint's line.
        line: usize,
        /// Its size.
        size: u64,
        /// How many events the export holds.
        events: u64,
    },
    /// A checkpoint without a valid signature by the expected key.
    #[error("line {line}: checkpoint: {reason}")]
    BadSignature {
        /// The checkpoint's line.
        line: usize,
        /// What is wrong.
        reason: NoteError,
    },
    /// An event's inclusion proof is missing, names no checkpoint in the
    /// export, or does not verify.
    #[error("line {line}: event {seq}: {reason}")]
    BadProof {
        /// The line.
        line: usize,
        /// The event's seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
}

impl VerifyError {
    /// The stable code of this kind of failure, for scripts and docs.
    pub fn code(&self) -> &'static str {
        match self {
            VerifyError::Malformed { .. } => "audit.malformed",
            VerifyError::LeafMismatch { .. } => "audit.leaf_mismatch",
            VerifyError::BrokenChain { .. } => "audit.broken_chain",
            VerifyError::RootMismatch { .. } => "audit.root_mismatch",
            VerifyError::Inconsistent { .. } => "audit.inconsistent",
            VerifyError::Equivocation { .. } => "audit.equivocation",
            VerifyError::Truncated { .. } => "audit.truncated",
            VerifyError::BadSignature { .. } => "audit.bad_signature",
            VerifyError::BadProof { .. } => "audit.bad_proof",
        }
    }

    /// The (1-based) line the failure was found on.
    pub fn line(&self) -> usize {
        match self {
            VerifyError::Malformed { line, .. }
            | VerifyError::LeafMismatch { line, .. }
            | VerifyError::BrokenChain { line, .. }
            | VerifyError::RootMismatch { line, .. }
            | VerifyError::Inconsistent { line, .. }
            | VerifyError::Equivocation { line, .. }
            | VerifyError::Truncated { line, .. }
            | VerifyError::BadSignature { line, .. }
            | VerifyError::BadProof { line, .. } => *line,
        }
    }
}
