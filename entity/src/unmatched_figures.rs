use sea_orm::entity::prelude::*;

/// Report rows that are no affiliate of the store (another campaign, an unknown or null ad group): kept and shown, never pushed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "unmatched_figures")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub campaign_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub ad_group_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    pub clicks: i64,
    pub purchases: i64,
    pub sales_minor: i64,
    pub total_sales_minor: i64,
    pub brb_minor: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
