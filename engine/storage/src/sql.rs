//! Small helpers every table module uses: column names for sea-query, and
//! JSON text columns in and out (a value that does not decode is corrupt
//! data, never a panic).

use sea_orm::sea_query::Alias;
use serde_json::Value;

use crate::error::StorageError;

/// A table or column name.
pub(crate) fn t(name: &str) -> Alias {
    Alias::new(name)
}

/// Stored data that does not decode.
pub(crate) fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

/// A value as the JSON text a column stores.
pub(crate) fn json<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(corrupt)
}

/// A JSON text column read back; `what` names it in the error.
pub(crate) fn parse(text: &str, what: &str) -> Result<Value, StorageError> {
    serde_json::from_str(text).map_err(|e| StorageError::Corrupt(format!("{what}: {e}")))
}

/// A small count (a round, a stage, a quorum) as an INTEGER column; a
/// count beyond `i32` saturates.
pub(crate) fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// An INTEGER column read back as a count; a negative one is corrupt.
pub(crate) fn unsigned(n: i32) -> Result<u32, StorageError> {
    u32::try_from(n).map_err(corrupt)
}
