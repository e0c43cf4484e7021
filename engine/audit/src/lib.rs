//! Cordon's tamper-evident audit log, as pure functions: no files, no
//! database, no clock. Storage appends and signs through it; the CLI
//! verifies exports with it, offline.
//!
//! - [`event`]: one audit event and its canonical (RFC 8785) bytes. Each
//!   event's leaf hash is both its RFC 6962 leaf and the `prev` link of the
//!   next event, so the log is a hash chain and a Merkle tree at once.
//! - [`merkle`] and [`proof`]: RFC 6962 / RFC 9162 hashing, roots, and
//!   inclusion and consistency proofs (checked against transparency-dev's
//!   published test vectors).
//! - [`note`] and [`checkpoint`]: signed tree heads in the C2SP
//!   tlog-checkpoint format, Ed25519 signed notes compatible with Go's
//!   `sumdb/note` and with witnesses.
//! - [`export`]: the JSON Lines export and [`verify_export`], which detects
//!   edited, deleted, inserted and reordered events, cut-off tails, forged
//!   or equivocating checkpoints and false inclusion proofs.
//!
//! Nothing here panics on untrusted input: the verifier's every failure is a
//! [`VerifyError`] with a stable code.

pub mod checkpoint;
pub mod event;
pub mod export;
pub mod merkle;
pub mod note;
pub mod proof;
pub mod verify_error;

pub use checkpoint::{Checkpoint, open_checkpoint};
pub use event::{Event, GENESIS_PREV, MAX_EXACT_INTEGER};
pub use export::{ExportLine, InclusionProof, Report, verify_export};
pub use merkle::{
    EMPTY_ROOT, Hash, Tree, consistency_proof, inclusion_proof, leaf_hash, node_hash, root,
};
pub use note::{NoteError, NoteSigner, NoteVerifier};
pub use proof::{ProofError, root_from_inclusion_proof, verify_consistency, verify_inclusion};
pub use verify_error::VerifyError;
