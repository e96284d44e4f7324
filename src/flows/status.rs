//! What a merchant or an operator asks about a store's sync: the last run, what is waiting, the
//! dead letters, and the ledger with every order's figures, versions and pushed state.
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use serde::Serialize;

use crate::{
    domain::{currency::Currency, ids::StoreId, money::format_minor},
    store::{
        ConnectionStatus, OrderStatus, PushState, RunStatus, SalesBasis, affiliates, connections,
        jobs, ledger, links, runs, stores,
    },
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
    pub dead_letters: u64,
}

pub async fn store_status(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<SyncStatus, DbErr> {
    let last = runs::last(conn, store).await?;
    let waiting = jobs::waiting(conn, store).await?;
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
            error: r.error,
        }),
        jobs_waiting: waiting.len() as u64,
        next_job_at: waiting.first().map(|j| j.run_at),
        orders: count(&[]).await?,
        orders_pushed: count(&[PushState::Pushed]).await?,
        orders_waiting: count(&[PushState::Waiting, PushState::Pending]).await?,
        dead_letters: count(&[PushState::Dead]).await?,
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

/// Everything the store's setup page shows, read in one go.
#[derive(Debug, Clone)]
pub struct StorePage {
    pub store: stores::StoreSummary,
    pub affiliates: Vec<affiliates::AffiliateRow>,
    pub connection: Option<connections::Connection>,
    /// Empty until Amazon is connected.
    pub landing_pages: Vec<links::LandingPage>,
    /// Empty until Amazon is connected.
    pub links: Vec<links::CurrentLink>,
    pub sync: SyncStatus,
    /// The newest orders, at most `recent` of them.
    pub recent: Vec<LedgerEntry>,
    pub unmatched: u64,
    pub sales_basis: SalesBasis,
}

/// The setup page's data of an installed store; `None` when it is not installed.
pub async fn store_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    recent: usize,
) -> Result<Option<StorePage>, DbErr> {
    let Some(row) = stores::find_active(conn, store).await? else {
        return Ok(None);
    };
    let sales_basis = row.sales_basis;
    let connection = connections::find(conn, store).await?;
    let connected = connection
        .as_ref()
        .is_some_and(|c| c.status == ConnectionStatus::Connected);
    let (landing_pages, links) = if connected {
        (
            links::landing_pages(conn, store).await?,
            links::current(conn, store).await?,
        )
    } else {
        (vec![], vec![])
    };
    let mut entries = ledger(conn, store).await?;
    entries.truncate(recent);
    Ok(Some(StorePage {
        store: stores::summary(conn, row).await?,
        affiliates: affiliates::list_current(conn, store).await?,
        connection,
        landing_pages,
        links,
        sync: store_status(conn, store).await?,
        recent: entries,
        unmatched: ledger::count_unmatched(conn, store).await?,
        sales_basis,
    }))
}
