//! The webhook inbox: every verified delivery's `webhook-id`, so that a redelivery is recognised
//! and answered without doing anything twice (DESIGN §4.1).
use chrono::{DateTime, Utc};
use entity::webhook_inbox;
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict},
};

use crate::domain::ids::StoreId;

/// Inserts the delivery's row (`outcome` = `applied`); false when this id is already there.
/// `store` is `None` where the store must not stay named (a redaction).
pub async fn record(
    conn: &impl ConnectionTrait,
    webhook_id: &str,
    event_type: &str,
    store: Option<&StoreId>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let row = webhook_inbox::ActiveModel {
        webhook_id: Set(webhook_id.to_owned()),
        event_type: Set(event_type.chars().take(100).collect()),
        store_id: Set(store.map(|s| s.as_str().to_owned())),
        outcome: Set("applied".to_owned()),
        received_at: Set(now),
    };
    let inserted = webhook_inbox::Entity::insert(row)
        .on_conflict(
            OnConflict::column(webhook_inbox::Column::WebhookId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(inserted == 1)
}

/// The delivery was about nothing the app acts on.
pub async fn mark_ignored(conn: &impl ConnectionTrait, webhook_id: &str) -> Result<(), DbErr> {
    webhook_inbox::Entity::update_many()
        .col_expr(webhook_inbox::Column::Outcome, Expr::value("ignored"))
        .filter(webhook_inbox::Column::WebhookId.eq(webhook_id))
        .exec(conn)
        .await?;
    Ok(())
}
