//! `runs`: one execution of one pinned playbook version.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub version_id: i64,
    pub playbook_name: String,
    pub playbook_version: String,
    pub digest: String,
    /// The state's name, for queries.
    pub status: String,
    /// The whole state, as JSON.
    #[sea_orm(column_type = "Text")]
    pub state: String,
    #[sea_orm(column_type = "Text")]
    pub inputs: String,
    #[sea_orm(column_type = "Text")]
    pub trigger: String,
    pub dry_run: bool,
    pub drill: bool,
    /// Bumped by every transition; a writer that read an older revision loses.
    pub revision: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The key the run counts against for its playbook's concurrency limit.
    pub concurrency_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
