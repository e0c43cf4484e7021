//! Cordon's durable state, behind sea-orm: SQLite by default (one file, WAL,
//! `synchronous=FULL`), PostgreSQL by URL.
//!
//! This is the only crate that knows sea-orm or SQL. Everything it stores
//! is written in one transaction per change, so a crash leaves either the
//! old state or the new one, never half of each.

mod approvals;
mod audit;
mod changes;
mod concurrency;
mod connect;
mod entity;
mod error;
mod inventory;
mod leases;
mod migration;
mod outbox;
mod plugin_state;
mod runs;
mod sql;
#[cfg(feature = "test-util")]
pub mod testing;
mod tokens;
mod versions;
mod webhooks;

pub use approvals::{
    ApprovalChange, ApprovalFilter, ApprovalRecord, DecisionRecord, NewApprovalRequest, NewDecision,
};
pub use audit::{CheckpointRecord, EventFilter, NewEvent, StoredEvent, redact};
pub use changes::{AttemptChange, AttemptRecord, ChangeSet, StepChange, TimerChange, TimerRecord};
pub use concurrency::Concurrency;
pub use connect::{Backend, Readiness, Store, default_database_url};
pub use error::StorageError;
pub use inventory::{DeviceProblem, DeviceRecord, Imported, device_problems};
pub use leases::ACTIVE_STATUSES;
pub use outbox::{ApprovalLink, NewNotification, NotificationRecord};
pub use plugin_state::SCRATCH_ENTRIES_PER_RUN;
pub use runs::{NewRun, RunRecord, RunSummary, StepRecord, StoredState};
pub use tokens::{
    IssuedToken, NewToken, Revocation, TOKEN_PREFIX, TokenCheck, TokenRecord, TokenStatus,
    parse_token,
};
pub use versions::{
    NewVersion, PlaybookSummary, PluginPin, PublishOutcome, StoredVersion, VersionSummary,
};
pub use webhooks::{DeliveryOutcome, DeliveryRecord, NewDelivery, delivery_key};
