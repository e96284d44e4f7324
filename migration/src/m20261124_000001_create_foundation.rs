//! Stores, their encrypted program credentials, the affiliate roster, the webhook inbox and the
//! merchant sessions: everything the signed store-app lifecycle needs.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Stores {
    Table,
    Id,
    Name,
    Url,
    Currency,
    Status,
    ProgramApiUrl,
    CommissionType,
    CommissionValue,
    CommissionUpdatedAt,
    InstalledAt,
    UninstalledAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ProgramCredentials {
    Table,
    StoreId,
    AccessToken,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Affiliates {
    Table,
    StoreId,
    AffiliateId,
    Name,
    RefCode,
    Status,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookInbox {
    Table,
    WebhookId,
    EventType,
    StoreId,
    Outcome,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    StoreId,
    State,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Stores::Table)
                    .col(string(Stores::Id).primary_key())
                    .col(string(Stores::Name))
                    .col(string(Stores::Url))
                    .col(string_len(Stores::Currency, 3))
                    .col(string(Stores::Status))
                    .col(string_null(Stores::ProgramApiUrl))
                    .col(string(Stores::CommissionType))
                    .col(string(Stores::CommissionValue))
                    .col(timestamp_with_time_zone(Stores::CommissionUpdatedAt))
                    .col(timestamp_with_time_zone(Stores::InstalledAt))
                    .col(timestamp_with_time_zone_null(Stores::UninstalledAt))
                    .col(timestamp_with_time_zone(Stores::CreatedAt))
                    .col(timestamp_with_time_zone(Stores::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_stores_status_uninstalled_at")
                    .table(Stores::Table)
                    .col(Stores::Status)
                    .col(Stores::UninstalledAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProgramCredentials::Table)
                    .col(string(ProgramCredentials::StoreId).primary_key())
                    .col(blob(ProgramCredentials::AccessToken))
                    .col(timestamp_with_time_zone(ProgramCredentials::CreatedAt))
                    .col(timestamp_with_time_zone(ProgramCredentials::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Affiliates::Table)
                    .col(string(Affiliates::StoreId))
                    .col(big_integer(Affiliates::AffiliateId))
                    .col(string(Affiliates::Name))
                    .col(string_null(Affiliates::RefCode))
                    .col(string(Affiliates::Status))
                    .col(timestamp_with_time_zone_null(Affiliates::DeletedAt))
                    .col(timestamp_with_time_zone(Affiliates::CreatedAt))
                    .col(timestamp_with_time_zone(Affiliates::UpdatedAt))
                    .primary_key(
                        Index::create()
                            .col(Affiliates::StoreId)
                            .col(Affiliates::AffiliateId),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(WebhookInbox::Table)
                    .col(string(WebhookInbox::WebhookId).primary_key())
                    .col(string(WebhookInbox::EventType))
                    .col(string_null(WebhookInbox::StoreId))
                    .col(string(WebhookInbox::Outcome))
                    .col(timestamp_with_time_zone(WebhookInbox::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_inbox_store_id")
                    .table(WebhookInbox::Table)
                    .col(WebhookInbox::StoreId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(string(Sessions::Id).primary_key())
                    .col(string_null(Sessions::StoreId))
                    .col(text(Sessions::State))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_store_id")
                    .table(Sessions::Table)
                    .col(Sessions::StoreId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_expires_at")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Sessions::Table.into_iden(),
            WebhookInbox::Table.into_iden(),
            Affiliates::Table.into_iden(),
            ProgramCredentials::Table.into_iden(),
            Stores::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
