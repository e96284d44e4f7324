use sea_orm::entity::prelude::*;

/// Every version an order's amounts went through.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = true)]
    pub id: i64,
    pub store_id: String,
    pub affiliate_id: i64,
    pub day: Date,
    pub version: i32,
    pub sales_minor: i64,
    pub purchases: i64,
    pub commission_minor: i64,
    pub status: crate::states::OrderStatus,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
