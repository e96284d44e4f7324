//! The daily sync, once per store and marketplace day: after `[sync] daily_at` in the profile's time
//! zone, a job whose key is the store and the day. Any number of instances may ask; the key lets
//! one in.
use chrono::{DateTime, Utc};
use entity::amazon_connections;
use sea_orm::{ColumnTrait, DbErr, EntityTrait, QueryFilter};

use crate::{
    domain::ids::StoreId,
    flows::{
        sync::{daily_range, today, zone},
        tokens::CONNECTED,
    },
    jobs::{self, Task},
    state::AppState,
    store::stores,
};

/// Enqueues the daily sync of every connected store whose local time is past `daily_at`.
/// Returns how many were enqueued now.
pub async fn enqueue_due(app: &AppState, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let daily_at = app
        .settings
        .sync
        .daily_at()
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    let connected = amazon_connections::Entity::find()
        .filter(amazon_connections::Column::Status.eq(CONNECTED))
        .all(&app.db)
        .await?;
    let active: std::collections::HashSet<String> = entity::stores::Entity::find()
        .filter(entity::stores::Column::Status.eq(stores::ACTIVE))
        .filter(entity::stores::Column::Id.is_in(connected.iter().map(|c| c.store_id.clone())))
        .all(&app.db)
        .await?
        .into_iter()
        .map(|s| s.id)
        .collect();
    let mut enqueued = 0;
    for conn in connected {
        let Ok(store) = StoreId::parse(&conn.store_id) else {
            continue;
        };
        if !active.contains(store.as_str()) {
            continue;
        }

        let tz = zone(conn.timezone.as_deref());
        if now.with_timezone(&tz).time() < daily_at {
            continue;
        }
        let today = today(now, tz);
        let (from, to) = daily_range(today);
        let task = Task::SyncStore {
            from,
            to,
            trigger: "daily".into(),
        };
        if jobs::enqueue(
            &app.db,
            &store,
            &task,
            Some(jobs::daily_key(&store, today)),
            now,
            now,
        )
        .await?
        {
            enqueued += 1;
            tracing::info!(store_id = %store, %today, "daily sync enqueued");
        }
    }
    Ok(enqueued)
}

/// A sync the merchant or the operator asked for. Not deduplicated: asking twice syncs twice.
pub async fn enqueue_now(
    app: &AppState,
    store: &StoreId,
    range: Option<(chrono::NaiveDate, chrono::NaiveDate)>,
    trigger: &str,
) -> Result<bool, DbErr> {
    let now = app.clock.now();
    let (from, to) = match range {
        Some(r) => r,
        None => {
            let tz = amazon_connections::Entity::find_by_id(store.as_str())
                .one(&app.db)
                .await?
                .and_then(|c| c.timezone);
            daily_range(today(now, zone(tz.as_deref())))
        }
    };
    let task = Task::SyncStore {
        from,
        to,
        trigger: trigger.into(),
    };
    jobs::enqueue(&app.db, store, &task, None, now, now).await
}
