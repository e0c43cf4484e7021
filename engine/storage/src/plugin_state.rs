//! Plugin state kept by the host: release floors (anti-rollback) and the
//! per-run scratch store plugins reach through `cordon:plugin/scratch`.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{ConnectionTrait, StatementBuilder};

use crate::connect::Store;
use crate::error::StorageError;
use crate::sql::t;

/// Entries one plugin may keep per run.
pub const SCRATCH_ENTRIES_PER_RUN: u64 = 1000;

impl Store {
    fn build<S: StatementBuilder>(&self, statement: &S) -> sea_orm::Statement {
        self.db.get_database_backend().build(statement)
    }

    /// The highest release counter accepted for `plugin`, if any.
    pub async fn release_floor(&self, plugin: &str) -> Result<Option<u64>, StorageError> {
        let query = Query::select()
            .column(t("release_counter"))
            .from(t("plugin_floors"))
            .and_where(Expr::col(t("name")).eq(plugin))
            .to_owned();
        let row = self.db.query_one_raw(self.build(&query)).await?;
        row.map(|r| r.try_get::<i64>("", "release_counter"))
            .transpose()?
            .map(|n| u64::try_from(n).map_err(|e| StorageError::Corrupt(e.to_string())))
            .transpose()
    }

    /// Raises the floor of `plugin` to `counter`; never lowers it (one
    /// conditional upsert, so concurrent loaders cannot lower it either).
    pub async fn raise_release_floor(
        &self,
        plugin: &str,
        counter: u64,
        digest: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let counter = i64::try_from(counter).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        let insert = Query::insert()
            .into_table(t("plugin_floors"))
            .columns([
                t("name"),
                t("release_counter"),
                t("digest"),
                t("accepted_at"),
            ])
            .values_panic([plugin.into(), counter.into(), digest.into(), now.into()])
            .on_conflict(
                OnConflict::column(t("name"))
                    .update_columns([t("release_counter"), t("digest"), t("accepted_at")])
                    .action_and_where(
                        Expr::col((t("plugin_floors"), t("release_counter"))).lt(counter),
                    )
                    .to_owned(),
            )
            .to_owned();
        self.db.execute_raw(self.build(&insert)).await?;
        Ok(())
    }

    /// A scratch value.
    pub async fn scratch_get(
        &self,
        run: &str,
        plugin: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let query = Query::select()
            .column(t("value"))
            .from(t("plugin_scratch"))
            .and_where(Expr::col(t("run_id")).eq(run))
            .and_where(Expr::col(t("plugin")).eq(plugin))
            .and_where(Expr::col(t("key")).eq(key))
            .to_owned();
        let row = self.db.query_one_raw(self.build(&query)).await?;
        Ok(row.map(|r| r.try_get::<Vec<u8>>("", "value")).transpose()?)
    }

    /// Stores a scratch value (durable on return). Refuses a new key past
    /// [`SCRATCH_ENTRIES_PER_RUN`] entries of this run and plugin.
    pub async fn scratch_set(
        &self,
        run: &str,
        plugin: &str,
        key: &str,
        value: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let txn = self.begin_write().await?;
        let count = Query::select()
            .expr(Expr::col(t("key")).count())
            .from(t("plugin_scratch"))
            .and_where(Expr::col(t("run_id")).eq(run))
            .and_where(Expr::col(t("plugin")).eq(plugin))
            .and_where(Expr::col(t("key")).ne(key))
            .to_owned();
        let backend = txn.get_database_backend();
        let others = txn
            .query_one_raw(backend.build(&count))
            .await?
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0);
        if u64::try_from(others).unwrap_or(0) >= SCRATCH_ENTRIES_PER_RUN {
            return Err(StorageError::LimitReached(format!(
                "scratch holds {SCRATCH_ENTRIES_PER_RUN} entries already"
            )));
        }
        let upsert = Query::insert()
            .into_table(t("plugin_scratch"))
            .columns([
                t("run_id"),
                t("plugin"),
                t("key"),
                t("value"),
                t("updated_at"),
            ])
            .values_panic([
                run.into(),
                plugin.into(),
                key.into(),
                value.to_vec().into(),
                now.into(),
            ])
            .on_conflict(
                OnConflict::columns([t("run_id"), t("plugin"), t("key")])
                    .update_columns([t("value"), t("updated_at")])
                    .to_owned(),
            )
            .to_owned();
        txn.execute_raw(backend.build(&upsert)).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Removes a scratch key (absent is fine).
    pub async fn scratch_delete(
        &self,
        run: &str,
        plugin: &str,
        key: &str,
    ) -> Result<(), StorageError> {
        let delete = Query::delete()
            .from_table(t("plugin_scratch"))
            .and_where(Expr::col(t("run_id")).eq(run))
            .and_where(Expr::col(t("plugin")).eq(plugin))
            .and_where(Expr::col(t("key")).eq(key))
            .to_owned();
        self.db.execute_raw(self.build(&delete)).await?;
        Ok(())
    }
}
