//! Monitoring webhook deliveries and spent signatures.
//!
//! A delivery is one alert episode a binding acted on: its key is the
//! SHA-256 of (source, binding, dedupe key, status), so the same firing
//! alert delivered again — by a retrying sender, after a restart, to
//! another node on the same database — finds its row and starts nothing.
//! A delivery that starts a run commits with it — the delivery row, its
//! `webhook.accepted` event, the run, its steps and `run.created` in one
//! transaction ([`Store::create_run_for_delivery`]) — so there is never a
//! recorded delivery without its run, or a run twice.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use sha2::{Digest as _, Sha256};

use crate::audit::{NewEvent, append};
use crate::connect::Store;
use crate::error::StorageError;
use crate::sql::t;

/// A delivery to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// The configured source (`alertmanager`).
    pub source: String,
    /// The binding that acted on it (`isolate-device#0`).
    pub binding: String,
    /// What makes a repeat a repeat: a fingerprint, a group key or an idempotency key.
    pub dedup_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// The run it starts (derived from the key), if it starts one.
    pub run_id: Option<String>,
    /// The audit event recorded with a new delivery (`webhook.accepted`, `webhook.resolved`).
    pub accepted: NewEvent,
    /// The audit event recorded instead when it is a repeat (`webhook.deduplicated`).
    pub repeated: NewEvent,
}

impl NewDelivery {
    /// The stored key: SHA-256 (hex) over the four parts, each length-prefixed.
    pub fn key(&self) -> String {
        delivery_key(&self.source, &self.binding, &self.dedup_key, &self.status)
    }
}

/// The key of a delivery (see [`NewDelivery::key`]).
pub fn delivery_key(source: &str, binding: &str, dedup_key: &str, status: &str) -> String {
    let mut hash = Sha256::new();
    for part in [source, binding, dedup_key, status] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// What recording a delivery found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The first of its kind: recorded with its `accepted` event.
    New,
    /// Recorded before (its `repeated` event was appended); the run it
    /// started then, if any.
    Repeat {
        /// The run recorded with the first delivery.
        run_id: Option<String>,
    },
}

/// A recorded delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The source.
    pub source: String,
    /// The binding.
    pub binding: String,
    /// The dedupe key.
    pub dedup_key: String,
    /// `firing` or `resolved`.
    pub status: String,
    /// The run it started, if any.
    pub run_id: Option<String>,
    /// When it first arrived.
    pub received_at: DateTime<Utc>,
    /// How many repeats arrived since.
    pub repeats: u32,
}

fn record(row: &QueryResult) -> Result<DeliveryRecord, StorageError> {
    let repeats: i32 = row.try_get("", "repeats")?;
    Ok(DeliveryRecord {
        source: row.try_get("", "source")?,
        binding: row.try_get("", "binding")?,
        dedup_key: row.try_get("", "dedup_key")?,
        status: row.try_get("", "status")?,
        run_id: row.try_get("", "run_id")?,
        received_at: row.try_get("", "received_at")?,
        repeats: crate::sql::unsigned(repeats)?,
    })
}

impl Store {
    /// Records a delivery with its `accepted` audit event, or — when the
    /// same key was recorded before — counts the repeat and appends its
    /// `repeated` event instead; one transaction either way. A unique key
    /// (`INSERT … ON CONFLICT DO NOTHING`) decides, so two nodes receiving
    /// the same alert at once record it once.
    pub async fn record_webhook_delivery(
        &self,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> Result<DeliveryOutcome, StorageError> {
        let txn = self.begin_write().await?;
        let outcome = self.claim(&txn, delivery, now).await?;
        if outcome == DeliveryOutcome::New {
            append(
                &txn,
                self.backend(),
                std::slice::from_ref(&delivery.accepted),
                now,
            )
            .await?;
        }
        txn.commit().await?;
        Ok(outcome)
    }

    /// Records a delivery and creates the run it starts in one
    /// transaction, with the delivery's `accepted` event and the run's
    /// `run.created`: either both exist afterwards or neither does. A
    /// repeat creates nothing (its `repeated` event is appended); a run
    /// refused inside the transaction (`AtCapacity`, an unknown version)
    /// leaves no delivery behind.
    pub async fn create_run_for_delivery(
        &self,
        new: crate::NewRun,
        delivery: &NewDelivery,
    ) -> Result<DeliveryOutcome, StorageError> {
        let now = new.now;
        let txn = self.begin_write().await?;
        let outcome = self.claim(&txn, delivery, now).await?;
        if outcome == DeliveryOutcome::New {
            let created = crate::runs::insert_run(&txn, &new).await?;
            append(
                &txn,
                self.backend(),
                &[delivery.accepted.clone(), created],
                now,
            )
            .await?;
            fail::fail_point!("store.create_run_for_delivery.before");
        }
        txn.commit().await?;
        Ok(outcome)
    }

    /// Inserts the delivery's row, or — when its key is there already —
    /// counts the repeat and appends the `repeated` event.
    async fn claim(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        delivery: &NewDelivery,
        now: DateTime<Utc>,
    ) -> Result<DeliveryOutcome, StorageError> {
        let key = delivery.key();
        let insert = Query::insert()
            .into_table(t("webhook_deliveries"))
            .columns(
                [
                    "key",
                    "source",
                    "binding",
                    "dedup_key",
                    "status",
                    "run_id",
                    "received_at",
                    "last_seen_at",
                    "repeats",
                ]
                .map(t),
            )
            .values_panic([
                key.clone().into(),
                delivery.source.clone().into(),
                delivery.binding.clone().into(),
                delivery.dedup_key.clone().into(),
                delivery.status.clone().into(),
                delivery.run_id.clone().into(),
                now.into(),
                now.into(),
                0i32.into(),
            ])
            .on_conflict(OnConflict::column(t("key")).do_nothing().to_owned())
            .to_owned();
        let backend = txn.get_database_backend();
        let inserted = txn
            .execute_raw(backend.build(&insert))
            .await?
            .rows_affected();
        if inserted == 1 {
            return Ok(DeliveryOutcome::New);
        }
        let bump = Query::update()
            .table(t("webhook_deliveries"))
            .value(t("repeats"), Expr::col(t("repeats")).add(1))
            .value(t("last_seen_at"), now)
            .and_where(Expr::col(t("key")).eq(key.clone()))
            .to_owned();
        txn.execute_raw(backend.build(&bump)).await?;
        let select = Query::select()
            .column(t("run_id"))
            .from(t("webhook_deliveries"))
            .and_where(Expr::col(t("key")).eq(key))
            .to_owned();
        let run_id: Option<String> = match txn.query_one_raw(backend.build(&select)).await? {
            Some(row) => row.try_get("", "run_id")?,
            None => None,
        };
        let mut repeated = delivery.repeated.clone();
        if repeated.run.is_none() {
            repeated.run.clone_from(&run_id);
        }
        append(txn, self.backend(), &[repeated], now).await?;
        Ok(DeliveryOutcome::Repeat { run_id })
    }

    /// Spends an HMAC signature of `source` until `expires_at` (the end of
    /// its replay window): `true` the first time, `false` when it was spent
    /// already (a replay). Signatures past their window are forgotten here.
    pub async fn spend_webhook_signature(
        &self,
        source: &str,
        signature: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<bool, StorageError> {
        let hash = delivery_key(source, "signature", signature, "");
        let purge = Query::delete()
            .from_table(t("webhook_signatures"))
            .and_where(Expr::col(t("expires_at")).lt(now))
            .to_owned();
        let insert = Query::insert()
            .into_table(t("webhook_signatures"))
            .columns(["hash", "source", "expires_at"].map(t))
            .values_panic([hash.into(), source.into(), expires_at.into()])
            .on_conflict(OnConflict::column(t("hash")).do_nothing().to_owned())
            .to_owned();
        let txn = self.begin_write().await?;
        let backend = txn.get_database_backend();
        txn.execute_raw(backend.build(&purge)).await?;
        let fresh = txn
            .execute_raw(backend.build(&insert))
            .await?
            .rows_affected()
            == 1;
        txn.commit().await?;
        Ok(fresh)
    }

    /// The deliveries of `source`, newest first, at most `limit`.
    pub async fn webhook_deliveries(
        &self,
        source: &str,
        limit: u64,
    ) -> Result<Vec<DeliveryRecord>, StorageError> {
        let select = Query::select()
            .columns(
                [
                    "source",
                    "binding",
                    "dedup_key",
                    "status",
                    "run_id",
                    "received_at",
                    "repeats",
                ]
                .map(t),
            )
            .from(t("webhook_deliveries"))
            .and_where(Expr::col(t("source")).eq(source))
            .order_by(t("received_at"), sea_orm::sea_query::Order::Desc)
            .limit(limit)
            .to_owned();
        let backend = self.db.get_database_backend();
        self.db
            .query_all_raw(backend.build(&select))
            .await?
            .iter()
            .map(record)
            .collect()
    }
}
