//! Approval requests and the decisions people make on them (the mails
//! that announce them and the links they carry are in [`crate::outbox`]).
//!
//! Requests, decisions and queued notifications change only inside a run's
//! commit ([`crate::ChangeSet::approvals`], [`crate::ChangeSet::notifications`]):
//! a gate's step state, its request and the mail announcing it commit
//! together, under the run's revision check — two approvers deciding at
//! once are serialised by it, and neither decision is lost.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use serde_json::{Value, json};

use crate::audit::NewEvent;
use crate::connect::Store;
use crate::error::StorageError;
use crate::outbox::NewNotification;
use crate::sql::{int, json, parse, t, unsigned};

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

    /// The distinct people who approved the plan the request is bound to
    /// now, in the order they did (approvals on an earlier plan do not count).
    pub fn approvers(&self) -> Vec<&str> {
        let mut users: Vec<&str> = Vec::new();
        for d in &self.decisions {
            if d.verdict == "approve"
                && d.plan_digest == self.plan_digest
                && !users.contains(&d.user.as_str())
            {
                users.push(&d.user);
            }
        }
        users
    }

    /// How many distinct people approved the current plan.
    pub fn approvals(&self) -> u32 {
        u32::try_from(self.approvers().len()).unwrap_or(u32::MAX)
    }

    /// Whether `user` already decided on the current plan.
    pub fn decided_by(&self, user: &str) -> bool {
        self.decisions
            .iter()
            .any(|d| d.user == user && d.plan_digest == self.plan_digest)
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
            ApprovalChange::Open(new) => db.build(
                &Query::insert()
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
                        json(&new.approvers)?.into(),
                        int(new.min).into(),
                        new.allow_initiator.into(),
                        new.require_comment.into(),
                        json(&new.input)?.into(),
                        new.initiator.clone().into(),
                        new.message.clone().into(),
                        json(&new.plan)?.into(),
                        new.plan_digest.clone().into(),
                        now.into(),
                        new.deadline.into(),
                    ])
                    .to_owned(),
            ),
            ApprovalChange::Decide(new) => db.build(
                &Query::insert()
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
                        json(&new.input)?.into(),
                        new.plan_digest.clone().into(),
                        int(new.stage).into(),
                        new.channel.clone().into(),
                        now.into(),
                    ])
                    .to_owned(),
            ),
            ApprovalChange::Replan {
                request,
                plan,
                plan_digest,
            } => db.build(
                &pending_update(request)
                    .value(t("plan"), json(plan)?)
                    .value(t("plan_digest"), plan_digest.clone())
                    .to_owned(),
            ),
            ApprovalChange::Escalate {
                request,
                stage,
                approvers,
                deadline,
            } => db.build(
                &pending_update(request)
                    .value(t("stage"), int(*stage))
                    .value(t("approvers"), json(approvers)?)
                    .value(t("deadline"), *deadline)
                    .to_owned(),
            ),
            ApprovalChange::Close {
                request,
                status,
                outcome,
            } => db.build(
                &pending_update(request)
                    .value(t("status"), status.clone())
                    .value(t("outcome"), outcome.clone())
                    .value(t("decided_at"), now)
                    .to_owned(),
            ),
            ApprovalChange::UseLink { id } => db.build(
                &Query::update()
                    .table(t("approval_links"))
                    .value(t("used_at"), now)
                    .and_where(Expr::col(t("id")).eq(id.clone()))
                    .and_where(Expr::col(t("used_at")).is_null())
                    .and_where(Expr::col(t("expires_at")).gt(now))
                    .to_owned(),
            ),
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
    crate::outbox::queue(txn, run_id, notifications, now).await?;
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
        approvers: parse(&row.try_get::<String>("", "approvers")?, "approvers")?,
        min: unsigned(row.try_get("", "min")?)?,
        allow_initiator: row.try_get("", "allow_initiator")?,
        require_comment: row.try_get("", "require_comment")?,
        input: parse(&row.try_get::<String>("", "input_spec")?, "input spec")?,
        initiator: row.try_get("", "initiator")?,
        message: row.try_get("", "message")?,
        plan: parse(&row.try_get::<String>("", "plan")?, "plan")?,
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
            input: parse(&row.try_get::<String>("", "input")?, "decision input")?,
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
}
