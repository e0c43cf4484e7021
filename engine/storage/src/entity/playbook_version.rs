//! `playbook_versions`: one immutable published revision per row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "playbook_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    pub version: String,
    /// `sha256:<hex>` of the canonical content.
    pub digest: String,
    /// The YAML as published, byte for byte.
    #[sea_orm(column_type = "Text")]
    pub source: String,
    /// RFC 8785 canonical JSON of the typed playbook; the digest covers it.
    #[sea_orm(column_type = "Text")]
    pub canonical: String,
    /// JSON object: `name@major` → pinned plugin version and digest.
    #[sea_orm(column_type = "Text")]
    pub plugins: String,
    pub published_at: DateTimeUtc,
    pub published_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
