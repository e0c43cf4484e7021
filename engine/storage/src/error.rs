//! What can go wrong with storage, and what the caller should do about it.

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database URL is not one Cordon understands. Fix the URL.
    #[error("unsupported database URL `{0}`: use sqlite://PATH?mode=rwc or postgres://…")]
    UnsupportedUrl(String),
    /// The database could not be reached or opened. Check that it runs and the URL is right; retrying may help.
    #[error("cannot open the database at {url}: {source}")]
    Unavailable {
        /// The URL with any password removed.
        url: String,
        /// What the driver said.
        #[source]
        source: sea_orm::DbErr,
    },
    /// A version with this name and number exists with other content. Bump the version.
    #[error(
        "{name}@{version} is already published with different content (published {existing}, this file {new}); publish it under a new version"
    )]
    VersionConflict {
        /// The playbook.
        name: String,
        /// The version.
        version: String,
        /// Digest of the stored content.
        existing: String,
        /// Digest of the new content.
        new: String,
    },
    /// The thing asked for does not exist. Check the name or id.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Someone else changed the run since it was read. Re-read and decide again.
    #[error("run {run} changed since revision {revision} was read")]
    StaleRevision {
        /// The run.
        run: String,
        /// The revision the caller read.
        revision: i64,
    },
    /// The node no longer holds the run's lease (it expired and another
    /// node may have taken the run over). Stop driving the run.
    #[error("node {node} no longer holds the lease of run {run}")]
    LeaseLost {
        /// The run.
        run: String,
        /// The node that tried to write.
        node: String,
    },
    /// The playbook's concurrency limit is reached for this key. A queued
    /// run waits for a slot; a start with `on_conflict: reject` is refused.
    #[error("{limit} run(s) with concurrency key `{key}` are already active")]
    AtCapacity {
        /// The concurrency key.
        key: String,
        /// The limit.
        limit: u32,
    },
    /// The change conflicts with what is stored (a spent link, a decided
    /// request, a duplicate decision). Re-read; retrying the same change fails again.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A bounded store is full (a plugin's scratch entries). Not transient.
    #[error("limit reached: {0}")]
    LimitReached(String),
    /// The audit log was changed behind Cordon's back (an event edited,
    /// removed or reordered): nothing is signed over it. Investigate.
    #[error("audit log tampered with: {0}")]
    AuditTampered(String),
    /// Stored data does not decode (a bug or manual tampering). Report it.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Any other database error. Usually transient: retry.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
}

impl StorageError {
    /// Whether retrying the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Unavailable { .. } | StorageError::Database(_)
        )
    }
}
