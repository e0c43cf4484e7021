//! Plugin state the host keeps where plugins cannot write: the release
//! floor per plugin (anti-rollback) and per-run scratch entries.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum PluginFloors {
    Table,
    Name,
    ReleaseCounter,
    Digest,
    AcceptedAt,
}

#[derive(DeriveIden)]
enum PluginScratch {
    Table,
    RunId,
    Plugin,
    Key,
    Value,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PluginFloors::Table)
                    .col(
                        ColumnDef::new(PluginFloors::Name)
                            .string_len(63)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PluginFloors::ReleaseCounter)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginFloors::Digest)
                            .string_len(71)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginFloors::AcceptedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PluginScratch::Table)
                    .col(
                        ColumnDef::new(PluginScratch::RunId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginScratch::Plugin)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PluginScratch::Key)
                            .string_len(256)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PluginScratch::Value).blob().not_null())
                    .col(
                        ColumnDef::new(PluginScratch::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(PluginScratch::RunId)
                            .col(PluginScratch::Plugin)
                            .col(PluginScratch::Key),
                    )
                    .to_owned(),
            )
            .await
    }
}
