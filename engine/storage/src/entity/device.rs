//! `devices`: the asset inventory.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub device_type: String,
    pub site: String,
    /// A JSON list of strings.
    #[sea_orm(column_type = "Text")]
    pub tags: String,
    pub criticality: String,
    pub firmware: String,
    pub cert_serial: Option<String>,
    pub owner: String,
    pub drill: bool,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
