//! Approval gates: one request per gate opening (its approvers, quorum,
//! the plan it is bound to), the decisions people made on it, the
//! one-time links mailed to approvers, and the notification outbox (mails
//! to send, written in the same transaction as what they announce).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ApprovalRequests {
    Table,
    Id,
    RunId,
    StepKey,
    Round,
    Stage,
    Status,
    Approvers,
    Min,
    AllowInitiator,
    RequireComment,
    InputSpec,
    Initiator,
    Message,
    Plan,
    PlanDigest,
    RequestedAt,
    Deadline,
    DecidedAt,
    Outcome,
}

#[derive(DeriveIden)]
enum ApprovalDecisions {
    Table,
    Id,
    RequestId,
    UserName,
    Verdict,
    Comment,
    Input,
    PlanDigest,
    Stage,
    Channel,
    DecidedAt,
}

#[derive(DeriveIden)]
enum ApprovalLinks {
    Table,
    Id,
    RequestId,
    UserName,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Id,
    Kind,
    RunId,
    RequestId,
    Payload,
    CreatedAt,
    NextAttemptAt,
    Attempts,
    LastError,
    SentAt,
}

fn text(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name).text().not_null().to_owned()
}

fn when(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn maybe_when(name: impl IntoIden) -> ColumnDef {
    ColumnDef::new(name)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApprovalRequests::Table)
                    .col(
                        ColumnDef::new(ApprovalRequests::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ApprovalRequests::RunId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalRequests::StepKey)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ApprovalRequests::Round).integer().not_null())
                    .col(ColumnDef::new(ApprovalRequests::Stage).integer().not_null())
                    .col(
                        ColumnDef::new(ApprovalRequests::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(text(ApprovalRequests::Approvers))
                    .col(ColumnDef::new(ApprovalRequests::Min).integer().not_null())
                    .col(
                        ColumnDef::new(ApprovalRequests::AllowInitiator)
                            .boolean()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalRequests::RequireComment)
                            .boolean()
                            .not_null(),
                    )
                    .col(text(ApprovalRequests::InputSpec))
                    .col(
                        ColumnDef::new(ApprovalRequests::Initiator)
                            .string_len(255)
                            .null(),
                    )
                    .col(text(ApprovalRequests::Message))
                    .col(text(ApprovalRequests::Plan))
                    .col(
                        ColumnDef::new(ApprovalRequests::PlanDigest)
                            .string_len(71)
                            .not_null(),
                    )
                    .col(when(ApprovalRequests::RequestedAt))
                    .col(maybe_when(ApprovalRequests::Deadline))
                    .col(maybe_when(ApprovalRequests::DecidedAt))
                    .col(ColumnDef::new(ApprovalRequests::Outcome).text().null())
                    .to_owned(),
            )
            .await?;
        // One request per opening of a gate (a rerun opens it again, with a new round).
        manager
            .create_index(
                Index::create()
                    .name("approval_requests_gate")
                    .table(ApprovalRequests::Table)
                    .col(ApprovalRequests::RunId)
                    .col(ApprovalRequests::StepKey)
                    .col(ApprovalRequests::Round)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("approval_requests_status")
                    .table(ApprovalRequests::Table)
                    .col(ApprovalRequests::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalDecisions::Table)
                    .col(
                        ColumnDef::new(ApprovalDecisions::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ApprovalDecisions::RequestId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalDecisions::UserName)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalDecisions::Verdict)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ApprovalDecisions::Comment).text().null())
                    .col(text(ApprovalDecisions::Input))
                    .col(
                        ColumnDef::new(ApprovalDecisions::PlanDigest)
                            .string_len(71)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalDecisions::Stage)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalDecisions::Channel)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(when(ApprovalDecisions::DecidedAt))
                    .to_owned(),
            )
            .await?;
        // A person decides once per plan: a changed plan asks everyone again.
        manager
            .create_index(
                Index::create()
                    .name("approval_decisions_once")
                    .table(ApprovalDecisions::Table)
                    .col(ApprovalDecisions::RequestId)
                    .col(ApprovalDecisions::UserName)
                    .col(ApprovalDecisions::PlanDigest)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ApprovalLinks::Table)
                    .col(
                        ColumnDef::new(ApprovalLinks::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ApprovalLinks::RequestId)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApprovalLinks::UserName)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(when(ApprovalLinks::CreatedAt))
                    .col(when(ApprovalLinks::ExpiresAt))
                    .col(maybe_when(ApprovalLinks::UsedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .col(
                        ColumnDef::new(Outbox::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Outbox::Kind).string_len(32).not_null())
                    .col(ColumnDef::new(Outbox::RunId).string_len(64).null())
                    .col(ColumnDef::new(Outbox::RequestId).string_len(64).null())
                    .col(text(Outbox::Payload))
                    .col(when(Outbox::CreatedAt))
                    .col(when(Outbox::NextAttemptAt))
                    .col(ColumnDef::new(Outbox::Attempts).integer().not_null())
                    .col(ColumnDef::new(Outbox::LastError).text().null())
                    .col(maybe_when(Outbox::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_due")
                    .table(Outbox::Table)
                    .col(Outbox::SentAt)
                    .col(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Outbox::Table.into_iden(),
            ApprovalLinks::Table.into_iden(),
            ApprovalDecisions::Table.into_iden(),
            ApprovalRequests::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
