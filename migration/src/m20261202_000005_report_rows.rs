//! The report's rows as the sync reads them, staged page by page when the report is large
//! (issue 11): the ingest takes them a few affiliates at a time, so a sync's memory does not
//! grow with the report.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ReportRows {
    Table,
    RunId,
    StoreId,
    /// Whether the row is of the store's campaign and an ad group spelled `a{id}`.
    Ours,
    /// The `id` of `a{id}` when `ours`, else 0.
    AffiliateId,
    Day,
    CampaignId,
    AdGroupId,
    /// False when a money or purchase metric was missing, or the key came on two pages.
    Complete,
    Clicks,
    DetailPageViews,
    AddToCarts,
    Purchases,
    Units,
    SalesMinor,
    TotalPurchases,
    TotalUnits,
    TotalSalesMinor,
    BrbMinor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create();
        table
            .table(ReportRows::Table)
            .col(big_integer(ReportRows::RunId))
            .col(string(ReportRows::StoreId))
            .col(boolean(ReportRows::Ours))
            .col(big_integer(ReportRows::AffiliateId))
            .col(date(ReportRows::Day))
            .col(string(ReportRows::CampaignId))
            .col(string(ReportRows::AdGroupId))
            .col(boolean(ReportRows::Complete));
        for c in [
            ReportRows::Clicks,
            ReportRows::DetailPageViews,
            ReportRows::AddToCarts,
            ReportRows::Purchases,
            ReportRows::Units,
            ReportRows::SalesMinor,
            ReportRows::TotalPurchases,
            ReportRows::TotalUnits,
            ReportRows::TotalSalesMinor,
            ReportRows::BrbMinor,
        ] {
            table.col(big_integer(c));
        }
        // One key per report row; its prefix is how the ingest reads them, a few affiliates'
        // days at a time (an affiliate's ad group has one spelling, so the key stays the
        // report's (campaign, ad group, day)).
        table.primary_key(
            Index::create()
                .col(ReportRows::RunId)
                .col(ReportRows::Ours)
                .col(ReportRows::AffiliateId)
                .col(ReportRows::Day)
                .col(ReportRows::CampaignId)
                .col(ReportRows::AdGroupId),
        );
        manager.create_table(table.to_owned()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ReportRows::Table).to_owned())
            .await
    }
}
