//! Monitoring webhooks: every delivery that was accepted (firing or
//! resolved), keyed so that a repeat is recognised across restarts and
//! across nodes, and the HMAC signatures already spent inside their replay
//! window (a captured signed request cannot be sent twice).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    /// SHA-256 (hex) of source, binding, dedupe key and status: one row per alert episode.
    Key,
    Source,
    Binding,
    DedupKey,
    Status,
    RunId,
    ReceivedAt,
    LastSeenAt,
    Repeats,
}

#[derive(DeriveIden)]
enum WebhookSignatures {
    Table,
    /// SHA-256 (hex) of source and signature.
    Hash,
    Source,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(
                        ColumnDef::new(WebhookDeliveries::Key)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Source)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebhookDeliveries::Binding).text().not_null())
                    .col(
                        ColumnDef::new(WebhookDeliveries::DedupKey)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::RunId)
                            .string_len(64)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::ReceivedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::LastSeenAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookDeliveries::Repeats)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_source")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Source)
                    .col(WebhookDeliveries::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookSignatures::Table)
                    .col(
                        ColumnDef::new(WebhookSignatures::Hash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebhookSignatures::Source)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebhookSignatures::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_signatures_expiry")
                    .table(WebhookSignatures::Table)
                    .col(WebhookSignatures::ExpiresAt)
                    .to_owned(),
            )
            .await
    }
}
