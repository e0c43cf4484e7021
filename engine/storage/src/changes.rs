//! One decision of the run engine, committed in one transaction: the run's
//! new state, its steps', its attempts' and its timers' — all or nothing,
//! and only if nobody changed the run since the engine read it.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;

use crate::connect::Store;
use crate::entity::{attempt, lease, run, step_run, timer};
use crate::error::StorageError;
use crate::runs::StoredState;
use crate::sql::json;

/// A step's new state.
#[derive(Debug, Clone, PartialEq)]
pub struct StepChange {
    /// The step key.
    pub key: String,
    /// Its new state.
    pub state: StoredState,
    /// Its current attempt number.
    pub attempt: u32,
    /// Its outputs, when this change records them.
    pub outputs: Option<Value>,
}

/// An attempt created or moved.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptChange {
    /// A new attempt record.
    Start {
        /// The step key.
        step: String,
        /// The attempt number, from 1.
        number: u32,
        /// `run/step/attempt`.
        idempotency_key: String,
        /// The node that will execute it.
        node: String,
        /// Its first state.
        state: StoredState,
    },
    /// An existing attempt's new state.
    Update {
        /// The step key.
        step: String,
        /// The attempt number.
        number: u32,
        /// Its new state.
        state: StoredState,
        /// The node now responsible (changes when an interrupted attempt is taken over).
        node: Option<String>,
        /// When it ended, if it did.
        finished_at: Option<DateTime<Utc>>,
    },
}

/// A durable timer armed or spent.
#[derive(Debug, Clone, PartialEq)]
pub enum TimerChange {
    /// Fire at `at` for `step`.
    Arm {
        /// The step key.
        step: String,
        /// When.
        at: DateTime<Utc>,
        /// Why (`wait`, `backoff`, `pause`, `approval_timeout`…).
        purpose: String,
    },
    /// The timer fired and was handled.
    Spend {
        /// Its id.
        id: i64,
    },
}

/// Everything one engine decision changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeSet {
    /// The run's new state, if it changes.
    pub run: Option<StoredState>,
    /// Step rows created now (the items of a fan-out), with their first state.
    pub new_steps: Vec<(String, StoredState)>,
    /// Steps that change.
    pub steps: Vec<StepChange>,
    /// Attempts created or changed.
    pub attempts: Vec<AttemptChange>,
    /// Timers armed or spent.
    pub timers: Vec<TimerChange>,
    /// The run starts now: admit it only if its concurrency key has a free
    /// slot under this limit (else [`StorageError::AtCapacity`], nothing written).
    pub admit: Option<u32>,
    /// Who caused the change (`user:alice`), for its audit events; by
    /// default the node that commits it (`node:NAME`), or `engine`.
    pub actor: Option<String>,
    /// Audit events beyond those derived from the changes themselves (what
    /// a starting attempt will call, with its inputs); an empty actor is
    /// filled in like the derived events'.
    pub events: Vec<crate::audit::NewEvent>,
    /// Values that must never reach the audit log in clear (the run's
    /// secret inputs): wherever they appear in an event, `[secret]` stands.
    pub secrets: Vec<String>,
    /// Approval requests opened, decided, escalated or closed by this change.
    pub approvals: Vec<crate::approvals::ApprovalChange>,
    /// Mails to send once this change commits (the outbox).
    pub notifications: Vec<crate::outbox::NewNotification>,
}

/// A stored attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    /// The step key.
    pub step: String,
    /// The attempt number.
    pub number: u32,
    /// `run/step/attempt`.
    pub idempotency_key: String,
    /// Its state.
    pub state: StoredState,
    /// The node responsible for it.
    pub node: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// A stored timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerRecord {
    /// Its id.
    pub id: i64,
    /// The run.
    pub run: String,
    /// The step key.
    pub step: String,
    /// When it fires.
    pub at: DateTime<Utc>,
    /// Why.
    pub purpose: String,
}

fn number(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl Store {
    /// Applies `changes` to run `run_id` in one transaction, if the run is
    /// still at `revision`. Returns the new revision. On any error nothing
    /// is written.
    pub async fn commit(
        &self,
        run_id: &str,
        revision: i64,
        changes: &ChangeSet,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        self.commit_as(None, run_id, revision, changes, now).await
    }

    /// [`Store::commit`] by the node driving the run: also fenced by its
    /// lease, so a node that lost the lease (it stalled past expiry and
    /// another node took over) cannot write ([`StorageError::LeaseLost`]).
    /// People's actions (cancel, gate decisions) hold no lease and use
    /// [`Store::commit`].
    pub async fn commit_as(
        &self,
        holder: Option<&str>,
        run_id: &str,
        revision: i64,
        changes: &ChangeSet,
        now: DateTime<Utc>,
    ) -> Result<i64, StorageError> {
        let txn = self.begin_write().await?;
        if let Some(limit) = changes.admit {
            crate::concurrency::admit(&txn, run_id, limit).await?;
        }
        let mut bump = run::Entity::update_many()
            .col_expr(run::Column::Revision, Expr::value(revision + 1))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(run_id))
            .filter(run::Column::Revision.eq(revision));
        if let Some(state) = &changes.run {
            bump = bump
                .col_expr(run::Column::Status, Expr::value(state.status.clone()))
                .col_expr(run::Column::State, Expr::value(json(&state.state)?));
        }
        if let Some(node) = holder {
            // In the same statement as the revision check: no extra round trip.
            bump = bump.filter(Expr::exists(
                Query::select()
                    .expr(Expr::val(1))
                    .from(lease::Entity)
                    .and_where(lease::Column::RunId.eq(run_id))
                    .and_where(lease::Column::Node.eq(node))
                    .and_where(lease::Column::ExpiresAt.gte(now))
                    .to_owned(),
            ));
        }
        if bump.exec(&txn).await?.rows_affected != 1 {
            if let Some(node) = holder {
                let held = lease::Entity::find_by_id(run_id.to_string())
                    .one(&txn)
                    .await?
                    .is_some_and(|l| l.node == node && l.expires_at >= now);
                if !held {
                    return Err(StorageError::LeaseLost {
                        run: run_id.to_string(),
                        node: node.to_string(),
                    });
                }
            }
            return Err(StorageError::StaleRevision {
                run: run_id.to_string(),
                revision,
            });
        }
        crate::runs::insert_steps(
            &txn,
            run_id,
            changes
                .new_steps
                .iter()
                .map(|(key, state)| (key.as_str(), state, None)),
            now,
        )
        .await?;
        for step in &changes.steps {
            let mut update = step_run::Entity::update_many()
                .col_expr(
                    step_run::Column::Status,
                    Expr::value(step.state.status.clone()),
                )
                .col_expr(
                    step_run::Column::State,
                    Expr::value(json(&step.state.state)?),
                )
                .col_expr(step_run::Column::Attempt, Expr::value(number(step.attempt)))
                .col_expr(step_run::Column::UpdatedAt, Expr::value(now))
                .filter(step_run::Column::RunId.eq(run_id))
                .filter(step_run::Column::StepKey.eq(&step.key));
            if let Some(outputs) = &step.outputs {
                update = update.col_expr(step_run::Column::Outputs, Expr::value(json(outputs)?));
            }
            if update.exec(&txn).await?.rows_affected != 1 {
                return Err(StorageError::NotFound(format!(
                    "step {} of run {run_id}",
                    step.key
                )));
            }
        }
        // New attempts first, many per statement (a fan-out wave starts
        // hundreds at once); then updates, which may touch them.
        let mut started = Vec::new();
        for change in &changes.attempts {
            if let AttemptChange::Start {
                step,
                number: n,
                idempotency_key,
                node,
                state,
            } = change
            {
                started.push(attempt::ActiveModel {
                    run_id: Set(run_id.to_string()),
                    step_key: Set(step.clone()),
                    number: Set(number(*n)),
                    idempotency_key: Set(idempotency_key.clone()),
                    status: Set(state.status.clone()),
                    state: Set(json(&state.state)?),
                    node: Set(node.clone()),
                    started_at: Set(now),
                    finished_at: Set(None),
                });
            }
        }
        for chunk in crate::runs::batches(&started) {
            attempt::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
        for change in &changes.attempts {
            match change {
                AttemptChange::Start { .. } => {}
                AttemptChange::Update {
                    step,
                    number: n,
                    state,
                    node,
                    finished_at,
                } => {
                    let mut update = attempt::Entity::update_many()
                        .col_expr(attempt::Column::Status, Expr::value(state.status.clone()))
                        .col_expr(attempt::Column::State, Expr::value(json(&state.state)?))
                        .col_expr(attempt::Column::FinishedAt, Expr::value(*finished_at))
                        .filter(attempt::Column::RunId.eq(run_id))
                        .filter(attempt::Column::StepKey.eq(step))
                        .filter(attempt::Column::Number.eq(number(*n)));
                    if let Some(node) = node {
                        update = update.col_expr(attempt::Column::Node, Expr::value(node.clone()));
                    }
                    if update.exec(&txn).await?.rows_affected != 1 {
                        return Err(StorageError::NotFound(format!(
                            "attempt {step}/{n} of run {run_id}"
                        )));
                    }
                }
            }
        }
        for change in &changes.timers {
            match change {
                TimerChange::Arm { step, at, purpose } => {
                    timer::ActiveModel {
                        run_id: Set(run_id.to_string()),
                        step_key: Set(step.clone()),
                        fire_at: Set(*at),
                        purpose: Set(purpose.clone()),
                        fired: Set(false),
                        ..Default::default()
                    }
                    .insert(&txn)
                    .await?;
                }
                TimerChange::Spend { id } => {
                    let spent = timer::Entity::update_many()
                        .col_expr(timer::Column::Fired, Expr::value(true))
                        .filter(timer::Column::Id.eq(*id))
                        .filter(timer::Column::RunId.eq(run_id))
                        .filter(timer::Column::Fired.eq(false))
                        .exec(&txn)
                        .await?;
                    if spent.rows_affected != 1 {
                        return Err(StorageError::NotFound(format!(
                            "unfired timer {id} of run {run_id}"
                        )));
                    }
                }
            }
        }
        // A failed run is mailed about (the outbox row commits with the failure).
        let mut notifications = changes.notifications.clone();
        if changes.run.as_ref().is_some_and(|s| s.status == "failed") {
            notifications.push(crate::outbox::NewNotification {
                kind: "run_failed".into(),
                request: None,
                payload: serde_json::json!({}),
            });
        }
        crate::approvals::apply(&txn, run_id, &changes.approvals, &notifications, now).await?;
        // A gate cannot outlive its run: once the run stops moving forward
        // (ended, or compensating), its pending requests close.
        let ended = match &changes.run {
            Some(state) if !["queued", "running", "waiting"].contains(&state.status.as_str()) => {
                crate::approvals::close_for_ended_run(&txn, run_id, &state.status, now).await?
            }
            _ => None,
        };
        // The change's audit events, in the same transaction: no transition
        // without its record, no record without its transition.
        let actor = holder.map_or_else(|| "engine".to_string(), |n| format!("node:{n}"));
        let mut events = crate::audit::events_of(run_id, changes, &actor);
        events.extend(crate::approvals::events(
            run_id,
            &changes.approvals,
            &notifications,
            changes.actor.as_deref().unwrap_or(&actor),
        ));
        events.extend(ended.map(|mut event| {
            event.actor = changes.actor.clone().unwrap_or_else(|| actor.clone());
            event
        }));
        events.extend(changes.events.iter().cloned().map(|mut event| {
            if event.actor.is_empty() {
                event.actor = changes.actor.clone().unwrap_or_else(|| actor.clone());
            }
            event
        }));
        for event in &mut events {
            crate::audit::redact(&mut event.data, &changes.secrets);
        }
        crate::audit::append(&txn, self.backend(), &events, now).await?;
        fail::fail_point!("store.commit.before");
        txn.commit().await?;
        fail::fail_point!("store.commit.after");
        Ok(revision + 1)
    }

    /// Every attempt of a run, by step and number.
    pub async fn attempts(&self, run_id: &str) -> Result<Vec<AttemptRecord>, StorageError> {
        attempt::Entity::find()
            .filter(attempt::Column::RunId.eq(run_id))
            .order_by_asc(attempt::Column::StepKey)
            .order_by_asc(attempt::Column::Number)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|a| {
                Ok(AttemptRecord {
                    state: StoredState {
                        status: a.status,
                        state: serde_json::from_str(&a.state)
                            .map_err(|e| StorageError::Corrupt(format!("attempt state: {e}")))?,
                    },
                    number: u32::try_from(a.number).unwrap_or(0),
                    step: a.step_key,
                    idempotency_key: a.idempotency_key,
                    node: a.node,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                })
            })
            .collect()
    }

    /// Unfired timers of `run_id` (all of them, due or not), earliest first.
    pub async fn timers(&self, run_id: &str) -> Result<Vec<TimerRecord>, StorageError> {
        Ok(timer::Entity::find()
            .filter(timer::Column::RunId.eq(run_id))
            .filter(timer::Column::Fired.eq(false))
            .order_by_asc(timer::Column::FireAt)
            .limit(10_000)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|t| TimerRecord {
                id: t.id,
                run: t.run_id,
                step: t.step_key,
                at: t.fire_at,
                purpose: t.purpose,
            })
            .collect())
    }
}
