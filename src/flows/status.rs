//! What a merchant or an operator asks about a store's sync: the last run, what is waiting, the
//! dead letters, and the ledger with every order's figures, versions and pushed state.
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;

use crate::{
    domain::{
        currency::Currency,
        ids::StoreId,
        money::{Money, format_minor},
    },
    flows::sync::orders::Proposal,
    store::{JobStatus, OrderStatus, PushState, RunStatus, jobs, ledger, runs},
};

#[derive(Debug, Clone, Serialize)]
pub struct LastSync {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub trigger: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub status: RunStatus,
    pub rows: i32,
    pub changes: i32,
    pub pushes: i32,
    pub ignored_final: i32,
    pub unmatched: i32,
    /// Rows whose money or purchase metrics Amazon left out: their days kept their figures.
    pub incomplete: i32,
    /// Decreases this sync held for the merchant.
    pub held: i32,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncStatus {
    pub last_sync: Option<LastSync>,
    pub jobs_waiting: u64,
    pub next_job_at: Option<DateTime<Utc>>,
    pub orders: u64,
    pub orders_pushed: u64,
    pub orders_waiting: u64,
    /// Orders whose push failed for good (the program refused them, or their retries ran out).
    pub dead_letters: u64,
    /// Jobs that failed for good, of any kind: those pushes, and syncs that could not run (Amazon
    /// refused, say). `sync` exits 3 while there are any.
    pub failed_jobs: u64,
}

pub async fn store_status(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<SyncStatus, DbErr> {
    let last = runs::last(conn, store).await?;
    let (jobs_waiting, next_job_at) = jobs::waiting_summary(conn, store).await?;
    let count = |states: &'static [PushState]| ledger::count_orders(conn, store, states);
    Ok(SyncStatus {
        last_sync: last.map(|r| LastSync {
            started_at: r.started_at,
            finished_at: r.finished_at,
            trigger: r.trigger,
            from: r.from_day,
            to: r.to_day,
            status: r.status,
            rows: r.rows,
            changes: r.changes,
            pushes: r.pushes,
            ignored_final: r.ignored_final,
            unmatched: r.unmatched,
            incomplete: r.incomplete,
            held: r.held,
            error: r.error,
        }),
        jobs_waiting,
        next_job_at,
        orders: count(&[]).await?,
        orders_pushed: count(&[PushState::Pushed]).await?,
        orders_waiting: count(&[PushState::Waiting, PushState::Pending]).await?,
        dead_letters: count(&[PushState::Dead]).await?,
        failed_jobs: jobs::count_dead(conn, store).await?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub version: i32,
    pub total: String,
    pub purchases: i64,
    pub commission: String,
    pub status: OrderStatus,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LedgerEntry {
    pub number: String,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    pub currency: String,
    pub clicks: i64,
    pub purchases: i64,
    pub units: i64,
    pub total: String,
    pub commission: String,
    pub brand_referral_bonus: Option<String>,
    pub basis: String,
    pub status: OrderStatus,
    pub version: i32,
    pub pushed_version: i32,
    pub push_state: PushState,
    pub remote_id: Option<String>,
    pub pushed_at: Option<DateTime<Utc>>,
    pub last_push_error: Option<String>,
    pub versions: Vec<Version>,
}

/// Every order of the store, newest day first, with its version history.
pub async fn ledger(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Vec<LedgerEntry>, DbErr> {
    let rows = ledger::orders_of(conn, store).await?;
    let mut versions = ledger::versions_of(conn, store).await?;
    let brb = ledger::brb_of(conn, store).await?;
    Ok(rows
        .into_iter()
        .map(|o| {
            let exp = Currency::parse(&o.currency)
                .map(|c| c.exponent())
                .unwrap_or(2);
            let key = (o.affiliate_id, o.day);
            LedgerEntry {
                versions: versions
                    .remove(&key)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|v| Version {
                        version: v.version,
                        total: format_minor(v.sales_minor, exp),
                        purchases: v.purchases,
                        commission: format_minor(v.commission_minor, exp),
                        status: v.status,
                        at: v.created_at,
                    })
                    .collect(),
                brand_referral_bonus: brb.get(&key).map(|b| format_minor(*b, exp)),
                number: o.number,
                affiliate_id: o.affiliate_id,
                day: o.day,
                currency: o.currency,
                clicks: o.clicks,
                purchases: o.purchases,
                units: o.units,
                total: format_minor(o.sales_minor, exp),
                commission: format_minor(o.commission_minor, exp),
                basis: o.basis,
                status: o.status,
                version: o.version,
                pushed_version: o.pushed_version,
                push_state: o.push_state,
                remote_id: o.remote_id,
                pushed_at: o.pushed_at,
                last_push_error: o.last_push_error,
            }
        })
        .collect())
}

/// A decrease held for the merchant: the order as it is, and what Amazon's reading would make it.
#[derive(Debug, Clone, Serialize)]
pub struct HeldChange {
    pub number: String,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    /// `"50.00 USD"`, with the currency.
    pub total: String,
    pub commission: String,
    pub proposed_total: String,
    pub proposed_commission: String,
    pub held_at: Option<DateTime<Utc>>,
}

/// The store's held decreases.
pub async fn held_changes(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Vec<HeldChange>, DbErr> {
    let mut out = Vec::new();
    for o in ledger::held_of(conn, store).await? {
        let Ok(currency) = Currency::parse(&o.currency) else {
            continue;
        };
        let Some(p) = Proposal::held_on(&o) else {
            continue;
        };
        let money = |minor| Money::new(minor, currency).to_string();
        out.push(HeldChange {
            total: money(o.sales_minor),
            commission: money(o.commission_minor),
            proposed_total: money(p.sales_minor),
            proposed_commission: money(p.commission_minor),
            number: o.number,
            affiliate_id: o.affiliate_id,
            day: o.day,
            held_at: o.held_at,
        });
    }
    Ok(out)
}

/// A job of the store that has not ended yet.
#[derive(Debug, Clone, Serialize)]
pub struct WaitingJob {
    pub job_id: i64,
    /// What it does, in words ("push of affiliate 1's order of 2026-11-01").
    pub what: String,
    /// Running under a worker's lease (true) or pending (false).
    pub running: bool,
    /// When it can run next: its next try, or when the running worker's lease runs out (a live
    /// worker renews it; a dead one's job is taken up then).
    pub until: DateTime<Utc>,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// A job of the store that failed for good (a dead letter).
#[derive(Debug, Clone, Serialize)]
pub struct FailedJob {
    pub job_id: i64,
    pub what: String,
    pub attempts: i32,
    pub error: Option<String>,
}

/// Waiting jobs and dead letters listed at most (the rest are counted).
pub const JOBS_SHOWN: u64 = 100;

/// The store's work that is not done: what still waits, and what failed for good.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkLeft {
    /// Soonest first, at most [`JOBS_SHOWN`].
    pub waiting: Vec<WaitingJob>,
    /// Oldest first, at most [`JOBS_SHOWN`].
    pub failed: Vec<FailedJob>,
    /// All of them.
    pub waiting_total: u64,
    pub failed_total: u64,
}

impl WorkLeft {
    /// When the first waiting job can run.
    pub fn next_at(&self) -> Option<DateTime<Utc>> {
        self.waiting.iter().map(|w| w.until).min()
    }
}

/// What a job does, in words.
pub fn describe(job: &jobs::Job) -> String {
    use crate::flows::tasks::Task;
    match Task::of(job) {
        Ok((_, Task::SyncStore { from, to, .. })) => format!("sync of {from} to {to}"),
        Ok((_, Task::PushOrder { affiliate_id, day })) => {
            format!("push of affiliate {affiliate_id}'s order of {day}")
        }
        Err(_) => format!("{} job", job.kind),
    }
}

/// The store's jobs that are waiting or running, and its dead letters.
pub async fn work_left(conn: &impl ConnectionTrait, store: &StoreId) -> Result<WorkLeft, DbErr> {
    let mut waiting: Vec<WaitingJob> = jobs::waiting(conn, store, None, Some(JOBS_SHOWN))
        .await?
        .into_iter()
        .map(|job| {
            let running = job.status == JobStatus::Running;
            WaitingJob {
                job_id: job.id,
                what: describe(&job),
                running,
                until: match job.lease_until {
                    Some(lease) if running => lease,
                    _ => job.run_at,
                },
                attempts: job.attempts,
                last_error: job.last_error,
            }
        })
        .collect();
    waiting.sort_by_key(|w| (w.until, w.job_id));
    let failed = jobs::dead_letters(conn, Some(store), Some(JOBS_SHOWN))
        .await?
        .into_iter()
        .map(|job| FailedJob {
            job_id: job.id,
            what: describe(&job),
            attempts: job.attempts,
            error: job.last_error,
        })
        .collect();
    let (waiting_total, _) = jobs::waiting_summary(conn, store).await?;
    Ok(WorkLeft {
        waiting,
        failed,
        waiting_total,
        failed_total: jobs::count_dead(conn, store).await?,
    })
}
