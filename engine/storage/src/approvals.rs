//! Approval requests, the decisions people make on them, the one-time
//! links mailed to approvers, and the notification outbox.
//!
//! Requests, decisions and queued notifications change only inside a run's
//! commit ([`crate::ChangeSet::approvals`], [`crate::ChangeSet::notifications`]):
//! a gate's step state, its request and the mail announcing it commit
//! together, under the run's revision check — two approvers deciding at
//! once are serialised by it, and neither decision is lost.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use serde_json::{Value, json};

use crate::audit::NewEvent;
use crate::connect::Store;
use crate::error::StorageError;

fn t(name: &str) -> Alias {
    Alias::new(name)
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

fn to_text(value: &Value) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(corrupt)
}

fn from_text(text: &str, what: &str) -> Result<Value, StorageError> {
    serde_json::from_str(text).map_err(|e| StorageError::Corrupt(format!("{what}: {e}")))
}

fn int(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn unsigned(n: i32) -> Result<u32, StorageError> {
    u32::try_from(n).map_err(corrupt)
}

/// A gate's request for approval, as the engine opens it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApprovalRequest {
    /// Its id.
    pub id: String,
    /// The gate's step key.
    pub step: String,
    /// Which opening of the gate this is (a rerun opens it again).
    pub round: u32,
    /// Who may decide (`{users, groups, roles}`).
    pub approvers: Value,
    /// Approvals from distinct people needed.
    pub min: u32,
    /// Whether the person who started the run may approve it.
    pub allow_initiator: bool,
    /// Whether every decision must carry a comment.
    pub require_comment: bool,
    /// The structured input approvers fill in (name → input spec).
    pub input: Value,
    /// Who started the run, if a person did.
    pub initiator: Option<String>,
    /// The question, rendered.
    pub message: String,
    /// What approving lets happen: the downstream steps and the devices they touch.
    pub plan: Value,
    /// `sha256:<hex>` of the plan; approvals count only for the digest they saw.
    pub plan_digest: String,
    /// When the gate times out, if it does.
    pub deadline: Option<DateTime<Utc>>,
}

/// One person's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDecision {
    /// The request.
    pub request: String,
    /// Who decided.
    pub user: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// Their comment.
    pub comment: Option<String>,
    /// Their structured input.
    pub input: Value,
    /// The plan digest they saw.
    pub plan_digest: String,
    /// The escalation stage it was made in (0: the first approvers).
    pub stage: u32,
    /// Where: `api`, `cli`, `web`, `email`.
    pub channel: String,
}

/// A change to approval state, committed with the run's change.
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalChange {
    /// A gate opened.
    Open(NewApprovalRequest),
    /// Someone decided.
    Decide(NewDecision),
    /// The plan behind the gate changed (inventory, inputs): decisions
    /// made on the old digest no longer count.
    Replan {
        /// The request.
        request: String,
        /// The new plan.
        plan: Value,
        /// Its digest.
        plan_digest: String,
    },
    /// The decision passes to the next approvers with a new deadline.
    Escalate {
        /// The request.
        request: String,
        /// The new stage.
        stage: u32,
        /// Who decides now.
        approvers: Value,
        /// Their deadline.
        deadline: Option<DateTime<Utc>>,
    },
    /// The request is closed: `approved`, `rejected`, `expired`, `cancelled`.
    Close {
        /// The request.
        request: String,
        /// Its final status.
        status: String,
        /// Why, in words.
        outcome: String,
    },
    /// A one-time mailed link is spent by this decision (fails the whole
    /// commit if it was spent already).
    UseLink {
        /// The link id.
        id: String,
    },
}

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

/// A stored decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionRecord {
    /// Who decided.
    pub user: String,
    /// `approve` or `deny`.
    pub verdict: String,
    /// Their comment.
    pub comment: Option<String>,
    /// Their structured input.
    pub input: Value,
    /// The plan digest they saw.
    pub plan_digest: String,
    /// The stage it was made in.
    pub stage: u32,
    /// Where.
    pub channel: String,
    /// When.
    pub decided_at: DateTime<Utc>,
}

/// A stored approval request with its decisions.
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRecord {
    /// Its id.
    pub id: String,
    /// The run.
    pub run: String,
    /// The gate's step key.
    pub step: String,
    /// Which opening of the gate.
    pub round: u32,
    /// The escalation stage (0: the first approvers).
    pub stage: u32,
    /// `pending`, `approved`, `rejected`, `expired`, `cancelled`.
    pub status: String,
    /// Who may decide now.
    pub approvers: Value,
    /// Approvals needed.
    pub min: u32,
    /// Whether the initiator may approve.
    pub allow_initiator: bool,
    /// Whether a comment is required.
    pub require_comment: bool,
    /// The structured input asked for.
    pub input: Value,
    /// Who started the run.
    pub initiator: Option<String>,
    /// The question.
    pub message: String,
    /// The plan the request is bound to now.
    pub plan: Value,
    /// Its digest.
    pub plan_digest: String,
    /// When the gate opened.
    pub requested_at: DateTime<Utc>,
    /// When the current stage times out.
    pub deadline: Option<DateTime<Utc>>,
    /// When it closed.
    pub decided_at: Option<DateTime<Utc>>,
    /// Why it closed.
    pub outcome: Option<String>,
    /// Every decision, oldest first (including those on earlier plans).
    pub decisions: Vec<DecisionRecord>,
}

impl ApprovalRecord {
    /// Whether it still waits for people.
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct ApprovalFilter {
    /// Only those with this status.
    pub status: Option<String>,
    /// Only this run's.
    pub run: Option<String>,
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

/// Applies approval changes and queues notifications inside a run's commit.
pub(crate) async fn apply(
    txn: &DatabaseTransaction,
    run_id: &str,
    changes: &[ApprovalChange],
    notifications: &[NewNotification],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let db = txn.get_database_backend();
    for change in changes {
        let statement = match change {
            ApprovalChange::Open(new) => Query::insert()
                .into_table(t("approval_requests"))
                .columns(
                    [
                        "id",
                        "run_id",
                        "step_key",
                        "round",
                        "stage",
                        "status",
                        "approvers",
                        "min",
                        "allow_initiator",
                        "require_comment",
                        "input_spec",
                        "initiator",
                        "message",
                        "plan",
                        "plan_digest",
                        "requested_at",
                        "deadline",
                    ]
                    .map(t),
                )
                .values_panic([
                    new.id.clone().into(),
                    run_id.into(),
                    new.step.clone().into(),
                    int(new.round).into(),
                    0i32.into(),
                    "pending".into(),
                    to_text(&new.approvers)?.into(),
                    int(new.min).into(),
                    new.allow_initiator.into(),
                    new.require_comment.into(),
                    to_text(&new.input)?.into(),
                    new.initiator.clone().into(),
                    new.message.clone().into(),
                    to_text(&new.plan)?.into(),
                    new.plan_digest.clone().into(),
                    now.into(),
                    new.deadline.into(),
                ])
                .to_owned()
                .pipe(|q| db.build(&q)),
            ApprovalChange::Decide(new) => Query::insert()
                .into_table(t("approval_decisions"))
                .columns(
                    [
                        "request_id",
                        "user_name",
                        "verdict",
                        "comment",
                        "input",
                        "plan_digest",
                        "stage",
                        "channel",
                        "decided_at",
                    ]
                    .map(t),
                )
                .values_panic([
                    new.request.clone().into(),
                    new.user.clone().into(),
                    new.verdict.clone().into(),
                    new.comment.clone().into(),
                    to_text(&new.input)?.into(),
                    new.plan_digest.clone().into(),
                    int(new.stage).into(),
                    new.channel.clone().into(),
                    now.into(),
                ])
                .to_owned()
                .pipe(|q| db.build(&q)),
            ApprovalChange::Replan {
                request,
                plan,
                plan_digest,
            } => pending_update(request)
                .value(t("plan"), to_text(plan)?)
                .value(t("plan_digest"), plan_digest.clone())
                .to_owned()
                .pipe(|q| db.build(&q)),
            ApprovalChange::Escalate {
                request,
                stage,
                approvers,
                deadline,
            } => pending_update(request)
                .value(t("stage"), int(*stage))
                .value(t("approvers"), to_text(approvers)?)
                .value(t("deadline"), *deadline)
                .to_owned()
                .pipe(|q| db.build(&q)),
            ApprovalChange::Close {
                request,
                status,
                outcome,
            } => pending_update(request)
                .value(t("status"), status.clone())
                .value(t("outcome"), outcome.clone())
                .value(t("decided_at"), now)
                .to_owned()
                .pipe(|q| db.build(&q)),
            ApprovalChange::UseLink { id } => Query::update()
                .table(t("approval_links"))
                .value(t("used_at"), now)
                .and_where(Expr::col(t("id")).eq(id.clone()))
                .and_where(Expr::col(t("used_at")).is_null())
                .and_where(Expr::col(t("expires_at")).gt(now))
                .to_owned()
                .pipe(|q| db.build(&q)),
        };
        let affected = txn.execute_raw(statement).await?.rows_affected();
        if affected != 1 {
            return Err(match change {
                ApprovalChange::UseLink { id } => {
                    StorageError::Conflict(format!("approval link {id} is spent or expired"))
                }
                ApprovalChange::Open(new) => {
                    StorageError::Conflict(format!("approval request {} exists", new.id))
                }
                ApprovalChange::Decide(new) => {
                    StorageError::Conflict(format!("{} already decided", new.user))
                }
                ApprovalChange::Replan { request, .. }
                | ApprovalChange::Escalate { request, .. }
                | ApprovalChange::Close { request, .. } => {
                    StorageError::Conflict(format!("approval request {request} is not pending"))
                }
            });
        }
    }
    if !notifications.is_empty() {
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
                to_text(&n.payload)?.into(),
                now.into(),
                now.into(),
                0i32.into(),
            ]);
        }
        txn.execute_raw(db.build(&insert)).await?;
    }
    Ok(())
}

/// Closes the pending requests of a run that ended (a gate cannot outlive
/// its run); returns the audit event recording it, if any was open.
pub(crate) async fn close_for_ended_run(
    txn: &DatabaseTransaction,
    run_id: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Result<Option<NewEvent>, StorageError> {
    let outcome = format!("the run ended ({status}) before the gate was decided");
    let update = Query::update()
        .table(t("approval_requests"))
        .value(t("status"), "cancelled")
        .value(t("outcome"), outcome.clone())
        .value(t("decided_at"), now)
        .and_where(Expr::col(t("run_id")).eq(run_id))
        .and_where(Expr::col(t("status")).eq("pending"))
        .to_owned();
    let closed = txn
        .execute_raw(txn.get_database_backend().build(&update))
        .await?
        .rows_affected();
    Ok((closed > 0).then(|| NewEvent {
        actor: String::new(),
        kind: "approval.cancelled".into(),
        run: Some(run_id.to_string()),
        step: None,
        device: None,
        data: json!({"outcome": outcome, "requests": closed}),
    }))
}

/// An update of a request that must still be pending.
fn pending_update(request: &str) -> sea_orm::sea_query::UpdateStatement {
    Query::update()
        .table(t("approval_requests"))
        .and_where(Expr::col(t("id")).eq(request))
        .and_where(Expr::col(t("status")).eq("pending"))
        .to_owned()
}

/// A tiny `pipe` so statement building reads top to bottom.
trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

/// The audit events recording approval changes and queued notifications
/// (`actor` is the change's actor: the deciding person for a decision).
pub(crate) fn events(
    run: &str,
    changes: &[ApprovalChange],
    notifications: &[NewNotification],
    actor: &str,
) -> Vec<NewEvent> {
    let event = |kind: &str, data: Value| NewEvent {
        actor: actor.to_string(),
        kind: kind.to_string(),
        run: Some(run.to_string()),
        step: None,
        device: None,
        data,
    };
    let mut events = Vec::new();
    for change in changes {
        events.push(match change {
            ApprovalChange::Open(new) => NewEvent {
                step: Some(new.step.clone()),
                ..event(
                    "approval.requested",
                    json!({
                        "request": new.id, "round": new.round, "approvers": new.approvers,
                        "min": new.min, "allow_initiator": new.allow_initiator,
                        "initiator": new.initiator, "message": new.message,
                        "plan": new.plan, "plan_digest": new.plan_digest,
                        "deadline": new.deadline,
                    }),
                )
            },
            ApprovalChange::Decide(new) => NewEvent {
                actor: format!("user:{}", new.user),
                ..event(
                    "approval.decision",
                    json!({
                        "request": new.request, "verdict": new.verdict, "comment": new.comment,
                        "input": new.input, "plan_digest": new.plan_digest,
                        "stage": new.stage, "channel": new.channel,
                    }),
                )
            },
            ApprovalChange::Replan {
                request,
                plan,
                plan_digest,
            } => event(
                "approval.plan_changed",
                json!({"request": request, "plan": plan, "plan_digest": plan_digest}),
            ),
            ApprovalChange::Escalate {
                request,
                stage,
                approvers,
                deadline,
            } => event(
                "approval.escalated",
                json!({"request": request, "stage": stage, "approvers": approvers, "deadline": deadline}),
            ),
            ApprovalChange::Close {
                request,
                status,
                outcome,
            } => event(
                &format!("approval.{status}"),
                json!({"request": request, "outcome": outcome}),
            ),
            ApprovalChange::UseLink { id } => event("approval.link_used", json!({"link": id})),
        });
    }
    for n in notifications {
        events.push(event(
            "notification.queued",
            json!({"kind": n.kind, "request": n.request}),
        ));
    }
    events
}

const REQUEST_COLUMNS: [&str; 19] = [
    "id",
    "run_id",
    "step_key",
    "round",
    "stage",
    "status",
    "approvers",
    "min",
    "allow_initiator",
    "require_comment",
    "input_spec",
    "initiator",
    "message",
    "plan",
    "plan_digest",
    "requested_at",
    "deadline",
    "decided_at",
    "outcome",
];

fn request_of(row: &QueryResult) -> Result<ApprovalRecord, StorageError> {
    Ok(ApprovalRecord {
        id: row.try_get("", "id")?,
        run: row.try_get("", "run_id")?,
        step: row.try_get("", "step_key")?,
        round: unsigned(row.try_get("", "round")?)?,
        stage: unsigned(row.try_get("", "stage")?)?,
        status: row.try_get("", "status")?,
        approvers: from_text(&row.try_get::<String>("", "approvers")?, "approvers")?,
        min: unsigned(row.try_get("", "min")?)?,
        allow_initiator: row.try_get("", "allow_initiator")?,
        require_comment: row.try_get("", "require_comment")?,
        input: from_text(&row.try_get::<String>("", "input_spec")?, "input spec")?,
        initiator: row.try_get("", "initiator")?,
        message: row.try_get("", "message")?,
        plan: from_text(&row.try_get::<String>("", "plan")?, "plan")?,
        plan_digest: row.try_get("", "plan_digest")?,
        requested_at: row.try_get("", "requested_at")?,
        deadline: row.try_get("", "deadline")?,
        decided_at: row.try_get("", "decided_at")?,
        outcome: row.try_get("", "outcome")?,
        decisions: Vec::new(),
    })
}

fn decision_of(row: &QueryResult) -> Result<(String, DecisionRecord), StorageError> {
    Ok((
        row.try_get("", "request_id")?,
        DecisionRecord {
            user: row.try_get("", "user_name")?,
            verdict: row.try_get("", "verdict")?,
            comment: row.try_get("", "comment")?,
            input: from_text(&row.try_get::<String>("", "input")?, "decision input")?,
            plan_digest: row.try_get("", "plan_digest")?,
            stage: unsigned(row.try_get("", "stage")?)?,
            channel: row.try_get("", "channel")?,
            decided_at: row.try_get("", "decided_at")?,
        },
    ))
}

impl Store {
    async fn select_requests(
        &self,
        query: SelectStatement,
    ) -> Result<Vec<ApprovalRecord>, StorageError> {
        let db = self.db.get_database_backend();
        let mut requests: Vec<ApprovalRecord> = self
            .db
            .query_all_raw(db.build(&query))
            .await?
            .iter()
            .map(request_of)
            .collect::<Result<_, _>>()?;
        if requests.is_empty() {
            return Ok(requests);
        }
        let ids: Vec<String> = requests.iter().map(|r| r.id.clone()).collect();
        let decisions = Query::select()
            .columns(
                [
                    "request_id",
                    "user_name",
                    "verdict",
                    "comment",
                    "input",
                    "plan_digest",
                    "stage",
                    "channel",
                    "decided_at",
                ]
                .map(t),
            )
            .from(t("approval_decisions"))
            .and_where(Expr::col(t("request_id")).is_in(ids))
            .order_by(t("id"), Order::Asc)
            .to_owned();
        for row in self.db.query_all_raw(db.build(&decisions)).await? {
            let (request, decision) = decision_of(&row)?;
            if let Some(r) = requests.iter_mut().find(|r| r.id == request) {
                r.decisions.push(decision);
            }
        }
        Ok(requests)
    }

    /// One approval request with its decisions.
    pub async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StorageError> {
        let query = Query::select()
            .columns(REQUEST_COLUMNS.map(t))
            .from(t("approval_requests"))
            .and_where(Expr::col(t("id")).eq(id))
            .to_owned();
        Ok(self.select_requests(query).await?.into_iter().next())
    }

    /// The latest request of gate `step` of run `run`.
    pub async fn approval_of_step(
        &self,
        run: &str,
        step: &str,
    ) -> Result<Option<ApprovalRecord>, StorageError> {
        let query = Query::select()
            .columns(REQUEST_COLUMNS.map(t))
            .from(t("approval_requests"))
            .and_where(Expr::col(t("run_id")).eq(run))
            .and_where(Expr::col(t("step_key")).eq(step))
            .order_by(t("round"), Order::Desc)
            .limit(1)
            .to_owned();
        Ok(self.select_requests(query).await?.into_iter().next())
    }

    /// Requests, newest first.
    pub async fn approvals(
        &self,
        filter: &ApprovalFilter,
    ) -> Result<Vec<ApprovalRecord>, StorageError> {
        let mut query = Query::select()
            .columns(REQUEST_COLUMNS.map(t))
            .from(t("approval_requests"))
            .order_by(t("requested_at"), Order::Desc)
            .order_by(t("id"), Order::Desc)
            .limit(1000)
            .to_owned();
        if let Some(status) = &filter.status {
            query.and_where(Expr::col(t("status")).eq(status.clone()));
        }
        if let Some(run) = &filter.run {
            query.and_where(Expr::col(t("run_id")).eq(run.clone()));
        }
        self.select_requests(query).await
    }

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
                    payload: from_text(&r.try_get::<String>("", "payload")?, "payload")?,
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
