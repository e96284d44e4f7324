use sea_orm::entity::prelude::*;

/// One row of a sync's report, staged until the sync's ingest has taken it (then deleted).
/// Money in minor units. When the row is not `complete` its figures mean nothing (zeros, or a
/// first page's figures for a key that came again).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "report_rows")]
pub struct Model {
    /// The sync run reading the report.
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: i64,
    pub store_id: String,
    /// Of the store's campaign, with an ad group spelled `a{affiliate_id}`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub ours: bool,
    /// 0 when not `ours`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ad_group_id: String,
    /// False when a money or purchase metric was missing, or the key came on two pages.
    pub complete: bool,
    pub clicks: i64,
    pub detail_page_views: i64,
    pub add_to_carts: i64,
    pub purchases: i64,
    pub units: i64,
    pub sales_minor: i64,
    pub total_purchases: i64,
    pub total_units: i64,
    pub total_sales_minor: i64,
    pub brb_minor: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
