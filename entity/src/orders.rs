use sea_orm::entity::prelude::*;

/// The ledger: one order per (store, affiliate, day), what it should say (`version`) and what the program was last told (`pushed_*`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub store_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub affiliate_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: Date,
    #[sea_orm(unique)]
    pub number: String,
    pub currency: String,
    pub clicks: i64,
    pub purchases: i64,
    pub units: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
    pub status: crate::states::OrderStatus,
    pub version: i32,
    pub basis: String,
    pub computed_at: DateTimeUtc,
    pub push_state: crate::states::PushState,
    pub pushed_version: i32,
    pub pushed_sales_minor: Option<i64>,
    pub pushed_commission_minor: Option<i64>,
    pub pushed_status: Option<String>,
    pub remote_id: Option<String>,
    pub create_attempted: bool,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_push_error: Option<String>,
    pub pushed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// JSON of what a held decrease would set, while the merchant decides.
    #[sea_orm(column_type = "Text", nullable)]
    pub held: Option<String>,
    pub hold_state: Option<crate::states::HoldState>,
    pub held_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
