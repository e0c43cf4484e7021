//! Checkpoints (c2sp.org/tlog-checkpoint): a log's signed statement "my
//! first `size` events have Merkle root `root`".
//!
//! ```text
//! cordon.example/audit
//! 20852163
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
//!
//! — cordon.example/audit Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe…
//! ```
//!
//! A log must never sign two checkpoints that are not consistent with each
//! other; a verifier holding both can prove it did.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::merkle::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier};

/// A tree head: the log's identity, its size and its root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, the first line of the note (by convention, also
    /// the signing key's name). Must be non-empty and hold no control
    /// character.
    pub origin: String,
    /// How many leaves the tree has.
    pub size: u64,
    /// The RFC 6962 root over them.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        )
    }

    /// The signed note: the body, a blank line and `signer`'s signature
    /// line.
    ///
    /// Signing cannot fail; an origin that is empty or holds a newline or
    /// another control character gives a note that [`open_checkpoint`]
    /// refuses, so choose the origin once, from configuration, and check it
    /// with [`Checkpoint::is_valid_origin`].
    pub fn sign(&self, signer: &NoteSigner) -> String {
        signer.sign_unchecked(&self.body())
    }

    /// Whether `origin` can be a checkpoint's first line: non-empty, without
    /// control characters (newlines included).
    pub fn is_valid_origin(origin: &str) -> bool {
        !origin.is_empty() && !origin.chars().any(char::is_control)
    }

    /// Parses a note text as a checkpoint body. It says nothing about who
    /// signed it, so it stays private: [`open_checkpoint`] is the way in.
    fn parse_body(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: String| NoteError::MalformedCheckpoint(why);
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the body must end with a newline".into()))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root] = lines.as_slice() else {
            // Extension lines are optional in the spec and NOT RECOMMENDED;
            // Cordon never writes them and this type has no place for them,
            // so accepting them would mean dropping signed text unread.
            return Err(bad(format!(
                "expected 3 lines (origin, size, root), found {}",
                lines.len()
            )));
        };
        if origin.is_empty() {
            return Err(bad("the origin line is empty".into()));
        }
        Ok(Checkpoint {
            origin: (*origin).to_string(),
            size: parse_size(size)
                .ok_or_else(|| bad(format!("the size {size:?} is not a decimal number")))?,
            root: BASE64
                .decode(root)
                .ok()
                .and_then(|bytes| Hash::try_from(bytes).ok())
                .ok_or_else(|| bad(format!("the root {root:?} is not the base64 of 32 bytes")))?,
        })
    }
}

/// A tree size: ASCII decimal, no sign, no leading zero (except `0` itself),
/// within `u64`. One spelling per number, so one checkpoint has one text.
fn parse_size(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

/// Opens a signed checkpoint: requires a valid signature by `verifier`
/// (ignoring signatures by other keys, such as witnesses' cosignatures) and
/// parses the body.
pub fn open_checkpoint(note: &str, verifier: &NoteVerifier) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse_body(verifier.open(note)?)
}
