use sea_orm::entity::prelude::*;

/// One try of a job: outcome, HTTP status, truncated detail, duration.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "job_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = true)]
    pub id: i64,
    pub job_id: i64,
    pub store_id: String,
    pub attempt: i32,
    pub started_at: DateTimeUtc,
    pub duration_ms: i64,
    pub outcome: String,
    pub http_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
