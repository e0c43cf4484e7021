//! The audit log: events in order with their leaf hashes, the head (size
//! and last leaf, one row, locked by every append), signed checkpoints.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Seq,
    Time,
    Actor,
    Kind,
    RunId,
    StepKey,
    Device,
    Body,
    Leaf,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Size,
    Leaf,
}

#[derive(DeriveIden)]
enum AuditCheckpoints {
    Table,
    Size,
    Root,
    Note,
    SignedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(
                        ColumnDef::new(AuditEvents::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::Time)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(AuditEvents::Actor)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditEvents::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(AuditEvents::RunId).string_len(64).null())
                    .col(ColumnDef::new(AuditEvents::StepKey).string_len(255).null())
                    .col(ColumnDef::new(AuditEvents::Device).string_len(255).null())
                    .col(ColumnDef::new(AuditEvents::Body).text().not_null())
                    .col(ColumnDef::new(AuditEvents::Leaf).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("audit_events_run", AuditEvents::RunId),
            ("audit_events_device", AuditEvents::Device),
            ("audit_events_actor", AuditEvents::Actor),
            ("audit_events_time", AuditEvents::Time),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(AuditHead::Table)
                    .col(
                        ColumnDef::new(AuditHead::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditHead::Size).big_integer().not_null())
                    .col(ColumnDef::new(AuditHead::Leaf).string_len(64).not_null())
                    .to_owned(),
            )
            .await?;
        // The one head row exists from the start, so appends only ever lock
        // and update it (an insert race between first appenders is impossible).
        let genesis = Query::insert()
            .into_table(AuditHead::Table)
            .columns([AuditHead::Id, AuditHead::Size, AuditHead::Leaf])
            .values_panic([1.into(), 0i64.into(), "0".repeat(64).into()])
            .to_owned();
        manager.exec_stmt(genesis).await?;
        manager
            .create_table(
                Table::create()
                    .table(AuditCheckpoints::Table)
                    .col(
                        ColumnDef::new(AuditCheckpoints::Size)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AuditCheckpoints::Root)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(AuditCheckpoints::Note).text().not_null())
                    .col(
                        ColumnDef::new(AuditCheckpoints::SignedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}
