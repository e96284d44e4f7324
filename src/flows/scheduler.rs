//! The daily sync, once per store and marketplace day: after `[sync] daily_at` in the profile's time
//! zone, a job whose key is the store and the day. Any number of instances may ask; the key lets
//! one in.
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::DbErr;

use crate::{
    domain::ids::StoreId,
    flows::{
        Deps,
        sync::{daily_range, store_today, today, zone},
        tasks::{SYNC_STORE, Task},
    },
    store::{connections, jobs, stores},
};

/// The key of a store's daily sync: one per store and marketplace day, whichever instance asks.
pub fn daily_key(store: &StoreId, day: NaiveDate) -> String {
    format!("daily:{store}:{day}")
}

/// Enqueues the daily sync of every connected store whose local time is past `daily_at`.
/// Returns how many were enqueued now.
pub async fn enqueue_due(deps: &Deps, now: DateTime<Utc>) -> Result<usize, DbErr> {
    let daily_at = deps.settings.sync.daily_at_time();
    let mut enqueued = 0;
    for conn in connections::all_connected(&deps.db).await? {
        let Ok(store) = StoreId::parse(&conn.store_id) else {
            continue;
        };
        let tz = zone(conn.timezone.as_deref());
        if now.with_timezone(&tz).time() < daily_at || !stores::is_active(&deps.db, &store).await? {
            continue;
        }
        let today = today(now, tz);
        let (from, to) = daily_range(today);
        let task = Task::SyncStore {
            from,
            to,
            trigger: "daily".into(),
        };
        let job = task.job(&store, Some(daily_key(&store, today)), now);
        if jobs::enqueue(&deps.db, &[job], now).await? == 1 {
            enqueued += 1;
            tracing::info!(store_id = %store, %today, "daily sync enqueued");
        }
    }
    Ok(enqueued)
}

/// The key of a sync someone asked for: one per store for the trailing 60 days ("Sync now"),
/// one per store and range for a range. Unlike the daily key, it is free again once its job
/// ended, so that the next request queues a sync again.
pub fn manual_key(store: &StoreId, range: Option<(NaiveDate, NaiveDate)>) -> String {
    match range {
        None => format!("{MANUAL}{store}"),
        Some((from, to)) => format!("{MANUAL}{store}:{from}:{to}"),
    }
}

const MANUAL: &str = "sync:";

/// Whether `key` is the key of a sync someone asked for (see [`manual_key`]).
pub fn is_manual_key(key: &str) -> bool {
    key.starts_with(MANUAL)
}

/// What asking for a sync did.
#[derive(Debug, Clone)]
pub struct Asked {
    /// A new sync was queued; false: a sync of these days was already waiting or running.
    pub queued: bool,
    /// The job that does the sync (the new one or the one already there); `None` only when it
    /// ended in the meantime.
    pub job: Option<jobs::Job>,
}

/// A sync the merchant or the operator asked for, of `range` or the daily 60 days. Asking again
/// while a sync of the same days (a manual or the daily one) is waiting or running queues
/// nothing: a burst of clicks is one sync.
pub async fn enqueue_now(
    deps: &Deps,
    store: &StoreId,
    range: Option<(NaiveDate, NaiveDate)>,
    trigger: &str,
) -> Result<Asked, DbErr> {
    let now = deps.clock.now();
    let (from, to) = match range {
        Some(r) => r,
        None => daily_range(store_today(&deps.db, store, now).await?),
    };
    if let Some(job) = waiting_sync(deps, store, (from, to)).await? {
        return Ok(Asked {
            queued: false,
            job: Some(job),
        });
    }
    let task = Task::SyncStore {
        from,
        to,
        trigger: trigger.into(),
    };
    let key = manual_key(store, range);
    let queued =
        jobs::enqueue(&deps.db, &[task.job(store, Some(key.clone()), now)], now).await? == 1;
    Ok(Asked {
        queued,
        job: jobs::holding_key(&deps.db, &key).await?,
    })
}

/// A sync of the store that is waiting or running and reads at least the days `from..=to`.
async fn waiting_sync(
    deps: &Deps,
    store: &StoreId,
    (from, to): (NaiveDate, NaiveDate),
) -> Result<Option<jobs::Job>, DbErr> {
    Ok(jobs::waiting(&deps.db, store, Some(SYNC_STORE), None)
        .await?
        .into_iter()
        .find(|job| {
            matches!(
                Task::of(job),
                Ok((_, Task::SyncStore { from: f, to: t, .. })) if f <= from && t >= to
            )
        }))
}

/// Runs [`enqueue_due`] once a minute until `stop`: days change by the minute at most.
pub async fn run(deps: Deps, stop: tokio_util::sync::CancellationToken) {
    loop {
        if let Err(e) = enqueue_due(&deps, deps.clock.now()).await {
            tracing::error!(error = %e, "scheduler failed");
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(60)) => {}
        }
    }
}
