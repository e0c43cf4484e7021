//! Run concurrency: the key a run counts against (`concurrency.key` of its
//! playbook, rendered when it started).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum Runs {
    Table,
    ConcurrencyKey,
    Status,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Runs::Table)
                    .add_column(ColumnDef::new(Runs::ConcurrencyKey).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("runs_concurrency")
                    .table(Runs::Table)
                    .col(Runs::ConcurrencyKey)
                    .col(Runs::Status)
                    .to_owned(),
            )
            .await
    }
}
