//! `attempts`: one try of one step.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub step_key: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub number: i32,
    /// `run/step/attempt`, unique across the database.
    pub idempotency_key: String,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub state: String,
    pub node: String,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
