use sea_orm::entity::prelude::*;

/// A unit of background work, claimed with a lease. `dedupe_key` keeps a second copy out.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = true)]
    pub id: i64,
    pub kind: String,
    pub store_id: String,
    #[sea_orm(column_type = "Text")]
    pub payload: String,
    #[sea_orm(unique)]
    pub dedupe_key: Option<String>,
    pub status: crate::states::JobStatus,
    pub attempts: i32,
    pub run_at: DateTimeUtc,
    pub lease_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
