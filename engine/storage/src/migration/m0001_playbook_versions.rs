//! Immutable published playbook versions.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

#[derive(DeriveIden)]
enum PlaybookVersions {
    Table,
    Id,
    Name,
    Version,
    Digest,
    Source,
    Canonical,
    Plugins,
    PublishedAt,
    PublishedBy,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PlaybookVersions::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(PlaybookVersions::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(PlaybookVersions::Name)
                            .string_len(63)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlaybookVersions::Version)
                            .string_len(128)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlaybookVersions::Digest)
                            .string_len(71)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PlaybookVersions::Source).text().not_null())
                    .col(
                        ColumnDef::new(PlaybookVersions::Canonical)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(PlaybookVersions::Plugins).text().not_null())
                    .col(
                        ColumnDef::new(PlaybookVersions::PublishedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(PlaybookVersions::PublishedBy)
                            .string_len(255)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("playbook_versions_name_version")
                    .table(PlaybookVersions::Table)
                    .col(PlaybookVersions::Name)
                    .col(PlaybookVersions::Version)
                    .unique()
                    .to_owned(),
            )
            .await
    }
}
