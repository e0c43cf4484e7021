//! The notification outbox and the one-time approval links mailed from it.
//!
//! Notifications are queued inside a run's commit ([`crate::ChangeSet::notifications`]),
//! so a gate, its reminder or a failed run and the mail announcing it commit
//! together; the server's dispatcher sends them afterwards, at least once.
//! Links record which approver a mailed link is for and when it expires;
//! the signature that makes one usable is never stored.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::{Value, json};

use crate::audit::NewEvent;
use crate::connect::Store;
use crate::error::StorageError;
use crate::sql::{int, json as json_text, parse, t, unsigned};

/// A mail to send once the change commits (the outbox).
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// `approval_request`, `approval_reminder`, `approval_escalated`, `run_failed`.
    pub kind: String,
    /// The approval request it is about.
    pub request: Option<String>,
    /// Facts the mail is rendered from.
    pub payload: Value,
}

/// A one-time link mailed to one approver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLink {
    /// Its id (random; the mailed link also carries a signature over it).
    pub id: String,
    /// The request.
    pub request: String,
    /// The approver it was mailed to.
    pub user: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was spent, if it was.
    pub used_at: Option<DateTime<Utc>>,
}

/// A queued mail.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationRecord {
    /// Its id.
    pub id: i64,
    /// What it announces.
    pub kind: String,
    /// The run.
    pub run: Option<String>,
    /// The approval request.
    pub request: Option<String>,
    /// Facts to render it from.
    pub payload: Value,
    /// Tries so far.
    pub attempts: u32,
}

/// Queues notifications inside a run's commit.
pub(crate) async fn queue(
    txn: &DatabaseTransaction,
    run_id: &str,
    notifications: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    if notifications.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert()
        .into_table(t("outbox"))
        .columns(
            [
                "kind",
                "run_id",
                "request_id",
                "payload",
                "created_at",
                "next_attempt_at",
                "attempts",
            ]
            .map(t),
        )
        .to_owned();
    for n in notifications {
        insert.values_panic([
            n.kind.clone().into(),
            run_id.into(),
            n.request.clone().into(),
            json_text(&n.payload)?.into(),
            now.into(),
            now.into(),
            0i32.into(),
        ]);
    }
    txn.execute_raw(txn.get_database_backend().build(&insert))
        .await?;
    Ok(())
}

impl Store {
    /// Records a one-time link mailed to `link.user` (its issue is audited;
    /// the signature that makes it usable is never stored).
    pub async fn issue_approval_link(
        &self,
        link: &ApprovalLink,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let txn = self.begin_write().await?;
        let db = txn.get_database_backend();
        let insert = Query::insert()
            .into_table(t("approval_links"))
            .columns(["id", "request_id", "user_name", "created_at", "expires_at"].map(t))
            .values_panic([
                link.id.clone().into(),
                link.request.clone().into(),
                link.user.clone().into(),
                now.into(),
                link.expires_at.into(),
            ])
            .to_owned();
        txn.execute_raw(db.build(&insert)).await?;
        let run = self.approval_run(&txn, &link.request).await?;
        let event = NewEvent {
            actor: "engine".into(),
            kind: "approval.link_issued".into(),
            run,
            step: None,
            device: None,
            data: json!({"request": link.request, "user": link.user, "link": link.id, "expires_at": link.expires_at}),
        };
        crate::audit::append(&txn, self.backend(), &[event], now).await?;
        txn.commit().await?;
        Ok(())
    }

    async fn approval_run(
        &self,
        txn: &DatabaseTransaction,
        request: &str,
    ) -> Result<Option<String>, StorageError> {
        let query = Query::select()
            .column(t("run_id"))
            .from(t("approval_requests"))
            .and_where(Expr::col(t("id")).eq(request))
            .to_owned();
        let row = txn
            .query_one_raw(txn.get_database_backend().build(&query))
            .await?;
        row.map(|r| r.try_get::<String>("", "run_id"))
            .transpose()
            .map_err(Into::into)
    }

    /// A mailed link.
    pub async fn approval_link(&self, id: &str) -> Result<Option<ApprovalLink>, StorageError> {
        let query = Query::select()
            .columns(["id", "request_id", "user_name", "expires_at", "used_at"].map(t))
            .from(t("approval_links"))
            .and_where(Expr::col(t("id")).eq(id))
            .to_owned();
        let row = self
            .db
            .query_one_raw(self.db.get_database_backend().build(&query))
            .await?;
        row.map(|r| {
            Ok(ApprovalLink {
                id: r.try_get("", "id")?,
                request: r.try_get("", "request_id")?,
                user: r.try_get("", "user_name")?,
                expires_at: r.try_get("", "expires_at")?,
                used_at: r.try_get("", "used_at")?,
            })
        })
        .transpose()
    }

    /// Notifications due to be sent, oldest first.
    pub async fn due_notifications(
        &self,
        now: DateTime<Utc>,
        limit: u64,
    ) -> Result<Vec<NotificationRecord>, StorageError> {
        let query = Query::select()
            .columns(["id", "kind", "run_id", "request_id", "payload", "attempts"].map(t))
            .from(t("outbox"))
            .and_where(Expr::col(t("sent_at")).is_null())
            .and_where(Expr::col(t("next_attempt_at")).lte(now))
            .order_by(t("id"), Order::Asc)
            .limit(limit)
            .to_owned();
        self.db
            .query_all_raw(self.db.get_database_backend().build(&query))
            .await?
            .iter()
            .map(|r| {
                Ok(NotificationRecord {
                    id: r.try_get("", "id")?,
                    kind: r.try_get("", "kind")?,
                    run: r.try_get("", "run_id")?,
                    request: r.try_get("", "request_id")?,
                    payload: parse(&r.try_get::<String>("", "payload")?, "payload")?,
                    attempts: unsigned(r.try_get("", "attempts")?)?,
                })
            })
            .collect()
    }

    /// Marks a notification sent (to whom is audited: the recipients, never the link).
    pub async fn notification_sent(
        &self,
        notification: &NotificationRecord,
        recipients: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let txn = self.begin_write().await?;
        let update = Query::update()
            .table(t("outbox"))
            .value(t("sent_at"), now)
            .value(t("attempts"), int(notification.attempts + 1))
            .and_where(Expr::col(t("id")).eq(notification.id))
            .and_where(Expr::col(t("sent_at")).is_null())
            .to_owned();
        let sent = txn
            .execute_raw(txn.get_database_backend().build(&update))
            .await?;
        if sent.rows_affected() == 1 {
            let event = NewEvent {
                actor: "engine".into(),
                kind: "notification.sent".into(),
                run: notification.run.clone(),
                step: None,
                device: None,
                data: json!({"kind": notification.kind, "request": notification.request, "to": recipients}),
            };
            crate::audit::append(&txn, self.backend(), &[event], now).await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// Records a failed try; the next one is due at `retry_at`, or never
    /// when `None` (a permanent failure, audited).
    pub async fn notification_failed(
        &self,
        notification: &NotificationRecord,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), StorageError> {
        let txn = self.begin_write().await?;
        let mut update = Query::update()
            .table(t("outbox"))
            .value(t("attempts"), int(notification.attempts + 1))
            .value(t("last_error"), error)
            .and_where(Expr::col(t("id")).eq(notification.id))
            .to_owned();
        match retry_at {
            Some(at) => update.value(t("next_attempt_at"), at),
            // Never retried: parked with a far-future due time and audited.
            None => update.value(t("next_attempt_at"), DateTime::<Utc>::MAX_UTC),
        };
        txn.execute_raw(txn.get_database_backend().build(&update))
            .await?;
        if retry_at.is_none() {
            let event = NewEvent {
                actor: "engine".into(),
                kind: "notification.failed".into(),
                run: notification.run.clone(),
                step: None,
                device: None,
                data: json!({"kind": notification.kind, "request": notification.request, "error": error}),
            };
            crate::audit::append(&txn, self.backend(), &[event], now).await?;
        }
        txn.commit().await?;
        Ok(())
    }
}
