//! The daily sync of a store: Amazon's report for a range of days, turned into figures, ledger
//! entries and pushes (DESIGN §2 steps 5–7, §5).
pub mod ledger;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use entity::{amazon_connections, sync_runs};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, TransactionTrait};
use serde::Serialize;

use crate::clients::amazon::report;
use crate::{
    clients::amazon::ads::AmazonError,
    domain::{
        commission::DefaultCommission, currency::Currency, ids::StoreId, links::campaign_id_for,
    },
    flows::tokens::{self, AuthError, CONNECTED, CallError},
    jobs::{JobError, retry::Failure},
    state::AppState,
    store::stores,
};
use ledger::{Basis, Context, FINAL_AFTER_DAYS, Summary};

/// The profile's time zone (IANA name), UTC when Amazon gave none we know.
pub fn zone(name: Option<&str>) -> Tz {
    name.and_then(|n| n.parse::<Tz>().ok()).unwrap_or(Tz::UTC)
}

/// Today on the marketplace.
pub fn today(now: DateTime<Utc>, tz: Tz) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

/// The days of the daily sync: ages 1 to 60.
pub fn daily_range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        today - Duration::days(FINAL_AFTER_DAYS),
        today - Duration::days(1),
    )
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    pub store_id: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: usize,
    pub changes: usize,
    pub pushes_enqueued: usize,
    pub ignored_final: usize,
    pub unmatched: usize,
}

fn amazon_failure(e: CallError) -> JobError {
    match e {
        CallError::Auth(AuthError::NotConnected) => {
            JobError::Cancelled("Amazon is not connected".into())
        }
        CallError::Auth(AuthError::NeedsReconnect) => JobError::Failed(Failure::Permanent {
            status: None,
            detail: "Amazon access was revoked; reconnect Amazon".into(),
        }),
        CallError::Auth(AuthError::Lwa(l)) if l.is_transient() => {
            JobError::Failed(Failure::Transient {
                status: None,
                overloaded: false,
                retry_after: None,
                detail: l.to_string(),
            })
        }
        // The database blinked (a busy SQLite, a PostgreSQL failover): try again later.
        CallError::Auth(AuthError::Db(e)) => JobError::from(e),
        CallError::Auth(other) => JobError::Failed(Failure::Permanent {
            status: None,
            detail: other.to_string(),
        }),
        CallError::Amazon(a) => JobError::Failed(match &a {
            AmazonError::Throttled { retry_after } => Failure::Transient {
                status: Some(429),
                overloaded: true,
                retry_after: *retry_after,
                detail: a.to_string(),
            },
            AmazonError::Server { status } => Failure::Transient {
                status: Some(*status),
                overloaded: false,
                retry_after: None,
                detail: a.to_string(),
            },
            AmazonError::Transport(t) => Failure::Transient {
                status: None,
                overloaded: t.is_timeout(),
                retry_after: None,
                detail: a.to_string(),
            },
            AmazonError::Unauthorized => Failure::Transient {
                status: Some(401),
                overloaded: false,
                retry_after: None,
                detail: a.to_string(),
            },
            AmazonError::NotEnabled(_) => Failure::Permanent {
                status: Some(403),
                detail: a.to_string(),
            },
            AmazonError::Rejected { status, .. } => Failure::Permanent {
                status: Some(*status),
                detail: a.to_string(),
            },
            AmazonError::Decode(_) => Failure::Permanent {
                status: None,
                detail: a.to_string(),
            },
        }),
    }
}

/// Pulls every page (no transaction held), then applies the report in one transaction.
pub async fn run(
    app: &AppState,
    store: &StoreId,
    from: NaiveDate,
    to: NaiveDate,
    trigger: &str,
    lease: Option<Lease>,
) -> Result<SyncOutcome, JobError> {
    let Some(row) = stores::find(&app.db, store)
        .await?
        .filter(|s| s.status == stores::ACTIVE)
    else {
        return Err(JobError::Cancelled("the store is uninstalled".into()));
    };
    let Some(conn) = amazon_connections::Entity::find_by_id(store.as_str())
        .one(&app.db)
        .await?
        .filter(|c| c.status == CONNECTED)
    else {
        return Err(JobError::Cancelled("Amazon is not connected".into()));
    };
    let currency = Currency::parse(&row.currency).map_err(|e| {
        JobError::Failed(Failure::Permanent {
            status: None,
            detail: e.to_string(),
        })
    })?;
    let commission = DefaultCommission::from_columns(&row.commission_type, &row.commission_value)
        .map_err(|e| {
        JobError::Failed(Failure::Permanent {
            status: None,
            detail: e.to_string(),
        })
    })?;
    let (Some(profile), Some(advertiser)) = (conn.profile_id, conn.advertiser_id.clone()) else {
        return Err(JobError::Cancelled("no Amazon account chosen".into()));
    };
    let started = app.clock.now();
    let run = sync_runs::ActiveModel {
        store_id: Set(store.as_str().to_owned()),
        trigger: Set(trigger.to_owned()),
        from_day: Set(from),
        to_day: Set(to),
        started_at: Set(started),
        finished_at: Set(None),
        rows: Set(0),
        changes: Set(0),
        pushes: Set(0),
        ignored_final: Set(0),
        unmatched: Set(0),
        status: Set("running".to_owned()),
        error: Set(None),
        ..Default::default()
    }
    .insert(&app.db)
    .await?;

    let pulled = pull(
        app,
        store,
        profile,
        &advertiser,
        (from, to),
        currency.exponent(),
        lease,
    )
    .await;
    let rows = match pulled {
        Ok(rows) => rows,
        Err(e) => {
            finish_run(app, run, None, Some(&e)).await?;
            return Err(e);
        }
    };
    let now = app.clock.now();
    let campaign = row
        .campaign_id
        .clone()
        .unwrap_or_else(|| campaign_id_for(store.as_str()));
    let ctx = Context {
        store,
        campaign_id: &campaign,
        currency: currency.code(),
        exponent: currency.exponent(),
        commission,
        basis: Basis::from_column(&row.sales_basis),
        today: today(now, zone(conn.timezone.as_deref())),
        push_after_days: app.settings.sync.push_after_days,
        from,
        to,
        now,
    };
    let txn = app.db.begin().await?;
    // The store's row is locked (PostgreSQL) for the whole ingest: two syncs of one store apply
    // one after the other, and an uninstall either committed before (and is seen here) or waits.
    stores::lock(&txn, store).await?;
    if stores::find(&txn, store)
        .await?
        .is_none_or(|s| s.status != stores::ACTIVE)
    {
        txn.rollback().await?;
        finish_run(
            app,
            run,
            None,
            Some(&JobError::Cancelled("uninstalled during the sync".into())),
        )
        .await?;
        return Err(JobError::Cancelled(
            "the store was uninstalled during the sync".into(),
        ));
    }
    let summary = ledger::ingest(&txn, &ctx, &rows).await?;
    txn.commit().await?;
    finish_run(app, run, Some(summary), None).await?;
    tracing::info!(store_id = %store, %from, %to, ?summary, "store synced");
    Ok(SyncOutcome {
        store_id: store.as_str().to_owned(),
        from,
        to,
        rows: summary.rows,
        changes: summary.changes,
        pushes_enqueued: summary.pushes,
        ignored_final: summary.ignored_final,
        unmatched: summary.unmatched,
    })
}

async fn pull(
    app: &AppState,
    store: &StoreId,
    profile: i64,
    advertiser: &str,
    (from, to): (NaiveDate, NaiveDate),
    exponent: u32,
    lease: Option<Lease>,
) -> Result<report::Rows, JobError> {
    let profile = profile.to_string();
    let mut rows = report::Rows::new();
    let mut cursor: Option<String> = None;
    let mut seen = std::collections::HashSet::new();
    let bad = |detail: String| {
        JobError::Failed(Failure::Permanent {
            status: None,
            detail,
        })
    };
    for _ in 0..report::MAX_PAGES {
        if let Some(lease) = lease {
            let until = app.clock.now()
                + Duration::seconds(i64::try_from(app.settings.jobs.lease_secs).unwrap_or(300));
            if !crate::jobs::renew(&app.db, lease.job_id, lease.attempts, until).await? {
                return Err(JobError::Cancelled(
                    "the sync's claim expired; another worker has it".into(),
                ));
            }
        }
        let body = report::request_body(advertiser, from, to, cursor.as_deref());
        let page = tokens::with_token(app, store, |t, r| {
            let (body, profile) = (body.clone(), profile.clone());
            async move { app.amazon.ads(r).report_page(&t, &profile, &body).await }
        })
        .await
        .map_err(amazon_failure)?;
        // A page that is not a report must not read as "no sales" (that would reject orders).
        report::read_page(&page, exponent, &mut rows).map_err(|e| bad(e.to_string()))?;
        match report::next_cursor(&page) {
            None => return Ok(rows),
            Some(next) if !seen.insert(next.clone()) => {
                return Err(bad(format!(
                    "the report's cursor came back to a page already read ({next})"
                )));
            }
            Some(next) => cursor = Some(next),
        }
    }
    tracing::warn!(store_id = %store, "report paging stopped at the page limit");
    Err(bad(format!(
        "the report had more than {} pages",
        report::MAX_PAGES
    )))
}

/// The claim of the job running a sync, renewed between report pages.
#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub job_id: i64,
    pub attempts: i32,
}

async fn finish_run(
    app: &AppState,
    run: sync_runs::Model,
    summary: Option<Summary>,
    error: Option<&JobError>,
) -> Result<(), sea_orm::DbErr> {
    let mut row: sync_runs::ActiveModel = run.into();
    row.finished_at = Set(Some(app.clock.now()));
    if let Some(s) = summary {
        row.rows = Set(i32::try_from(s.rows).unwrap_or(i32::MAX));
        row.changes = Set(i32::try_from(s.changes).unwrap_or(i32::MAX));
        row.pushes = Set(i32::try_from(s.pushes).unwrap_or(i32::MAX));
        row.ignored_final = Set(i32::try_from(s.ignored_final).unwrap_or(i32::MAX));
        row.unmatched = Set(i32::try_from(s.unmatched).unwrap_or(i32::MAX));
        row.status = Set("ok".to_owned());
    }
    if let Some(e) = error {
        row.status = Set("failed".to_owned());
        row.error = Set(Some(match e {
            JobError::Failed(f) => f.detail().chars().take(500).collect(),
            JobError::Cancelled(r) => r.clone(),
        }));
    }
    row.update(&app.db).await?;
    Ok(())
}
