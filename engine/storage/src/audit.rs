//! The audit log's storage: every committed change appends its events in
//! the same transaction (so a transition and its record commit together or
//! not at all), chained through the previous event's leaf hash and
//! serialised by a lock on the one head row (so several nodes on one
//! PostgreSQL database still write one ordered log). Checkpoints are signed
//! by the caller over a root this module computes from the stored leaves.

use chrono::{DateTime, Utc};
use cordon_audit::{Event, Hash};
use sea_orm::sea_query::{Expr, ExprTrait as _, LockType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use serde_json::{Value, json};

use crate::changes::{AttemptChange, ChangeSet, TimerChange};
use crate::connect::{Backend, Store};
use crate::error::StorageError;
use crate::sql::{corrupt, t};

/// An event to append; its position, time and chain link are assigned when
/// it is appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Who acted: `user:alice`, `node:worker-1`, `webhook:alertmanager`.
    pub actor: String,
    /// What happened: `run.created`, `step.succeeded`, `attempt.started`…
    pub kind: String,
    /// The run it concerns.
    pub run: Option<String>,
    /// The step key it concerns.
    pub step: Option<String>,
    /// The device it concerns.
    pub device: Option<String>,
    /// The facts.
    pub data: Value,
}

/// A stored event with its leaf hash (hex).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The event as hashed.
    pub event: Event,
    /// Its RFC 6962 leaf hash, hex.
    pub leaf: String,
}

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// How many events it covers.
    pub size: u64,
    /// The Merkle root over them, hex.
    pub root: String,
    /// The signed note.
    pub note: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
}

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only this run's.
    pub run: Option<String>,
    /// Only this device's.
    pub device: Option<String>,
    /// Only this actor's.
    pub actor: Option<String>,
    /// Only from this time on.
    pub since: Option<DateTime<Utc>>,
    /// At most this many (oldest first).
    pub limit: Option<u64>,
}

fn unsigned(n: i64) -> Result<u64, StorageError> {
    u64::try_from(n).map_err(corrupt)
}

fn signed(n: u64) -> Result<i64, StorageError> {
    i64::try_from(n).map_err(corrupt)
}

/// The head, locked until the transaction ends (SQLite's write transaction
/// already excludes every other writer).
async fn head(txn: &DatabaseTransaction, backend: Backend) -> Result<(u64, String), StorageError> {
    let mut query = Query::select()
        .columns([t("size"), t("leaf")])
        .from(t("audit_head"))
        .and_where(Expr::col(t("id")).eq(1))
        .to_owned();
    if backend == Backend::Postgres {
        query.lock(LockType::Update);
    }
    let row = txn
        .query_one_raw(txn.get_database_backend().build(&query))
        .await?
        .ok_or_else(|| StorageError::Corrupt("the audit head row is missing".into()))?;
    Ok((
        unsigned(row.try_get("", "size")?)?,
        row.try_get("", "leaf")?,
    ))
}

/// Appends events inside `txn`, after the change they record.
pub(crate) async fn append(
    txn: &DatabaseTransaction,
    backend: Backend,
    events: &[NewEvent],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    let (size, mut prev) = head(txn, backend).await?;
    let db = txn.get_database_backend();
    let mut seq = size;
    // 9 values a row: 100 rows stay far below every backend's bind limit.
    for chunk in events.chunks(100) {
        let mut insert = Query::insert()
            .into_table(t("audit_events"))
            .columns(
                [
                    "seq", "time", "actor", "kind", "run_id", "step_key", "device", "body", "leaf",
                ]
                .map(t),
            )
            .to_owned();
        for new in chunk {
            let event = Event {
                seq,
                time: now,
                actor: new.actor.clone(),
                kind: new.kind.clone(),
                run: new.run.clone(),
                step: new.step.clone(),
                device: new.device.clone(),
                data: exact(&new.data),
                prev: prev.clone(),
            };
            let body = String::from_utf8(event.canonical()).map_err(corrupt)?;
            let leaf = hex::encode(event.leaf());
            insert.values_panic([
                signed(seq)?.into(),
                now.into(),
                new.actor.clone().into(),
                new.kind.clone().into(),
                new.run.clone().into(),
                new.step.clone().into(),
                new.device.clone().into(),
                body.into(),
                leaf.clone().into(),
            ]);
            prev = leaf;
            seq += 1;
        }
        txn.execute_raw(db.build(&insert)).await?;
    }
    let update = Query::update()
        .table(t("audit_head"))
        .value(t("size"), signed(seq)?)
        .value(t("leaf"), prev)
        .and_where(Expr::col(t("id")).eq(1))
        .to_owned();
    txn.execute_raw(db.build(&update)).await?;
    Ok(())
}

/// `data` with every integer beyond ±(2^53 − 1) written as a string:
/// RFC 8785 hashes numbers as doubles, so such an integer would be hashed
/// rounded (two neighbouring values, one hash). Nothing else changes.
fn exact(data: &Value) -> Value {
    match data {
        Value::Number(n)
            if n.as_i64()
                .is_some_and(|i| i.unsigned_abs() > cordon_audit::event::MAX_EXACT_INTEGER)
                || n.as_u64()
                    .is_some_and(|u| u > cordon_audit::event::MAX_EXACT_INTEGER) =>
        {
            Value::String(n.to_string())
        }
        Value::Array(items) => Value::Array(items.iter().map(exact).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), exact(v))).collect())
        }
        other => other.clone(),
    }
}

/// Replaces every occurrence of a secret value inside `data`'s strings
/// (and object keys) with `[secret]`: for audit events, and for anything
/// else that shows a run (the API's responses, `cordon runs show`).
pub fn redact(data: &mut Value, secrets: &[String]) {
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .collect();
    if !secrets.is_empty() {
        redact_in(data, &secrets);
    }
}

fn redacted(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s, "[secret]"))
}

fn redact_in(data: &mut Value, secrets: &[&str]) {
    match data {
        Value::String(text) if secrets.iter().any(|s| text.contains(s)) => {
            *text = redacted(text, secrets);
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_in(v, secrets)),
        Value::Object(map) => {
            for (key, mut value) in std::mem::take(map) {
                redact_in(&mut value, secrets);
                map.insert(redacted(&key, secrets), value);
            }
        }
        _ => {}
    }
}

/// The events recording one committed change set of run `run`: the run's
/// new state, each step's, each attempt's, each timer's.
pub(crate) fn events_of(run: &str, changes: &ChangeSet, actor: &str) -> Vec<NewEvent> {
    let event = |kind: String, step: Option<&str>, data: Value| NewEvent {
        actor: changes.actor.clone().unwrap_or_else(|| actor.to_string()),
        kind,
        run: Some(run.to_string()),
        step: step.map(str::to_string),
        // Item keys are positions (`rollback[3]`); the device an attempt
        // acts on is named by its `attempt.call` event's inputs.
        device: None,
        data,
    };
    let mut events = Vec::new();
    if let Some(state) = &changes.run {
        events.push(event(
            format!("run.{}", state.status),
            None,
            json!({"state": state.state}),
        ));
    }
    if !changes.new_steps.is_empty() {
        // One event for a whole fan-out: a rollout over 10,000 devices
        // creates 10,000 rows, and their keys are the record.
        let keys: Vec<&str> = changes.new_steps.iter().map(|(k, _)| k.as_str()).collect();
        events.push(event("steps.created".into(), None, json!({"steps": keys})));
    }
    for step in &changes.steps {
        events.push(event(
            format!("step.{}", step.state.status),
            Some(&step.key),
            json!({"state": step.state.state, "attempt": step.attempt, "outputs": step.outputs}),
        ));
    }
    for attempt in &changes.attempts {
        match attempt {
            AttemptChange::Start {
                step,
                number,
                idempotency_key,
                node,
                ..
            } => events.push(event(
                "attempt.started".into(),
                Some(step),
                json!({"attempt": number, "idempotency_key": idempotency_key, "node": node}),
            )),
            AttemptChange::Update {
                step,
                number,
                state,
                ..
            } => events.push(event(
                format!("attempt.{}", state.status),
                Some(step),
                json!({"attempt": number, "state": state.state}),
            )),
        }
    }
    for timer in &changes.timers {
        match timer {
            TimerChange::Arm { step, at, purpose } => events.push(event(
                "timer.armed".into(),
                Some(step),
                json!({"at": at, "purpose": purpose}),
            )),
            TimerChange::Spend { id } => {
                events.push(event("timer.fired".into(), None, json!({"timer": id})));
            }
        }
    }
    events
}

fn stored_event(row: &QueryResult) -> Result<StoredEvent, StorageError> {
    let body: String = row.try_get("", "body")?;
    let event: Event =
        serde_json::from_str(&body).map_err(|e| corrupt(format!("audit event: {e}")))?;
    Ok(StoredEvent {
        event,
        leaf: row.try_get("", "leaf")?,
    })
}

fn parse_hash(hex_text: &str) -> Result<Hash, StorageError> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| Hash::try_from(b).ok())
        .ok_or_else(|| corrupt(format!("`{hex_text}` is not a SHA-256 hash")))
}

impl Store {
    /// Appends events that no engine change carries (a plugin's outcome, a
    /// configuration change), in a transaction of their own, with `secrets`
    /// redacted wherever they appear.
    pub async fn append_events(
        &self,
        events: &[NewEvent],
        secrets: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let mut events = events.to_vec();
        for event in &mut events {
            redact(&mut event.data, secrets);
        }
        let txn = self.begin_write().await?;
        append(&txn, self.backend(), &events, now).await?;
        txn.commit().await?;
        Ok(())
    }

    /// How many events the log holds.
    pub async fn audit_size(&self) -> Result<u64, StorageError> {
        let query = Query::select()
            .column(t("size"))
            .from(t("audit_head"))
            .to_owned();
        let row = self
            .db
            .query_one_raw(self.db.get_database_backend().build(&query))
            .await?;
        row.map(|r| r.try_get::<i64>("", "size"))
            .transpose()?
            .map_or(Ok(0), unsigned)
    }

    /// Events matching `filter`, oldest first.
    pub async fn audit_events(
        &self,
        filter: &EventFilter,
    ) -> Result<Vec<StoredEvent>, StorageError> {
        let mut query: SelectStatement = Query::select()
            .columns([t("body"), t("leaf")])
            .from(t("audit_events"))
            .order_by(t("seq"), Order::Asc)
            .to_owned();
        if let Some(run) = &filter.run {
            query.and_where(Expr::col(t("run_id")).eq(run.as_str()));
        }
        if let Some(device) = &filter.device {
            query.and_where(Expr::col(t("device")).eq(device.as_str()));
        }
        if let Some(actor) = &filter.actor {
            query.and_where(Expr::col(t("actor")).eq(actor.as_str()));
        }
        if let Some(since) = filter.since {
            query.and_where(Expr::col(t("time")).gte(since));
        }
        if let Some(limit) = filter.limit {
            query.limit(limit);
        }
        let rows = self
            .db
            .query_all_raw(self.db.get_database_backend().build(&query))
            .await?;
        rows.iter().map(stored_event).collect()
    }

    /// Every signed checkpoint, smallest first.
    pub async fn checkpoints(&self) -> Result<Vec<CheckpointRecord>, StorageError> {
        self.read_checkpoints(Order::Asc, None).await
    }

    /// The newest (largest) signed checkpoint.
    pub async fn latest_checkpoint(&self) -> Result<Option<CheckpointRecord>, StorageError> {
        Ok(self.read_checkpoints(Order::Desc, Some(1)).await?.pop())
    }

    async fn read_checkpoints(
        &self,
        order: Order,
        limit: Option<u64>,
    ) -> Result<Vec<CheckpointRecord>, StorageError> {
        let mut query = Query::select()
            .columns([t("size"), t("root"), t("note"), t("signed_at")])
            .from(t("audit_checkpoints"))
            .order_by(t("size"), order)
            .to_owned();
        if let Some(limit) = limit {
            query.limit(limit);
        }
        let rows = self
            .db
            .query_all_raw(self.db.get_database_backend().build(&query))
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CheckpointRecord {
                    size: unsigned(r.try_get("", "size")?)?,
                    root: r.try_get("", "root")?,
                    note: r.try_get("", "note")?,
                    signed_at: r.try_get("", "signed_at")?,
                })
            })
            .collect()
    }

    /// Signs a checkpoint over the whole log as it is now, unless the
    /// newest checkpoint already covers it. Before signing it re-reads every
    /// stored event and checks each body's hash, the chain of `prev` links
    /// and that the previous checkpoint's root is still the root of the
    /// first events: a log changed behind Cordon's back is refused
    /// ([`StorageError::AuditTampered`]), never signed over, so two signed
    /// checkpoints can never disagree. `sign` gets the size and root and
    /// returns the signed note. Returns the new checkpoint, if any.
    pub async fn checkpoint(
        &self,
        sign: impl FnOnce(u64, &Hash) -> String,
        now: DateTime<Utc>,
    ) -> Result<Option<CheckpointRecord>, StorageError> {
        let txn = self.begin_write().await?;
        let (size, head_leaf) = head(&txn, self.backend()).await?;
        let latest = self.latest_checkpoint().await?;
        if latest.as_ref().is_some_and(|c| c.size == size) || size == 0 {
            return Ok(None);
        }
        let query = Query::select()
            .columns([t("seq"), t("body"), t("leaf")])
            .from(t("audit_events"))
            .order_by(t("seq"), Order::Asc)
            .to_owned();
        let rows = txn
            .query_all_raw(txn.get_database_backend().build(&query))
            .await?;
        let tampered = |why: String| StorageError::AuditTampered(why);
        if rows.len() as u64 != size {
            return Err(tampered(format!(
                "the head says {size} events, the table holds {}",
                rows.len()
            )));
        }
        let mut leaves = Vec::with_capacity(rows.len());
        let mut prev = cordon_audit::GENESIS_PREV.to_string();
        for (i, row) in rows.iter().enumerate() {
            let seq: i64 = row.try_get("", "seq")?;
            let stored = stored_event(row)?;
            let leaf = stored.event.leaf();
            if unsigned(seq)? != i as u64 || stored.event.seq != i as u64 {
                return Err(tampered(format!("event {i} is missing or out of place")));
            }
            if hex::encode(leaf) != stored.leaf || stored.event.prev != prev {
                return Err(tampered(format!(
                    "event {i} was changed after it was written"
                )));
            }
            prev = stored.leaf;
            leaves.push(leaf);
        }
        if prev != head_leaf {
            return Err(tampered(
                "the head's last leaf is not the last event's".into(),
            ));
        }
        if let Some(latest) = &latest {
            let old = usize::try_from(latest.size).map_err(corrupt)?;
            let old_root = leaves.get(..old).map(cordon_audit::root);
            if old_root.map(hex::encode).as_deref() != Some(latest.root.as_str()) {
                return Err(tampered(format!(
                    "the first {} events no longer have the root the last checkpoint signed",
                    latest.size
                )));
            }
        }
        let root = cordon_audit::root(&leaves);
        let note = sign(size, &root);
        let record = CheckpointRecord {
            size,
            root: hex::encode(root),
            note,
            signed_at: now,
        };
        let insert = Query::insert()
            .into_table(t("audit_checkpoints"))
            .columns([t("size"), t("root"), t("note"), t("signed_at")])
            .values_panic([
                signed(size)?.into(),
                record.root.clone().into(),
                record.note.clone().into(),
                now.into(),
            ])
            .to_owned();
        txn.execute_raw(txn.get_database_backend().build(&insert))
            .await?;
        txn.commit().await?;
        Ok(Some(record))
    }

    /// The leaf hashes of the first `size` events (for proofs).
    pub async fn audit_leaves(&self, size: u64) -> Result<Vec<Hash>, StorageError> {
        let query = Query::select()
            .column(t("leaf"))
            .from(t("audit_events"))
            .and_where(Expr::col(t("seq")).lt(signed(size)?))
            .order_by(t("seq"), Order::Asc)
            .to_owned();
        let rows = self
            .db
            .query_all_raw(self.db.get_database_backend().build(&query))
            .await?;
        rows.iter()
            .map(|r| parse_hash(&r.try_get::<String>("", "leaf")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::exact;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_wherever_they_appear() {
        let mut data = json!({"inputs": {"token": "hunter2", "device": "plc-7"}, "header": "Bearer hunter2", "list": ["x", "hunter2"], "hunter2": 1});
        super::redact(&mut data, &["hunter2".to_string(), String::new()]);
        assert_eq!(
            data,
            json!({"inputs": {"token": "[secret]", "device": "plc-7"}, "header": "Bearer [secret]", "list": ["x", "[secret]"], "[secret]": 1})
        );
    }

    #[test]
    fn integers_beyond_doubles_are_kept_exact_as_text() {
        let big = json!({"serial": 9_007_199_254_740_993u64, "small": 7, "list": [-9_007_199_254_740_993i64]});
        assert_eq!(
            exact(&big),
            json!({"serial": "9007199254740993", "small": 7, "list": ["-9007199254740993"]})
        );
    }
}
