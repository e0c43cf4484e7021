//! Concurrency limits between runs: how many runs sharing a key may be
//! active at once. The count and the write it guards happen in one write
//! transaction, serialised per key (SQLite has one writer at a time; on
//! PostgreSQL a transaction-scoped advisory lock on the key), so two nodes
//! admitting runs at the same moment cannot both take the last slot.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, Statement,
};

use crate::entity::run;
use crate::error::StorageError;

/// A run's place under its playbook's concurrency limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Concurrency {
    /// Runs with the same key count against one limit.
    pub key: String,
    /// The most runs active at once.
    pub limit: u32,
    /// Refuse a start over the limit instead of queueing it.
    pub reject: bool,
}

/// Statuses that hold a slot. A paused run holds its slot: it will go on.
const HOLDING: [&str; 4] = ["running", "waiting", "paused", "compensating"];

/// Serialises writers of one key until the transaction ends.
async fn lock(txn: &DatabaseTransaction, key: &str) -> Result<(), StorageError> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// At creation: with `reject`, refuses a run when the key's limit is
/// already taken by active runs (queued ones included, since they will run).
pub(crate) async fn check_start(
    txn: &DatabaseTransaction,
    concurrency: &Concurrency,
) -> Result<(), StorageError> {
    if !concurrency.reject {
        return Ok(());
    }
    lock(txn, &concurrency.key).await?;
    let active = run::Entity::find()
        .filter(run::Column::ConcurrencyKey.eq(&concurrency.key))
        .filter(run::Column::Status.is_in(HOLDING.iter().copied().chain(std::iter::once("queued"))))
        .count(txn)
        .await?;
    if active >= u64::from(concurrency.limit) {
        return Err(StorageError::AtCapacity {
            key: concurrency.key.clone(),
            limit: concurrency.limit,
        });
    }
    Ok(())
}

/// When a queued run starts: admits it if fewer than `limit` runs with its
/// key hold a slot, counting older queued runs as ahead of it (first come,
/// first served).
pub(crate) async fn admit(
    txn: &DatabaseTransaction,
    run_id: &str,
    limit: u32,
) -> Result<(), StorageError> {
    let row = run::Entity::find_by_id(run_id.to_string())
        .one(txn)
        .await?
        .ok_or_else(|| StorageError::NotFound(format!("run {run_id}")))?;
    let Some(key) = row.concurrency_key else {
        return Ok(());
    };
    lock(txn, &key).await?;
    let created: DateTime<Utc> = row.created_at;
    let ahead = run::Entity::find()
        .filter(run::Column::ConcurrencyKey.eq(&key))
        .filter(run::Column::Id.ne(run_id))
        .filter(
            Condition::any()
                .add(run::Column::Status.is_in(HOLDING))
                .add(
                    Condition::all().add(run::Column::Status.eq("queued")).add(
                        Condition::any()
                            .add(run::Column::CreatedAt.lt(created))
                            .add(
                                Condition::all()
                                    .add(run::Column::CreatedAt.eq(created))
                                    .add(run::Column::Id.lt(run_id)),
                            ),
                    ),
                ),
        )
        .count(txn)
        .await?;
    if ahead >= u64::from(limit) {
        return Err(StorageError::AtCapacity { key, limit });
    }
    Ok(())
}
