//! One audit event and its canonical bytes.
//!
//! The leaf hash is taken over the RFC 8785 (JCS) canonical JSON of the
//! event, so anyone holding the event's JSON — re-serialised by any tool,
//! with keys in any order — recomputes the same hash. Each event names the
//! previous event's leaf hash in `prev`: the log is a hash chain as well as a
//! Merkle tree, which makes a deletion, insertion or reordering visible to a
//! verifier streaming through an export without any checkpoint.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::merkle::{Hash, leaf_hash};

/// The largest integer the canonical form keeps exact: 2^53 − 1, the
/// I-JSON limit (RFC 7493 §2.2) that RFC 8785 assumes. Beyond it a number
/// is written as the nearest double, so two different integers could share
/// one leaf hash.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// `prev` of the first event (seq 0): 64 zeros, the hex of no hash.
pub const GENESIS_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit event.
///
/// Unknown fields are refused when reading one: they would not be covered
/// by the leaf hash (which is taken over this type's fields), so a verifier
/// that dropped them silently would appear to vouch for text it never
/// checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// 0-based position in the log.
    pub seq: u64,
    /// When the change it records was committed.
    pub time: DateTime<Utc>,
    /// Who acted: `user:alice`, `node:worker-1`, `webhook:alertmanager`.
    pub actor: String,
    /// What happened: `run.created`, `step.succeeded`, `attempt.started`…
    pub kind: String,
    /// The run it concerns, if any.
    pub run: Option<String>,
    /// The step it concerns, if any.
    pub step: Option<String>,
    /// The device it concerns, if any.
    pub device: Option<String>,
    /// Kind-specific facts.
    pub data: Value,
    /// Lowercase hex of the previous event's leaf hash; [`GENESIS_PREV`] for
    /// seq 0.
    pub prev: String,
}

impl Event {
    /// The RFC 8785 canonical JSON of the event: the bytes its leaf hash is
    /// taken over.
    ///
    /// RFC 8785 writes every number as an IEEE 754 double, so an integer
    /// beyond ±[`MAX_EXACT_INTEGER`] is hashed rounded and a neighbouring
    /// value would hash the same: see [`Event::check_exact`].
    ///
    /// serde_jcs can only fail on a non-finite float (a
    /// `Value` cannot hold one: its `Number` refuses NaN and
    /// infinities), on a map key that is not a string (every map here is a
    /// `Value` object, keyed by `String`), or on a failing writer (a `Vec`
    /// does not fail). None of these can occur for this type, so the empty
    /// fallback is unreachable; it exists so that this function cannot
    /// panic.
    pub fn canonical(&self) -> Vec<u8> {
        serde_jcs::to_vec(self).unwrap_or_default()
    }

    /// The event's RFC 6962 leaf hash: `leaf_hash(&self.canonical())`.
    pub fn leaf(&self) -> Hash {
        leaf_hash(&self.canonical())
    }

    /// Checks that the canonical form represents this event exactly: `seq`
    /// and every integer in `data` within ±[`MAX_EXACT_INTEGER`] (floats
    /// are always exact: RFC 8785 writes the shortest text that reads back
    /// as the same double). Writers should check before appending;
    /// [`crate::verify_export`] refuses an event that fails, since its hash
    /// would not pin down what it says. The error names the number.
    pub fn check_exact(&self) -> Result<(), String> {
        if self.seq > MAX_EXACT_INTEGER {
            return Err(format!("seq {} is beyond 2^53 - 1", self.seq));
        }
        // Iterative, so that no nesting depth can exhaust the stack.
        let mut pending = vec![&self.data];
        while let Some(value) = pending.pop() {
            match value {
                Value::Number(n) => {
                    let exact = match (n.as_u64(), n.as_i64()) {
                        (Some(u), _) => u <= MAX_EXACT_INTEGER,
                        (None, Some(i)) => i.unsigned_abs() <= MAX_EXACT_INTEGER,
                        (None, None) => true,
                    };
                    if !exact {
                        return Err(format!(
                            "data holds the integer {n}, beyond the ±(2^53 - 1) that canonical JSON keeps exact"
                        ));
                    }
                }
                Value::Array(items) => pending.extend(items),
                Value::Object(map) => pending.extend(map.values()),
                Value::Null | Value::Bool(_) | Value::String(_) => {}
            }
        }
        Ok(())
    }

    /// What the next event's `prev` must be: the hex of this one's leaf.
    pub fn next_prev(&self) -> String {
        hex::encode(self.leaf())
    }
}
