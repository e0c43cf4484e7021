//! `step_runs`: one step (or one fan-out item) of one run.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "step_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: String,
    /// The step id, or `id[item]` for a fan-out item.
    #[sea_orm(primary_key, auto_increment = false)]
    pub step_key: String,
    pub step_id: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub item: Option<String>,
    pub status: String,
    #[sea_orm(column_type = "Text")]
    pub state: String,
    pub attempt: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub outputs: Option<String>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
