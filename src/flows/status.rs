//! What a merchant or an operator asks about a store's sync: the last run, what is waiting, the
//! dead letters, and the ledger with every order's figures, versions and pushed state.
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{daily_figures, jobs as job_rows, order_versions, orders, sync_runs};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use serde::Serialize;

use crate::{
    domain::{currency::Currency, ids::StoreId, money::format_minor},
    jobs,
};

#[derive(Debug, Clone, Serialize)]
pub struct LastSync {
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub trigger: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub status: String,
    pub rows: i32,
    pub changes: i32,
    pub pushes: i32,
    pub ignored_final: i32,
    pub unmatched: i32,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreStatus {
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
) -> Result<StoreStatus, DbErr> {
    let last = sync_runs::Entity::find()
        .filter(sync_runs::Column::StoreId.eq(store.as_str()))
        .order_by_desc(sync_runs::Column::Id)
        .one(conn)
        .await?;
    let waiting = job_rows::Entity::find()
        .filter(job_rows::Column::StoreId.eq(store.as_str()))
        .filter(job_rows::Column::Status.is_in([jobs::PENDING, jobs::RUNNING]))
        .order_by_asc(job_rows::Column::RunAt)
        .all(conn)
        .await?;
    let count = |state: Option<&'static str>| {
        let mut q = orders::Entity::find().filter(orders::Column::StoreId.eq(store.as_str()));
        if let Some(state) = state {
            q = q.filter(orders::Column::PushState.eq(state));
        }
        q.count(conn)
    };
    Ok(StoreStatus {
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
        orders: count(None).await?,
        orders_pushed: count(Some("pushed")).await?,
        orders_waiting: count(Some("waiting")).await? + count(Some("pending")).await?,
        dead_letters: count(Some("dead")).await?,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct Version {
    pub version: i32,
    pub total: String,
    pub purchases: i64,
    pub commission: String,
    pub status: String,
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
    pub status: String,
    pub version: i32,
    pub pushed_version: i32,
    pub push_state: String,
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
    let rows = orders::Entity::find()
        .filter(orders::Column::StoreId.eq(store.as_str()))
        .order_by_desc(orders::Column::Day)
        .order_by_asc(orders::Column::AffiliateId)
        .all(conn)
        .await?;
    let mut versions: BTreeMap<(i64, NaiveDate), Vec<order_versions::Model>> = BTreeMap::new();
    for v in order_versions::Entity::find()
        .filter(order_versions::Column::StoreId.eq(store.as_str()))
        .order_by_asc(order_versions::Column::Version)
        .all(conn)
        .await?
    {
        versions.entry((v.affiliate_id, v.day)).or_default().push(v);
    }
    let brb: BTreeMap<(i64, NaiveDate), i64> = daily_figures::Entity::find()
        .filter(daily_figures::Column::StoreId.eq(store.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|f| ((f.affiliate_id, f.day), f.brb_minor))
        .collect();
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
