//! Per-run key/value state (WIT interface `scratch`). Needs
//! [`Capability::StateRun`](crate::Capability::StateRun).
//!
//! Entries are shared by every step and attempt of one run that uses this
//! plugin (prefix keys with the step or device if they must not be), hidden
//! from other plugins and runs, and durable once a call returns, so an
//! attempt re-run after a crash finds them.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bindings::cordon::plugin::scratch as wit;
use crate::{Error, HostError};

/// The bytes stored under `key`, or `None`.
pub fn get(key: &str) -> Result<Option<Vec<u8>>, HostError> {
    Ok(wit::get(key)?)
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: &[u8]) -> Result<(), HostError> {
    Ok(wit::set(key, value)?)
}

/// Removes `key` (removing a missing key succeeds).
pub fn delete(key: &str) -> Result<(), HostError> {
    Ok(wit::delete(key)?)
}

/// The value stored under `key` by [`set_json`], or `None`.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, Error> {
    let Some(bytes) = get(key)? else {
        return Ok(None);
    };
    let value = serde_json::from_slice(&bytes).map_err(|error| {
        Error::permanent(format!("scratch entry {key} does not deserialize: {error}"))
    })?;
    Ok(Some(value))
}

/// Stores `value` as JSON under `key`.
pub fn set_json<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<(), Error> {
    let bytes = serde_json::to_vec(value).map_err(|error| {
        Error::permanent(format!("scratch entry {key} does not serialize: {error}"))
    })?;
    Ok(set(key, &bytes)?)
}
