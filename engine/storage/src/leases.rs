//! Leases: which engine node drives which run. A node holds a run only
//! while it keeps renewing the lease; when it dies, the lease expires and
//! another node takes the run over. Every claim is a single conditional
//! write, so two nodes can never both hold one run (the portable equivalent
//! of `FOR UPDATE SKIP LOCKED`: a node that loses a race simply moves on).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Query;
use sea_orm::sea_query::{Expr, ExprTrait as _, OnConflict};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};

use crate::connect::Store;
use crate::entity::{lease, run, timer};
use crate::error::StorageError;

/// Run statuses that need a node to drive them.
pub const ACTIVE_STATUSES: [&str; 4] = ["queued", "running", "waiting", "compensating"];

/// Active statuses in which a run may move on by itself. A `waiting` run
/// moves only when one of its timers falls due, or when someone decides a
/// gate (which makes it `running`), so idle waiting runs are not claimed.
const MOVING_STATUSES: [&str; 3] = ["queued", "running", "compensating"];

impl Store {
    /// Claims up to `limit` active runs that can move now and that no live
    /// lease holds, for `node` until `now + ttl`. Returns the claimed run
    /// ids, oldest run first. A `waiting` run is claimed only once one of
    /// its timers is due. Runs under a live lease — another node's, or this
    /// node's own (a task here drives them) — are not candidates, so they
    /// neither take a slot of `limit` nor cost a write.
    pub async fn claim_runs(
        &self,
        node: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
        limit: u64,
    ) -> Result<Vec<String>, StorageError> {
        let candidates: Vec<String> = run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .filter(
                Condition::any()
                    .add(run::Column::Status.is_in(MOVING_STATUSES))
                    .add(
                        Condition::all().add(run::Column::Status.eq("waiting")).add(
                            run::Column::Id.in_subquery(
                                Query::select()
                                    .column(timer::Column::RunId)
                                    .from(timer::Entity)
                                    .and_where(timer::Column::FireAt.lte(now))
                                    .and_where(timer::Column::Fired.eq(false))
                                    .to_owned(),
                            ),
                        ),
                    ),
            )
            .filter(
                run::Column::Id.not_in_subquery(
                    Query::select()
                        .column(lease::Column::RunId)
                        .from(lease::Entity)
                        .and_where(lease::Column::ExpiresAt.gte(now))
                        .to_owned(),
                ),
            )
            .order_by_asc(run::Column::CreatedAt)
            .limit(Ord::max(limit.saturating_mul(4), 16))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut claimed = Vec::new();
        for id in candidates {
            if claimed.len() as u64 >= limit {
                break;
            }
            if self.try_claim(&id, node, now, ttl).await? {
                fail::fail_point!("store.claim.after");
                claimed.push(id);
            }
        }
        Ok(claimed)
    }

    /// Takes the lease of one run if it is free or expired (or already ours).
    pub async fn claim_run(
        &self,
        run_id: &str,
        node: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<bool, StorageError> {
        self.try_claim(run_id, node, now, ttl).await
    }

    async fn try_claim(
        &self,
        run_id: &str,
        node: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<bool, StorageError> {
        let expires = now + ttl;
        let inserted = lease::Entity::insert(lease::ActiveModel {
            run_id: Set(run_id.to_string()),
            node: Set(node.to_string()),
            acquired_at: Set(now),
            expires_at: Set(expires),
        })
        .on_conflict(
            OnConflict::column(lease::Column::RunId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        if inserted == 1 {
            return Ok(true);
        }
        let taken = lease::Entity::update_many()
            .col_expr(lease::Column::Node, Expr::value(node.to_string()))
            .col_expr(lease::Column::AcquiredAt, Expr::value(now))
            .col_expr(lease::Column::ExpiresAt, Expr::value(expires))
            .filter(lease::Column::RunId.eq(run_id))
            .filter(
                lease::Column::ExpiresAt
                    .lt(now)
                    .or(lease::Column::Node.eq(node)),
            )
            .exec(&self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Extends `node`'s lease on `run_id`. `false` means the lease was lost
    /// (it expired and another node took it): stop driving the run.
    pub async fn renew_lease(
        &self,
        run_id: &str,
        node: &str,
        now: DateTime<Utc>,
        ttl: chrono::Duration,
    ) -> Result<bool, StorageError> {
        let renewed = lease::Entity::update_many()
            .col_expr(lease::Column::ExpiresAt, Expr::value(now + ttl))
            .filter(lease::Column::RunId.eq(run_id))
            .filter(lease::Column::Node.eq(node))
            .exec(&self.db)
            .await?;
        Ok(renewed.rows_affected == 1)
    }

    /// Gives up `node`'s lease on `run_id` (when the run is finished or the node stops).
    pub async fn release_lease(&self, run_id: &str, node: &str) -> Result<(), StorageError> {
        lease::Entity::delete_many()
            .filter(lease::Column::RunId.eq(run_id))
            .filter(lease::Column::Node.eq(node))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Who holds the lease of `run_id`, and until when.
    pub async fn lease_holder(
        &self,
        run_id: &str,
    ) -> Result<Option<(String, DateTime<Utc>)>, StorageError> {
        Ok(lease::Entity::find_by_id(run_id.to_string())
            .one(&self.db)
            .await?
            .map(|l| (l.node, l.expires_at)))
    }
}
