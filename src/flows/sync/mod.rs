//! The daily sync of a store: Amazon's report for a range of days, turned into figures, ledger
//! entries and pushes (DESIGN §2 steps 5–7, §5).
pub mod context;
pub mod ledger;
pub mod orders;
mod pull;
pub mod report;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use sea_orm::TransactionTrait;
use serde::Serialize;

use crate::{
    domain::{
        commission::DefaultCommission, currency::Currency, ids::StoreId, links::campaign_id_for,
    },
    flows::Deps,
    jobs::{JobError, Lease},
    metrics::OrderEvent,
    store::{connections, ledger as ledger_rows, report_rows, runs, stores},
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

/// Today on the store's marketplace (UTC until Amazon is connected).
pub async fn store_today(
    conn: &impl sea_orm::ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<NaiveDate, sea_orm::DbErr> {
    let tz = connections::find(conn, store)
        .await?
        .and_then(|c| c.timezone);
    Ok(today(now, zone(tz.as_deref())))
}

/// The days of the daily sync: ages 1 to 60.
pub fn daily_range(today: NaiveDate) -> (NaiveDate, NaiveDate) {
    (
        today - Duration::days(FINAL_AFTER_DAYS),
        today - Duration::days(1),
    )
}

/// A full lease from now (`jobs.lease_secs`): how far each renewal extends the sync's claim.
fn lease_until(deps: &Deps) -> DateTime<Utc> {
    deps.clock.now()
        + Duration::seconds(i64::try_from(deps.settings.jobs.lease_secs).unwrap_or(300))
}

/// Days after which a run that has not ended counts as abandoned, when no job's claim tells:
/// no sync takes that long.
const ABANDONED_AFTER_DAYS: i64 = 1;

/// Why a sync stops when its job was taken over.
const CLAIM_LOST: &str = "the sync's claim expired; another worker has it";

/// Applies the report in one transaction, which holds the job's claim (`lease`) while it runs.
/// Returns once it committed; on an error it is rolled back (dropped) before this returns.
async fn apply(
    deps: &Deps,
    ctx: &Context<'_>,
    lease: Option<&Lease>,
    report: &mut report::Report,
) -> Result<ledger::Summary, JobError> {
    let store = ctx.store;
    let txn = deps.db.begin().await?;
    // The store's row is locked (PostgreSQL) for the whole ingest: two syncs of one store apply
    // one after the other, and an uninstall either committed before (and is seen here) or waits.
    stores::lock(&txn, store).await?;
    if !stores::is_active(&txn, store).await? {
        return Err(JobError::Cancelled(
            "the store was uninstalled during the sync".into(),
        ));
    }
    // The transaction holds the job's claim while it runs, however long (a large store's first
    // read may outlast a lease): on SQLite it holds the one connection, which the heartbeat
    // cannot renew through meanwhile. Taken after the store's row, as an uninstall takes them.
    let hold = match lease {
        Some(lease) => Some(
            lease
                .hold(&txn, lease_until(deps))
                .await?
                .ok_or_else(|| JobError::Cancelled(CLAIM_LOST.into()))?,
        ),
        None => None,
    };
    let summary = ledger::ingest(&txn, ctx, report).await?;
    // A full lease from the commit on: no other worker takes the job the moment the
    // transaction lets go of it.
    if let Some(hold) = &hold
        && !hold.renew(&txn, lease_until(deps)).await?
    {
        return Err(JobError::Cancelled(CLAIM_LOST.into()));
    }
    txn.commit().await?;
    Ok(summary)
}

/// Ends a run that failed with `e`, and deletes what it staged; returns the error to give (the
/// database's, if ending the run failed too).
async fn failed(deps: &Deps, store: &StoreId, run: runs::Run, e: JobError) -> JobError {
    // First, so that a run that cannot be ended leaves nothing staged either (else the next sync
    // of the store deletes them once the run is ended or abandoned).
    if let Err(db) = report_rows::clear(&deps.db, store, run.id).await {
        tracing::warn!(store_id = %store, error = %db, "a failed sync's staged rows stay");
    }
    if let Err(db) = runs::finish(&deps.db, run, Err(&e.to_string()), deps.clock.now()).await {
        return db.into();
    }
    e
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
    /// Whether the report was large enough to be staged in the database (`sync.held_rows`).
    pub staged: bool,
}

/// Pulls every page (held in memory, or staged in a short transaction each once the report is
/// large: `report`), then applies the report in one transaction. `lease` is the claim of the job running it, renewed between pages.
pub async fn run(
    deps: &Deps,
    store: &StoreId,
    (from, to): (NaiveDate, NaiveDate),
    trigger: &str,
    lease: Option<Lease>,
) -> Result<SyncOutcome, JobError> {
    let now = deps.clock.now();
    // A run that will never end (its process died, or its job was taken over) is ended as
    // failed: as soon as its job's claim is over, or a day after it started if no job ran it.
    // What it, or any ended run, left staged goes before this run stages its own.
    runs::abandon(
        &deps.db,
        store,
        now - Duration::days(ABANDONED_AFTER_DAYS),
        now,
    )
    .await?;
    report_rows::sweep(&deps.db, store).await?;
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
    let claim = lease.as_ref().map(|l| (l.job_id, l.attempts));
    let run = runs::start(&deps.db, store, trigger, (from, to), claim, now).await?;
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
    let campaign = row
        .campaign_id
        .clone()
        .unwrap_or_else(|| campaign_id_for(store.as_str()));
    let pulled = pull::pull(
        deps,
        store,
        &run,
        (profile, &advertiser, &campaign),
        (from, to),
        currency.exponent(),
        lease.as_ref(),
    )
    .await;
    let mut report = match pulled {
        Ok(report) => report,
        Err(e) => return Err(failed(deps, store, run, e).await),
    };
    let now = deps.clock.now();
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
    // Whatever stops the ingest is the run's end too: no run is left "running".
    let summary = match apply(deps, &ctx, lease.as_ref(), &mut report).await {
        Ok(summary) => summary,
        Err(e) => return Err(failed(deps, store, run, e).await),
    };
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
        staged: report.is_staged(),
    })
}
