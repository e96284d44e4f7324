use sea_orm::entity::prelude::*;

/// Amazon's figures for one affiliate of a store on one marketplace day, money in minor units.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "daily_figures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
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
    pub first_seen_at: DateTimeUtc,
    /// When a reading first had no row for this day; zeroed only when still absent
    /// `confirm_absence_hours` later.
    pub absent_since: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
