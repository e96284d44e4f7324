use sea_orm::entity::prelude::*;

/// One sync of a store: when, which days, what it found and did.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = true)]
    pub id: i64,
    pub store_id: String,
    pub trigger: String,
    pub from_day: Date,
    pub to_day: Date,
    pub started_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub rows: i32,
    pub changes: i32,
    pub pushes: i32,
    pub ignored_final: i32,
    pub unmatched: i32,
    /// Rows of known ad groups whose money or purchase metrics were missing or not numeric.
    pub incomplete: i32,
    /// Decreases held for the merchant.
    pub held: i32,
    pub status: crate::states::RunStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The job whose claim ran the sync (`jobs.id`, `jobs.attempts` then); none outside the queue.
    pub job_id: Option<i64>,
    pub job_attempt: Option<i32>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
