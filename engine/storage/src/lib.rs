//! Cordon's durable state, behind sea-orm: SQLite by default (one file, WAL,
//! `synchronous=FULL`), PostgreSQL by URL.
//!
//! This is the only crate that knows sea-orm or SQL. Everything it stores
//! is written in one transaction per change, so a crash leaves either the
//! old state or the new one, never half of each.

mod connect;
mod entity;
mod error;
mod migration;
mod runs;
#[cfg(feature = "test-util")]
pub mod testing;
mod versions;

pub use connect::{Backend, Store, default_database_url};
pub use error::StorageError;
pub use runs::{NewRun, RunRecord, RunSummary, StepRecord, StoredState};
pub use versions::{NewVersion, PluginPin, PublishOutcome, StoredVersion, VersionSummary};
