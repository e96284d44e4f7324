//! The views of the merchant's ledger, order history and activity pages: every figure read from
//! the store's own rows, filtered and paged in SQL, amounts always with their currency.
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    domain::{currency::Currency, ids::StoreId, money::format_minor},
    flows::{
        status::{self, WorkLeft},
        sync::{self, context::FINAL_AFTER_DAYS, orders::Proposal},
    },
    store::{HoldState, OrderStatus, PushState, RunStatus, ledger, runs},
};

pub use crate::store::ledger::OrderFilter;

/// Orders per ledger page.
pub const PER_PAGE: u64 = 50;
/// Sync runs the activity page lists.
pub const RUNS_SHOWN: u64 = 100;

/// `"191.96 USD"`: minor units in the currency's exponent (2 for a code we do not know), with
/// the code.
pub fn money(minor: i64, currency: &str) -> String {
    let exp = Currency::parse(currency).map(|c| c.exponent()).unwrap_or(2);
    format!("{} {currency}", format_minor(minor, exp))
}

/// Whether a day of that age can no longer change (DESIGN §5: final from age 61).
pub fn is_final(today: NaiveDate, day: NaiveDate) -> bool {
    (today - day).num_days() > FINAL_AFTER_DAYS
}

/// One order on the ledger page.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub number: String,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    pub clicks: i64,
    pub purchases: i64,
    /// With the currency: `"50.00 USD"`.
    pub total: String,
    pub commission: String,
    pub status: OrderStatus,
    pub push_state: PushState,
    pub version: i32,
    pub held: bool,
    pub is_final: bool,
}

/// The totals of the orders shown in one currency.
#[derive(Debug, Clone)]
pub struct Total {
    pub currency: String,
    pub orders: i64,
    pub sales: String,
    pub commission: String,
}

/// One page of the store's ledger under a filter.
#[derive(Debug, Clone)]
pub struct LedgerView {
    pub rows: Vec<LedgerRow>,
    /// Of every order the filter lets through (all pages), one per currency.
    pub totals: Vec<Total>,
    /// How many orders the filter lets through.
    pub matching: u64,
    /// 1-based.
    pub page: u64,
    /// At least 1.
    pub pages: u64,
}

/// Page `page` (1-based) of the store's orders that `filter` lets through.
pub async fn ledger_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    filter: &OrderFilter,
    page: u64,
    now: DateTime<Utc>,
) -> Result<LedgerView, DbErr> {
    let today = sync::store_today(conn, store, now).await?;
    let matching = ledger::count_filtered(conn, store, filter).await?;
    // A page past the end shows the last one ("page 5 of 5"), never "page 999 of 5".
    let page = page.clamp(1, matching.div_ceil(PER_PAGE).max(1));
    let offset = (page - 1).saturating_mul(PER_PAGE);
    let rows = ledger::orders_page(conn, store, filter, offset, PER_PAGE)
        .await?
        .into_iter()
        .map(|o| LedgerRow {
            total: money(o.sales_minor, &o.currency),
            commission: money(o.commission_minor, &o.currency),
            is_final: is_final(today, o.day),
            held: o.hold_state == Some(HoldState::Held),
            number: o.number,
            affiliate_id: o.affiliate_id,
            day: o.day,
            clicks: o.clicks,
            purchases: o.purchases,
            status: o.status,
            push_state: o.push_state,
            version: o.version,
        })
        .collect();
    let totals = ledger::totals_filtered(conn, store, filter)
        .await?
        .into_iter()
        .map(|t| Total {
            sales: money(t.sales_minor, &t.currency),
            commission: money(t.commission_minor, &t.currency),
            orders: t.orders,
            currency: t.currency,
        })
        .collect();
    Ok(LedgerView {
        rows,
        totals,
        matching,
        page,
        pages: matching.div_ceil(PER_PAGE).max(1),
    })
}

/// One version of an order, with what it changed from the version before.
#[derive(Debug, Clone)]
pub struct VersionView {
    pub version: i32,
    /// When it was computed.
    pub at: DateTime<Utc>,
    pub total: String,
    pub commission: String,
    pub status: OrderStatus,
    pub purchases: i64,
    /// The version before's total, commission and status; `None` for the first.
    pub before: Option<(String, String, OrderStatus)>,
    /// The program was last told this version.
    pub pushed: bool,
}

/// A decrease of the order held for the merchant: what Amazon's reading would make it.
#[derive(Debug, Clone)]
pub struct HeldView {
    pub total: String,
    pub commission: String,
    pub status: OrderStatus,
    pub at: Option<DateTime<Utc>>,
}

/// Everything about one order: its versions, what was pushed, and whether it can still change.
#[derive(Debug, Clone)]
pub struct OrderHistory {
    pub number: String,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    pub currency: String,
    /// The day's age on the marketplace today.
    pub age: i64,
    pub is_final: bool,
    pub total: String,
    pub commission: String,
    pub status: OrderStatus,
    pub version: i32,
    pub push_state: PushState,
    pub pushed_version: i32,
    pub pushed_at: Option<DateTime<Utc>>,
    pub remote_id: Option<String>,
    pub last_push_error: Option<String>,
    /// What the program showed after the last push, when it said.
    pub pushed_total: Option<String>,
    pub pushed_commission: Option<String>,
    pub pushed_status: Option<String>,
    /// Oldest first.
    pub versions: Vec<VersionView>,
    pub held: Option<HeldView>,
    /// The merchant discarded a held decrease of this order.
    pub discarded: bool,
}

/// The history of the store's order `number`; `None` when the store has no such order.
pub async fn order_history(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    number: &str,
    now: DateTime<Utc>,
) -> Result<Option<OrderHistory>, DbErr> {
    let Some(o) = ledger::order_numbered(conn, store, number).await? else {
        return Ok(None);
    };
    let today = sync::store_today(conn, store, now).await?;
    let cur = o.currency.clone();
    let mut before: Option<(String, String, OrderStatus)> = None;
    let mut versions = Vec::new();
    for v in ledger::versions_of_order(conn, store, (o.affiliate_id, o.day)).await? {
        let now_is = (
            money(v.sales_minor, &cur),
            money(v.commission_minor, &cur),
            v.status,
        );
        versions.push(VersionView {
            version: v.version,
            at: v.created_at,
            total: now_is.0.clone(),
            commission: now_is.1.clone(),
            status: v.status,
            purchases: v.purchases,
            before: before.replace(now_is),
            pushed: v.version == o.pushed_version && o.pushed_at.is_some(),
        });
    }
    let held = match o.hold_state {
        Some(HoldState::Held) => Proposal::held_on(&o).map(|p| HeldView {
            total: money(p.sales_minor, &cur),
            commission: money(p.commission_minor, &cur),
            status: p.status,
            at: o.held_at,
        }),
        _ => None,
    };
    Ok(Some(OrderHistory {
        age: (today - o.day).num_days(),
        is_final: is_final(today, o.day),
        total: money(o.sales_minor, &cur),
        commission: money(o.commission_minor, &cur),
        pushed_total: o.pushed_sales_minor.map(|m| money(m, &cur)),
        pushed_commission: o.pushed_commission_minor.map(|m| money(m, &cur)),
        discarded: o.hold_state == Some(HoldState::Discarded),
        held,
        versions,
        number: o.number,
        affiliate_id: o.affiliate_id,
        day: o.day,
        currency: o.currency,
        status: o.status,
        version: o.version,
        push_state: o.push_state,
        pushed_version: o.pushed_version,
        pushed_at: o.pushed_at,
        remote_id: o.remote_id,
        last_push_error: o.last_push_error,
        pushed_status: o.pushed_status,
    }))
}

/// One sync run as the activity page lists it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub trigger: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rows: i32,
    pub changes: i32,
    pub pushes: i32,
    pub incomplete: i32,
    pub held: i32,
    pub status: RunStatus,
    pub error: Option<String>,
    /// finished − started, in words; `None` while it runs.
    pub duration: Option<String>,
}

/// What the activity page shows: the runs, newest first, and the work not done.
#[derive(Debug, Clone)]
pub struct ActivityView {
    pub runs: Vec<RunView>,
    pub work: WorkLeft,
}

/// `"850 ms"`, `"12 s"`, `"3 min 5 s"`.
pub fn duration_words(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{} s", ms / 1_000),
        _ => format!("{} min {} s", ms / 60_000, (ms / 1_000) % 60),
    }
}

pub async fn activity(conn: &impl ConnectionTrait, store: &StoreId) -> Result<ActivityView, DbErr> {
    let runs = runs::latest(conn, store, RUNS_SHOWN)
        .await?
        .into_iter()
        .map(|r| RunView {
            duration: r.finished_at.map(|f| duration_words(f - r.started_at)),
            id: r.id,
            started_at: r.started_at,
            trigger: r.trigger,
            from: r.from_day,
            to: r.to_day,
            rows: r.rows,
            changes: r.changes,
            pushes: r.pushes,
            incomplete: r.incomplete,
            held: r.held,
            status: r.status,
            error: r.error,
        })
        .collect();
    Ok(ActivityView {
        runs,
        work: status::work_left(conn, store).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_words() {
        let d = chrono::Duration::milliseconds;
        assert_eq!(duration_words(d(850)), "850 ms");
        assert_eq!(duration_words(d(12_400)), "12 s");
        assert_eq!(duration_words(d(185_000)), "3 min 5 s");
    }

    #[test]
    fn a_day_is_final_from_age_61() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
        assert!(!is_final(
            today,
            NaiveDate::from_ymd_opt(2026, 9, 21).unwrap()
        ));
        assert!(is_final(
            today,
            NaiveDate::from_ymd_opt(2026, 9, 20).unwrap()
        ));
    }

    #[test]
    fn amounts_carry_their_currency() {
        assert_eq!(money(19196, "USD"), "191.96 USD");
        assert_eq!(money(1235, "JPY"), "1235 JPY");
    }
}
