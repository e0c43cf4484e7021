//! Runs and their steps. Storage keeps states as JSON beside their names:
//! it does not interpret them (the run engine owns the state machines), it
//! only guarantees that a run and its steps are written together or not at
//! all, and that a transition based on a stale read is refused.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;

use crate::connect::Store;
use crate::entity::{playbook_version, run, step_run};
use crate::error::StorageError;
use crate::sql::{json, parse};

/// A state as stored: its name (for queries) and its full JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// The state's name, such as `queued`.
    pub status: String,
    /// The whole state.
    pub state: Value,
}

/// One line of a run listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// The run id.
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The pinned version.
    pub version: String,
    /// The state's name.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The run id (a UUIDv7, so ids sort by creation).
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The exact version it runs; its digest is pinned from the stored version.
    pub version: String,
    /// The resolved inputs.
    pub inputs: BTreeMap<String, Value>,
    /// How it started (`{"kind": "manual", "by": "alice"}`).
    pub trigger: Value,
    /// Dry run: side effects are recorded, not performed.
    pub dry_run: bool,
    /// Drill mode.
    pub drill: bool,
    /// The run's first state.
    pub state: StoredState,
    /// Every step key with its first state.
    pub steps: Vec<(String, StoredState)>,
    /// Outputs some steps start with (a re-run carries over what already succeeded).
    pub outputs: BTreeMap<String, Value>,
    /// Now, from the caller's clock.
    pub now: DateTime<Utc>,
    /// Its place under the playbook's concurrency limit, if it has one.
    pub concurrency: Option<crate::Concurrency>,
    /// The inputs declared `secret`: the audit log records them redacted.
    pub secret_inputs: Vec<String>,
}

/// One step of a stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    /// The step id, or `id[item]`.
    pub key: String,
    /// Its state.
    pub state: StoredState,
    /// The current attempt number (0 before the first).
    pub attempt: u32,
    /// Its outputs, once it succeeded.
    pub outputs: Option<Value>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// The run id.
    pub id: String,
    /// The playbook.
    pub playbook: String,
    /// The pinned version.
    pub version: String,
    /// The pinned digest.
    pub digest: String,
    /// The key it counts against for its playbook's concurrency limit.
    pub concurrency_key: Option<String>,
    /// Its state.
    pub state: StoredState,
    /// Its inputs.
    pub inputs: BTreeMap<String, Value>,
    /// How it started.
    pub trigger: Value,
    /// Dry run.
    pub dry_run: bool,
    /// Drill mode.
    pub drill: bool,
    /// The revision a transition must name.
    pub revision: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its steps, in creation order.
    pub steps: Vec<StepRecord>,
}

/// Inserts one step row; a key `id[item]` is one item of fan-out step `id`.
/// Inserts step rows, many per statement: a run of 40 steps, or a fan-out
/// of 10,000 items, is a few round trips, not one per row.
pub(crate) async fn insert_steps<'a>(
    txn: &sea_orm::DatabaseTransaction,
    run_id: &str,
    steps: impl IntoIterator<Item = (&'a str, &'a StoredState, Option<&'a Value>)>,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let rows = steps
        .into_iter()
        .map(|(key, state, outputs)| {
            let (step_id, item) = match key.split_once('[') {
                Some((id, rest)) => (id.to_string(), Some(rest.trim_end_matches(']').to_string())),
                None => (key.to_string(), None),
            };
            Ok(step_run::ActiveModel {
                run_id: Set(run_id.to_string()),
                step_key: Set(key.to_string()),
                step_id: Set(step_id),
                item: Set(item),
                status: Set(state.status.clone()),
                state: Set(json(&state.state)?),
                attempt: Set(0),
                outputs: Set(outputs.map(json).transpose()?),
                updated_at: Set(now),
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    for chunk in batches(&rows) {
        step_run::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Creates a run and all its steps in one transaction, pinned to the
    /// digest of the stored version. Fails (writing nothing) when the
    /// version is not published or the id is taken.
    pub async fn create_run(&self, new: NewRun) -> Result<RunRecord, StorageError> {
        let txn = self.begin_write().await?;
        let created = insert_run(&txn, &new).await?;
        crate::audit::append(&txn, self.backend(), &[created], new.now).await?;
        fail::fail_point!("store.create_run.before");
        txn.commit().await?;
        fail::fail_point!("store.create_run.after");
        self.run(&new.id)
            .await?
            .ok_or_else(|| StorageError::Corrupt(format!("run {} vanished after commit", new.id)))
    }
}

/// Writes a run and its steps inside `txn` (after its concurrency check)
/// and returns its `run.created` event, for the caller to append with
/// whatever else commits with it.
pub(crate) async fn insert_run(
    txn: &sea_orm::DatabaseTransaction,
    new: &NewRun,
) -> Result<crate::audit::NewEvent, StorageError> {
    if let Some(concurrency) = &new.concurrency {
        crate::concurrency::check_start(txn, concurrency).await?;
    }
    let version = playbook_version::Entity::find()
        .filter(playbook_version::Column::Name.eq(&new.playbook))
        .filter(playbook_version::Column::Version.eq(&new.version))
        .one(txn)
        .await?
        .ok_or_else(|| {
            StorageError::NotFound(format!("playbook version {}@{}", new.playbook, new.version))
        })?;
    run::ActiveModel {
        id: Set(new.id.clone()),
        version_id: Set(version.id),
        playbook_name: Set(new.playbook.clone()),
        playbook_version: Set(new.version.clone()),
        digest: Set(version.digest.clone()),
        status: Set(new.state.status.clone()),
        state: Set(json(&new.state.state)?),
        inputs: Set(json(&new.inputs)?),
        trigger: Set(json(&new.trigger)?),
        dry_run: Set(new.dry_run),
        drill: Set(new.drill),
        concurrency_key: Set(new.concurrency.as_ref().map(|c| c.key.clone())),
        revision: Set(1),
        created_at: Set(new.now),
        updated_at: Set(new.now),
    }
    .insert(txn)
    .await?;
    insert_steps(
        txn,
        &new.id,
        new.steps
            .iter()
            .map(|(key, state)| (key.as_str(), state, new.outputs.get(key))),
        new.now,
    )
    .await?;
    let actor = new
        .trigger
        .get("by")
        .and_then(Value::as_str)
        .map_or_else(|| "engine".to_string(), |by| format!("user:{by}"));
    let secrets: Vec<String> = new
        .secret_inputs
        .iter()
        .filter_map(|name| {
            new.inputs
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let inputs: BTreeMap<&String, Value> = new
        .inputs
        .iter()
        .map(|(k, v)| {
            (
                k,
                if new.secret_inputs.contains(k) {
                    Value::from("[secret]")
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let mut created = crate::audit::NewEvent {
        actor,
        kind: "run.created".into(),
        run: Some(new.id.clone()),
        step: None,
        device: new
            .inputs
            .get("device")
            .and_then(Value::as_str)
            .map(str::to_string),
        data: serde_json::json!({
            "playbook": new.playbook, "version": new.version, "digest": version.digest,
            "inputs": inputs, "trigger": new.trigger, "dry_run": new.dry_run, "drill": new.drill,
        }),
    };
    crate::audit::redact(&mut created.data, &secrets);
    Ok(created)
}

impl Store {
    /// A run with its steps.
    pub async fn run(&self, id: &str) -> Result<Option<RunRecord>, StorageError> {
        let Some(row) = run::Entity::find_by_id(id.to_string())
            .one(&self.db)
            .await?
        else {
            return Ok(None);
        };
        let steps = step_run::Entity::find()
            .filter(step_run::Column::RunId.eq(id))
            .order_by_asc(step_run::Column::StepKey)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|s| {
                Ok(StepRecord {
                    state: StoredState {
                        status: s.status,
                        state: parse(&s.state, "step state")?,
                    },
                    attempt: u32::try_from(s.attempt).unwrap_or(0),
                    outputs: s
                        .outputs
                        .as_deref()
                        .map(|o| parse(o, "step outputs"))
                        .transpose()?,
                    key: s.step_key,
                    updated_at: s.updated_at,
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let inputs = serde_json::from_str(&row.inputs)
            .map_err(|e| StorageError::Corrupt(format!("run inputs: {e}")))?;
        Ok(Some(RunRecord {
            state: StoredState {
                status: row.status,
                state: parse(&row.state, "run state")?,
            },
            trigger: parse(&row.trigger, "run trigger")?,
            inputs,
            id: row.id,
            playbook: row.playbook_name,
            version: row.playbook_version,
            digest: row.digest,
            concurrency_key: row.concurrency_key,
            dry_run: row.dry_run,
            drill: row.drill,
            revision: row.revision,
            created_at: row.created_at,
            updated_at: row.updated_at,
            steps,
        }))
    }

    /// Run ids and statuses, newest first, optionally only in some statuses.
    pub async fn runs(
        &self,
        statuses: &[&str],
        limit: u64,
    ) -> Result<Vec<RunSummary>, StorageError> {
        let mut query = run::Entity::find()
            .order_by_desc(run::Column::CreatedAt)
            .order_by_desc(run::Column::Id)
            .limit(limit);
        if !statuses.is_empty() {
            query = query.filter(run::Column::Status.is_in(statuses.iter().copied()));
        }
        Ok(query
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| RunSummary {
                id: r.id,
                playbook: r.playbook_name,
                version: r.playbook_version,
                status: r.status,
                created_at: r.created_at,
            })
            .collect())
    }

    /// Moves a run to a new state, if nobody else moved it since `revision`
    /// was read. Returns the new revision; a stale revision is
    /// [`StorageError::StaleRevision`] and changes nothing.
    pub async fn transition_run(
        &self,
        id: &str,
        revision: i64,
        to: &StoredState,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let result = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value(to.status.clone()))
            .col_expr(run::Column::State, Expr::value(json(&to.state)?))
            .col_expr(run::Column::Revision, Expr::value(revision + 1))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::Revision.eq(revision))
            .exec(&self.db)
            .await?;
        if result.rows_affected == 1 {
            Ok(revision + 1)
        } else {
            Err(StorageError::StaleRevision {
                run: id.to_string(),
                revision,
            })
        }
    }
}

/// Splits rows into multi-row INSERT batches of a few fixed sizes. Batching
/// saves a round trip per row; fixed sizes keep the number of distinct SQL
/// texts small, so PostgreSQL's prepared-statement cache keeps hitting
/// (a batch of every possible length made fan-outs slower there, measured).
pub(crate) fn batches<T>(rows: &[T]) -> Vec<&[T]> {
    const SIZES: [usize; 5] = [256, 64, 16, 4, 1];
    let mut out = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let size = SIZES
            .iter()
            .copied()
            .find(|s| *s <= rest.len())
            .unwrap_or(1);
        let (batch, tail) = rest.split_at(size);
        out.push(batch);
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn batches_cover_every_row_in_few_fixed_sizes() {
        let rows: Vec<usize> = (0..341).collect();
        let batches = super::batches(&rows);
        let sizes: Vec<usize> = batches.iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [256, 64, 16, 4, 1]);
        assert_eq!(batches.concat(), rows);
        assert!(super::batches::<u8>(&[]).is_empty());
    }
}
