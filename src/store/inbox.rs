//! The webhook inbox: every verified delivery's `webhook-id`, so that a redelivery is recognised
//! and answered without doing anything twice (DESIGN §4.1).
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::webhook_inbox;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, OnConflict, Query},
};

use crate::domain::ids::StoreId;

/// One delivery's inbox row, for [`record_all`].
pub struct Arrival<'a> {
    pub webhook_id: &'a str,
    pub event_type: &'a str,
    /// `None` where the store must not stay named (a redaction).
    pub store: Option<&'a StoreId>,
    pub received_at: DateTime<Utc>,
}

/// Inserts a group's rows (`outcome` = `applied`) in one statement; returns the ids that were
/// not there yet. An id twice in the group is inserted once.
pub async fn record_all(
    conn: &impl ConnectionTrait,
    arrivals: &[Arrival<'_>],
) -> Result<HashSet<String>, DbErr> {
    use webhook_inbox::Column as C;
    let mut insert = Query::insert();
    insert
        .into_table(webhook_inbox::Entity)
        .columns([
            C::WebhookId,
            C::EventType,
            C::StoreId,
            C::Outcome,
            C::ReceivedAt,
        ])
        .on_conflict(OnConflict::column(C::WebhookId).do_nothing().to_owned())
        .returning_col(C::WebhookId);
    for a in arrivals {
        insert.values_panic([
            a.webhook_id.into(),
            a.event_type.chars().take(100).collect::<String>().into(),
            a.store.map(|s| s.as_str().to_owned()).into(),
            "applied".into(),
            a.received_at.into(),
        ]);
    }
    conn.query_all(&insert)
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect()
}

/// The delivery was about nothing the app acts on.
pub async fn mark_ignored(conn: &impl ConnectionTrait, webhook_id: &str) -> Result<(), DbErr> {
    mark_all_ignored(conn, &[webhook_id]).await
}

/// [`mark_ignored`] for several deliveries in one statement.
pub async fn mark_all_ignored(
    conn: &impl ConnectionTrait,
    webhook_ids: &[&str],
) -> Result<(), DbErr> {
    if webhook_ids.is_empty() {
        return Ok(());
    }
    webhook_inbox::Entity::update_many()
        .col_expr(webhook_inbox::Column::Outcome, Expr::value("ignored"))
        .filter(webhook_inbox::Column::WebhookId.is_in(webhook_ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}
