//! Runs, their steps and attempts, durable timers, leases and the device
//! inventory.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum PlaybookVersions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Runs {
    Table,
    Id,
    VersionId,
    PlaybookName,
    PlaybookVersion,
    Digest,
    Status,
    State,
    Inputs,
    Trigger,
    DryRun,
    Drill,
    Revision,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum StepRuns {
    Table,
    RunId,
    StepKey,
    StepId,
    Item,
    Status,
    State,
    Attempt,
    Outputs,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Attempts {
    Table,
    RunId,
    StepKey,
    Number,
    IdempotencyKey,
    Status,
    State,
    Node,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Timers {
    Table,
    Id,
    RunId,
    StepKey,
    FireAt,
    Purpose,
    Fired,
}

#[derive(DeriveIden)]
enum Leases {
    Table,
    RunId,
    Node,
    AcquiredAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum Devices {
    Table,
    Id,
    DeviceType,
    Site,
    Tags,
    Criticality,
    Firmware,
    CertSerial,
    Owner,
    Drill,
    UpdatedAt,
}

fn run_fk(from: (impl IntoIden, impl IntoIden)) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from.0, from.1)
        .to(Runs::Table, Runs::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Runs::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Runs::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Runs::VersionId).big_integer().not_null())
                    .col(ColumnDef::new(Runs::PlaybookName).string_len(63).not_null())
                    .col(
                        ColumnDef::new(Runs::PlaybookVersion)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Runs::Digest).string_len(71).not_null())
                    .col(ColumnDef::new(Runs::Status).string_len(32).not_null())
                    .col(ColumnDef::new(Runs::State).text().not_null())
                    .col(ColumnDef::new(Runs::Inputs).text().not_null())
                    .col(ColumnDef::new(Runs::Trigger).text().not_null())
                    .col(ColumnDef::new(Runs::DryRun).boolean().not_null())
                    .col(ColumnDef::new(Runs::Drill).boolean().not_null())
                    .col(ColumnDef::new(Runs::Revision).big_integer().not_null())
                    .col(
                        ColumnDef::new(Runs::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Runs::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Runs::Table, Runs::VersionId)
                            .to(PlaybookVersions::Table, PlaybookVersions::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("runs_status")
                    .table(Runs::Table)
                    .col(Runs::Status)
                    .col(Runs::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(StepRuns::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(StepRuns::RunId).string_len(64).not_null())
                    .col(ColumnDef::new(StepRuns::StepKey).string_len(255).not_null())
                    .col(ColumnDef::new(StepRuns::StepId).string_len(63).not_null())
                    .col(ColumnDef::new(StepRuns::Item).text().null())
                    .col(ColumnDef::new(StepRuns::Status).string_len(32).not_null())
                    .col(ColumnDef::new(StepRuns::State).text().not_null())
                    .col(ColumnDef::new(StepRuns::Attempt).integer().not_null())
                    .col(ColumnDef::new(StepRuns::Outputs).text().null())
                    .col(
                        ColumnDef::new(StepRuns::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(Index::create().col(StepRuns::RunId).col(StepRuns::StepKey))
                    .foreign_key(&mut run_fk((StepRuns::Table, StepRuns::RunId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Attempts::RunId).string_len(64).not_null())
                    .col(ColumnDef::new(Attempts::StepKey).string_len(255).not_null())
                    .col(ColumnDef::new(Attempts::Number).integer().not_null())
                    .col(
                        ColumnDef::new(Attempts::IdempotencyKey)
                            .string_len(400)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Attempts::Status).string_len(32).not_null())
                    .col(ColumnDef::new(Attempts::State).text().not_null())
                    .col(ColumnDef::new(Attempts::Node).string_len(128).not_null())
                    .col(
                        ColumnDef::new(Attempts::StartedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Attempts::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Attempts::RunId)
                            .col(Attempts::StepKey)
                            .col(Attempts::Number),
                    )
                    .foreign_key(&mut run_fk((Attempts::Table, Attempts::RunId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Timers::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Timers::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Timers::RunId).string_len(64).not_null())
                    .col(ColumnDef::new(Timers::StepKey).string_len(255).not_null())
                    .col(
                        ColumnDef::new(Timers::FireAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Timers::Purpose).string_len(32).not_null())
                    .col(ColumnDef::new(Timers::Fired).boolean().not_null())
                    .foreign_key(&mut run_fk((Timers::Table, Timers::RunId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("timers_due")
                    .table(Timers::Table)
                    .col(Timers::Fired)
                    .col(Timers::FireAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Leases::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Leases::RunId)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Leases::Node).string_len(128).not_null())
                    .col(
                        ColumnDef::new(Leases::AcquiredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Leases::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut run_fk((Leases::Table, Leases::RunId)))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Devices::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Devices::Id)
                            .string_len(128)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Devices::DeviceType)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Devices::Site).string_len(128).not_null())
                    .col(ColumnDef::new(Devices::Tags).text().not_null())
                    .col(
                        ColumnDef::new(Devices::Criticality)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Devices::Firmware).string_len(64).not_null())
                    .col(ColumnDef::new(Devices::CertSerial).string_len(128).null())
                    .col(ColumnDef::new(Devices::Owner).string_len(128).not_null())
                    .col(ColumnDef::new(Devices::Drill).boolean().not_null())
                    .col(
                        ColumnDef::new(Devices::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }
}
