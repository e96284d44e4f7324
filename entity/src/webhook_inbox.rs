use sea_orm::entity::prelude::*;

/// One row per accepted `webhook-id`: the dedupe key, written in the same transaction as the effect.
/// Payloads are not kept (an install carries the program's access token).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_inbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub webhook_id: String,
    pub event_type: String,
    pub store_id: Option<String>,
    /// `applied` or `ignored` (unknown event type).
    pub outcome: String,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
