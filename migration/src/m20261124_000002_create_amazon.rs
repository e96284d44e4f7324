//! The Amazon side of a store: its Login with Amazon connection, pending OAuth attempts, landing
//! pages and the minted link of every affiliate. Stores get their campaign id.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Stores {
    Table,
    CampaignId,
}

#[derive(DeriveIden)]
enum AmazonConnections {
    Table,
    StoreId,
    Region,
    Status,
    RefreshToken,
    AccessToken,
    AccessExpiresAt,
    ProfileId,
    AdvertiserId,
    AdvertiserName,
    CountryCode,
    CurrencyCode,
    Timezone,
    MarketplaceId,
    TemplateTag,
    Choices,
    Problem,
    ConnectedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OauthStates {
    Table,
    StateHash,
    StoreId,
    Region,
    CodeVerifier,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LandingPages {
    Table,
    StoreId,
    Id,
    Url,
    Asin,
    IsMain,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Links {
    Table,
    StoreId,
    AffiliateId,
    LandingPageId,
    Url,
    CreatedAt,
    UpdatedAt,
    RetiredAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Stores::Table)
                    .add_column(string_null(Stores::CampaignId))
                    .to_owned(),
            )
            .await?;
        // Existing stores get the id new installs get: "ab_" + store id.
        manager
            .exec_stmt(
                Query::update()
                    .table(Stores::Table)
                    .value(Stores::CampaignId, Expr::cust("'ab_' || \"id\""))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AmazonConnections::Table)
                    .col(string(AmazonConnections::StoreId).primary_key())
                    .col(string(AmazonConnections::Region))
                    .col(string(AmazonConnections::Status))
                    .col(blob_null(AmazonConnections::RefreshToken))
                    .col(blob_null(AmazonConnections::AccessToken))
                    .col(timestamp_with_time_zone_null(
                        AmazonConnections::AccessExpiresAt,
                    ))
                    .col(big_integer_null(AmazonConnections::ProfileId))
                    .col(string_null(AmazonConnections::AdvertiserId))
                    .col(string_null(AmazonConnections::AdvertiserName))
                    .col(string_null(AmazonConnections::CountryCode))
                    .col(string_null(AmazonConnections::CurrencyCode))
                    .col(string_null(AmazonConnections::Timezone))
                    .col(string_null(AmazonConnections::MarketplaceId))
                    .col(text_null(AmazonConnections::TemplateTag))
                    .col(text_null(AmazonConnections::Choices))
                    .col(text_null(AmazonConnections::Problem))
                    .col(timestamp_with_time_zone(AmazonConnections::ConnectedAt))
                    .col(timestamp_with_time_zone(AmazonConnections::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OauthStates::Table)
                    .col(string(OauthStates::StateHash).primary_key())
                    .col(string(OauthStates::StoreId))
                    .col(string(OauthStates::Region))
                    .col(blob(OauthStates::CodeVerifier))
                    .col(timestamp_with_time_zone(OauthStates::ExpiresAt))
                    .col(timestamp_with_time_zone_null(OauthStates::UsedAt))
                    .col(timestamp_with_time_zone(OauthStates::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oauth_states_store_id")
                    .table(OauthStates::Table)
                    .col(OauthStates::StoreId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LandingPages::Table)
                    .col(string(LandingPages::StoreId))
                    .col(string(LandingPages::Id))
                    .col(string_len(LandingPages::Url, 2048))
                    .col(string_null(LandingPages::Asin))
                    .col(boolean(LandingPages::IsMain))
                    .col(timestamp_with_time_zone(LandingPages::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(LandingPages::StoreId)
                            .col(LandingPages::Id),
                    )
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Links::Table)
                    .col(string(Links::StoreId))
                    .col(big_integer(Links::AffiliateId))
                    .col(string(Links::LandingPageId))
                    .col(text(Links::Url))
                    .col(timestamp_with_time_zone(Links::CreatedAt))
                    .col(timestamp_with_time_zone(Links::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Links::RetiredAt))
                    .primary_key(
                        Index::create()
                            .col(Links::StoreId)
                            .col(Links::AffiliateId)
                            .col(Links::LandingPageId),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Links::Table.into_iden(),
            LandingPages::Table.into_iden(),
            OauthStates::Table.into_iden(),
            AmazonConnections::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Stores::Table)
                    .drop_column(Stores::CampaignId)
                    .to_owned(),
            )
            .await
    }
}
