//! API tokens: who a bearer token speaks for and with which API role. Only
//! the SHA-256 of each token's secret is stored, never the secret.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserName,
    Role,
    Name,
    SecretHash,
    CreatedAt,
    CreatedBy,
    ExpiresAt,
    RevokedAt,
    RevokedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiTokens::Table)
                    .col(
                        ColumnDef::new(ApiTokens::Id)
                            .string_len(32)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::UserName)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ApiTokens::Role).string_len(32).not_null())
                    .col(ColumnDef::new(ApiTokens::Name).string_len(255).not_null())
                    .col(
                        ColumnDef::new(ApiTokens::SecretHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::CreatedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(ApiTokens::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ColumnDef::new(ApiTokens::RevokedBy).string_len(255).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("api_tokens_user")
                    .table(ApiTokens::Table)
                    .col(ApiTokens::UserName)
                    .to_owned(),
            )
            .await
    }
}
