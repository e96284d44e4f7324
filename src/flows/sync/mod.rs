//! The daily sync of a store: Amazon's report for a range of days, turned into figures, ledger
//! entries and pushes (DESIGN §2 steps 5–7, §5).
pub mod context;
pub mod ledger;
pub mod orders;

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use sea_orm::TransactionTrait;
use serde::Serialize;

use crate::{
    clients::amazon::report,
    domain::{
        commission::DefaultCommission, currency::Currency, ids::StoreId, links::campaign_id_for,
    },
    flows::{Deps, tokens},
    jobs::{JobError, Lease},
    metrics::OrderEvent,
    store::{connections, jobs, ledger as ledger_rows, runs, stores},
};
use context::{Context, FINAL_AFTER_DAYS};

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
    pub incomplete: usize,
    pub held: usize,
}

/// Pulls every page (no transaction held), then applies the report in one transaction. `lease`
/// is the claim of the job running it, renewed between pages.
pub async fn run(
    deps: &Deps,
    store: &StoreId,
    (from, to): (NaiveDate, NaiveDate),
    trigger: &str,
    lease: Option<Lease>,
) -> Result<SyncOutcome, JobError> {
    let Some(row) = stores::find_active(&deps.db, store).await? else {
        return Err(JobError::Cancelled("the store is uninstalled".into()));
    };
    let Some(conn) = connections::find_connected(&deps.db, store).await? else {
        return Err(JobError::Cancelled("Amazon is not connected".into()));
    };
    // The program's currency (a flat commission's) and the marketplace's (every amount Amazon
    // reports, and so every order): they never mix (DESIGN §5).
    let program_currency =
        Currency::parse(&row.currency).map_err(|e| JobError::permanent(e.to_string()))?;
    let currency = conn
        .currency_code
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            JobError::permanent("the Amazon profile has no currency; connect Amazon again")
        })
        .and_then(|c| Currency::parse(c).map_err(|e| JobError::permanent(e.to_string())))?;
    let commission = DefaultCommission::from_columns(&row.commission_type, &row.commission_value)?;
    let (Some(profile), Some(advertiser)) = (conn.profile_id, conn.advertiser_id.clone()) else {
        return Err(JobError::Cancelled("no Amazon account chosen".into()));
    };
    let run = runs::start(&deps.db, store, trigger, (from, to), deps.clock.now()).await?;
    let refusal = match commission.check_currencies(program_currency, currency) {
        Err(e) => Some(e.to_string()),
        // A reconnection to a marketplace of another currency: its amounts must not update
        // orders kept in the old one.
        Ok(()) => ledger_rows::other_currency(&deps.db, store, currency)
            .await?
            .map(|old| {
                format!(
                    "this store's orders are in {old}, but the connected Amazon account sells in \
                     {currency}: currencies never mix, so nothing is pushed. Connect the Amazon \
                     account the orders came from"
                )
            }),
    };
    if let Some(why) = refusal {
        runs::finish(&deps.db, run, Err(&why), deps.clock.now()).await?;
        tracing::warn!(store_id = %store, error = %why, "sync refused: currencies would mix");
        return Err(JobError::permanent(why));
    }
    let pulled = pull(
        deps,
        store,
        &run,
        (profile, &advertiser),
        (from, to),
        currency.exponent(),
        lease,
    )
    .await;
    let rows = match pulled {
        Ok(rows) => rows,
        Err(e) => {
            runs::finish(&deps.db, run, Err(&e.to_string()), deps.clock.now()).await?;
            return Err(e);
        }
    };
    let now = deps.clock.now();
    let campaign = row
        .campaign_id
        .clone()
        .unwrap_or_else(|| campaign_id_for(store.as_str()));
    let sync = &deps.settings.sync;
    let ctx = Context {
        store,
        campaign_id: &campaign,
        currency,
        program_currency,
        commission,
        confirm_absence: Duration::hours(i64::from(sync.confirm_absence_hours)),
        hold_share: sync.hold_decrease_share,
        commission_since: row.commission_updated_at,
        basis: row.sales_basis.into(),
        today: today(now, zone(conn.timezone.as_deref())),
        push_after_days: sync.push_after_days,
        from,
        to,
        now,
    };
    let txn = deps.db.begin().await?;
    // The store's row is locked (PostgreSQL) for the whole ingest: two syncs of one store apply
    // one after the other, and an uninstall either committed before (and is seen here) or waits.
    stores::lock(&txn, store).await?;
    if !stores::is_active(&txn, store).await? {
        txn.rollback().await?;
        let why = "the store was uninstalled during the sync";
        runs::finish(&deps.db, run, Err(why), deps.clock.now()).await?;
        return Err(JobError::Cancelled(why.into()));
    }
    let summary = ledger::ingest(&txn, &ctx, &rows).await?;
    txn.commit().await?;
    deps.metrics.orders(OrderEvent::Held, summary.newly_held);
    runs::finish(&deps.db, run, Ok(summary), deps.clock.now()).await?;
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
        incomplete: summary.incomplete,
        held: summary.held,
    })
}

/// Reads every page of the report. After each page it logs and records the run's progress (the
/// rows read so far) and counts the page's rows for `/metrics`.
async fn pull(
    deps: &Deps,
    store: &StoreId,
    run: &runs::Run,
    (profile, advertiser): (i64, &str),
    (from, to): (NaiveDate, NaiveDate),
    exponent: u32,
    lease: Option<Lease>,
) -> Result<report::Rows, JobError> {
    let profile = profile.to_string();
    let mut rows = report::Rows::new();
    let mut cursor: Option<String> = None;
    let mut seen = HashSet::new();
    let lease_for = Duration::seconds(i64::try_from(deps.settings.jobs.lease_secs).unwrap_or(300));
    let mut read = 0;
    for page_number in 1..=report::MAX_PAGES {
        if let Some(lease) = lease {
            let until = deps.clock.now() + lease_for;
            if !jobs::renew(&deps.db, lease.job_id, lease.attempts, until).await? {
                return Err(JobError::Cancelled(
                    "the sync's claim expired; another worker has it".into(),
                ));
            }
        }
        let body = report::request_body(advertiser, from, to, cursor.as_deref());
        let page = tokens::with_token(deps, store, |t, r| {
            let (body, profile) = (body.clone(), profile.clone());
            async move { deps.amazon.ads(r).report_page(&t, &profile, &body).await }
        })
        .await?;
        // A page that is not a report must not read as "no sales" (that would reject orders).
        let (on_page, next) = report::read_page_text(&page, exponent, &mut rows)
            .map_err(|e| JobError::permanent(e.to_string()))?;
        drop(page);
        read += on_page;
        deps.metrics.report_rows_read(on_page);
        runs::progress(&deps.db, run, read).await?;
        tracing::info!(
            store_id = %store,
            page = page_number,
            rows = on_page,
            rows_so_far = read,
            "report page read"
        );
        match next {
            None => return Ok(rows),
            Some(next) if !seen.insert(next.clone()) => {
                return Err(JobError::permanent(format!(
                    "the report's cursor came back to a page already read ({next})"
                )));
            }
            Some(next) => cursor = Some(next),
        }
    }
    tracing::warn!(store_id = %store, "report paging stopped at the page limit");
    Err(JobError::permanent(format!(
        "the report had more than {} pages",
        report::MAX_PAGES
    )))
}
