//! From a report to the ledger, in one transaction: figures per (affiliate, day) with their
//! history, unmatched rows, and orders whose amounts changed, with their pushes enqueued.
//! Re-reading unchanged figures writes nothing.
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    affiliates, daily_figures, figure_changes, order_versions, orders, unmatched_figures,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter,
};
use serde_json::{Map, Value, json};

use crate::{
    clients::amazon::report::{Figures, Rows},
    domain::{commission::DefaultCommission, ids::StoreId},
    jobs::{self, Task},
};

/// Rows per INSERT: far below SQLite's and PostgreSQL's limits on bound values.
pub const BATCH: usize = 500;

/// Inserts rows in batches of [`BATCH`].
async fn insert_all<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    rows: Vec<E::ActiveModel>,
) -> Result<(), DbErr>
where
    E::ActiveModel: Clone,
{
    for chunk in rows.chunks(BATCH) {
        E::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// The last day whose figures may still change an order: age 60. From age 61 a day is final.
pub const FINAL_AFTER_DAYS: i64 = 60;

pub const WAITING: &str = "waiting";
pub const PENDING: &str = "pending";
pub const PUSHED: &str = "pushed";
pub const DEAD: &str = "dead";

/// Which of Amazon's sales figures commissions are computed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// `attributedSales14d` / `attributedPurchases14d`: the promoted products.
    Promoted,
    /// `totalAttributedSales14d` / `attributedTotalPurchases14d`: promoted + brand halo.
    Total,
}

impl Basis {
    pub fn from_column(s: &str) -> Self {
        if s == "total" {
            Self::Total
        } else {
            Self::Promoted
        }
    }

    fn pick(self, f: &Figures) -> (i64, i64, i64) {
        match self {
            Self::Promoted => (f.sales_minor, f.purchases, f.units),
            Self::Total => (f.total_sales_minor, f.total_purchases, f.total_units),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Promoted => "promoted sales",
            Self::Total => "total sales (promoted + brand halo)",
        }
    }
}

pub struct Context<'a> {
    pub store: &'a StoreId,
    pub campaign_id: &'a str,
    pub currency: &'a str,
    pub exponent: u32,
    pub commission: DefaultCommission,
    pub basis: Basis,
    /// Today in the profile's time zone: yesterday has age 1.
    pub today: NaiveDate,
    pub push_after_days: u32,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub rows: usize,
    pub changes: usize,
    pub pushes: usize,
    pub ignored_final: usize,
    pub unmatched: usize,
}

pub fn order_number(campaign: &str, affiliate_id: i64, day: NaiveDate) -> String {
    format!("AMZ-{campaign}-a{affiliate_id}-{}", day.format("%Y%m%d"))
}

fn stored(m: &daily_figures::Model) -> Figures {
    Figures {
        clicks: m.clicks,
        detail_page_views: m.detail_page_views,
        add_to_carts: m.add_to_carts,
        purchases: m.purchases,
        units: m.units,
        sales_minor: m.sales_minor,
        total_purchases: m.total_purchases,
        total_units: m.total_units,
        total_sales_minor: m.total_sales_minor,
        brb_minor: m.brb_minor,
    }
}

fn diff(old: &Figures, new: &Figures) -> Map<String, Value> {
    let mut out = Map::new();
    let pairs = [
        ("clicks", old.clicks, new.clicks),
        (
            "detail_page_views",
            old.detail_page_views,
            new.detail_page_views,
        ),
        ("add_to_carts", old.add_to_carts, new.add_to_carts),
        ("purchases", old.purchases, new.purchases),
        ("units", old.units, new.units),
        ("sales_minor", old.sales_minor, new.sales_minor),
        ("total_purchases", old.total_purchases, new.total_purchases),
        ("total_units", old.total_units, new.total_units),
        (
            "total_sales_minor",
            old.total_sales_minor,
            new.total_sales_minor,
        ),
        ("brb_minor", old.brb_minor, new.brb_minor),
    ];
    for (name, a, b) in pairs {
        if a != b {
            out.insert(name.to_owned(), json!([a, b]));
        }
    }
    out
}

/// The affiliate of an ad group `a{id}` of this store's campaign, if it is one.
fn affiliate_of(
    ctx: &Context<'_>,
    known: &HashSet<i64>,
    campaign: &str,
    ad_group: &str,
) -> Option<i64> {
    if campaign != ctx.campaign_id {
        return None;
    }
    let id: i64 = ad_group.strip_prefix('a')?.parse().ok()?;
    known.contains(&id).then_some(id)
}

pub async fn ingest(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    rows: &Rows,
) -> Result<Summary, DbErr> {
    let store = ctx.store.as_str();
    let mut summary = Summary {
        rows: rows.len(),
        ..Default::default()
    };
    let known: HashSet<i64> = affiliates::Entity::find()
        .filter(affiliates::Column::StoreId.eq(store))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.affiliate_id)
        .collect();

    let mut matched: BTreeMap<(i64, NaiveDate), Figures> = BTreeMap::new();
    let mut unmatched: BTreeMap<(String, String, NaiveDate), Figures> = BTreeMap::new();
    for ((campaign, ad_group, day), f) in rows {
        if *day < ctx.from || *day > ctx.to {
            continue;
        }
        match affiliate_of(ctx, &known, campaign, ad_group) {
            Some(id) => {
                matched.insert((id, *day), f.clone());
            }
            None => {
                unmatched.insert((campaign.clone(), ad_group.clone(), *day), f.clone());
            }
        }
    }

    let existing: BTreeMap<(i64, NaiveDate), daily_figures::Model> = daily_figures::Entity::find()
        .filter(daily_figures::Column::StoreId.eq(store))
        .filter(daily_figures::Column::Day.between(ctx.from, ctx.to))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| ((m.affiliate_id, m.day), m))
        .collect();

    // Figures: a row Amazon no longer reports counts as zeros (restated to nothing).
    let keys: BTreeSet<(i64, NaiveDate)> = matched.keys().chain(existing.keys()).copied().collect();
    let mut current: BTreeMap<(i64, NaiveDate), Figures> = BTreeMap::new();
    let mut fresh = Vec::new();
    for key in keys {
        let (affiliate_id, day) = key;
        let age = (ctx.today - day).num_days();
        let new = matched.get(&key).cloned().unwrap_or_default();
        let old = existing.get(&key).map(stored);
        if age < 1 {
            continue;
        }
        let unchanged = old.as_ref() == Some(&new) || (old.is_none() && new == Figures::default());
        if unchanged {
            if let Some(old) = old {
                current.insert(key, old);
            }
            continue;
        }
        let changes = diff(&old.clone().unwrap_or_default(), &new);
        if age > FINAL_AFTER_DAYS {
            // Final: recorded (once per distinct change), never applied or pushed.
            if !already_ignored(conn, ctx, affiliate_id, day, &changes).await? {
                record_change(conn, ctx, Some(affiliate_id), None, day, changes, false).await?;
                summary.ignored_final += 1;
            }
            if let Some(old) = old {
                current.insert(key, old);
            }
            continue;
        }
        match existing.get(&key) {
            Some(row) => {
                let mut row: daily_figures::ActiveModel = row.clone().into();
                set_figures(&mut row, &new);
                row.updated_at = Set(ctx.now);
                row.update(conn).await?;
                record_change(conn, ctx, Some(affiliate_id), None, day, changes, true).await?;
            }
            None => {
                let mut row = daily_figures::ActiveModel {
                    store_id: Set(store.to_owned()),
                    affiliate_id: Set(affiliate_id),
                    day: Set(day),
                    first_seen_at: Set(ctx.now),
                    updated_at: Set(ctx.now),
                    ..Default::default()
                };
                set_figures(&mut row, &new);
                fresh.push(row);
            }
        }
        summary.changes += 1;
        current.insert(key, new);
    }
    insert_all::<daily_figures::Entity>(conn, fresh).await?;

    summary.unmatched = unmatched.len();
    store_unmatched(conn, ctx, &unmatched).await?;
    summary.pushes = orders_for(conn, ctx, &current).await?;
    Ok(summary)
}

/// Whether this very change of a final day was recorded last time already.
async fn already_ignored(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    affiliate_id: i64,
    day: NaiveDate,
    changes: &Map<String, Value>,
) -> Result<bool, DbErr> {
    use sea_orm::QueryOrder;
    let last = figure_changes::Entity::find()
        .filter(figure_changes::Column::StoreId.eq(ctx.store.as_str()))
        .filter(figure_changes::Column::AffiliateId.eq(affiliate_id))
        .filter(figure_changes::Column::Day.eq(day))
        .filter(figure_changes::Column::Applied.eq(false))
        .order_by_desc(figure_changes::Column::Id)
        .one(conn)
        .await?;
    Ok(last.is_some_and(|l| {
        serde_json::from_str::<Value>(&l.changes).ok() == Some(Value::Object(changes.clone()))
    }))
}

fn set_figures(row: &mut daily_figures::ActiveModel, f: &Figures) {
    row.clicks = Set(f.clicks);
    row.detail_page_views = Set(f.detail_page_views);
    row.add_to_carts = Set(f.add_to_carts);
    row.purchases = Set(f.purchases);
    row.units = Set(f.units);
    row.sales_minor = Set(f.sales_minor);
    row.total_purchases = Set(f.total_purchases);
    row.total_units = Set(f.total_units);
    row.total_sales_minor = Set(f.total_sales_minor);
    row.brb_minor = Set(f.brb_minor);
}

async fn record_change(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    affiliate_id: Option<i64>,
    campaign: Option<(&str, &str)>,
    day: NaiveDate,
    changes: Map<String, Value>,
    applied: bool,
) -> Result<(), DbErr> {
    figure_changes::Entity::insert(figure_changes::ActiveModel {
        store_id: Set(ctx.store.as_str().to_owned()),
        affiliate_id: Set(affiliate_id),
        campaign_id: Set(campaign.map(|c| c.0.to_owned())),
        ad_group_id: Set(campaign.map(|c| c.1.to_owned())),
        day: Set(day),
        observed_at: Set(ctx.now),
        changes: Set(Value::Object(changes).to_string()),
        applied: Set(applied),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

async fn store_unmatched(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    rows: &BTreeMap<(String, String, NaiveDate), Figures>,
) -> Result<(), DbErr> {
    let existing: BTreeMap<(String, String, NaiveDate), unmatched_figures::Model> =
        unmatched_figures::Entity::find()
            .filter(unmatched_figures::Column::StoreId.eq(ctx.store.as_str()))
            .filter(unmatched_figures::Column::Day.between(ctx.from, ctx.to))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| ((m.campaign_id.clone(), m.ad_group_id.clone(), m.day), m))
            .collect();
    for ((campaign, ad_group, day), f) in rows {
        let values = (
            f.clicks,
            f.purchases,
            f.sales_minor,
            f.total_sales_minor,
            f.brb_minor,
        );
        match existing.get(&(campaign.clone(), ad_group.clone(), *day)) {
            Some(m)
                if (
                    m.clicks,
                    m.purchases,
                    m.sales_minor,
                    m.total_sales_minor,
                    m.brb_minor,
                ) == values => {}
            Some(m) => {
                let mut row: unmatched_figures::ActiveModel = m.clone().into();
                row.clicks = Set(f.clicks);
                row.purchases = Set(f.purchases);
                row.sales_minor = Set(f.sales_minor);
                row.total_sales_minor = Set(f.total_sales_minor);
                row.brb_minor = Set(f.brb_minor);
                row.updated_at = Set(ctx.now);
                row.update(conn).await?;
            }
            None => {
                unmatched_figures::ActiveModel {
                    store_id: Set(ctx.store.as_str().to_owned()),
                    campaign_id: Set(campaign.clone()),
                    ad_group_id: Set(ad_group.clone()),
                    day: Set(*day),
                    clicks: Set(f.clicks),
                    purchases: Set(f.purchases),
                    sales_minor: Set(f.sales_minor),
                    total_sales_minor: Set(f.total_sales_minor),
                    brb_minor: Set(f.brb_minor),
                    updated_at: Set(ctx.now),
                }
                .insert(conn)
                .await?;
            }
        }
    }
    Ok(())
}

/// Brings every order of the range in line with the figures and the current default commission;
/// enqueues the pushes due. Returns how many pushes were enqueued.
async fn orders_for(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    figures: &BTreeMap<(i64, NaiveDate), Figures>,
) -> Result<usize, DbErr> {
    let existing: BTreeMap<(i64, NaiveDate), orders::Model> = orders::Entity::find()
        .filter(orders::Column::StoreId.eq(ctx.store.as_str()))
        .filter(orders::Column::Day.between(ctx.from, ctx.to))
        .all(conn)
        .await?
        .into_iter()
        .map(|o| ((o.affiliate_id, o.day), o))
        .collect();
    let keys: BTreeSet<(i64, NaiveDate)> = figures.keys().chain(existing.keys()).copied().collect();
    let basis_text = format!("{} of {}", ctx.commission, ctx.basis.label());
    let (mut new_orders, mut versions, mut new_jobs) = (Vec::new(), Vec::new(), Vec::new());
    for key in keys {
        let (affiliate_id, day) = key;
        let age = (ctx.today - day).num_days();
        if !(1..=FINAL_AFTER_DAYS).contains(&age) {
            continue;
        }
        let f = figures.get(&key).cloned().unwrap_or_default();
        let (sales, purchases, units) = ctx.basis.pick(&f);
        let commission = ctx
            .commission
            .commission_minor(sales, purchases, ctx.exponent)
            .map_err(|e| DbErr::Custom(format!("commission of {affiliate_id} on {day}: {e}")))?;
        let status = if commission > 0 {
            "approved"
        } else {
            "rejected"
        };
        let due = age >= i64::from(ctx.push_after_days);
        let push_job = || {
            let task = Task::PushOrder { affiliate_id, day };
            jobs::new_job(
                ctx.store,
                &task,
                Some(jobs::push_key(ctx.store, affiliate_id, day)),
                ctx.now,
                ctx.now,
            )
        };
        match existing.get(&key) {
            None if commission == 0 => {}
            None => {
                let order = orders::Model {
                    store_id: ctx.store.as_str().to_owned(),
                    affiliate_id,
                    day,
                    number: order_number(ctx.campaign_id, affiliate_id, day),
                    currency: ctx.currency.to_owned(),
                    clicks: f.clicks,
                    purchases,
                    units,
                    sales_minor: sales,
                    commission_minor: commission,
                    status: status.to_owned(),
                    version: 1,
                    basis: basis_text.clone(),
                    computed_at: ctx.now,
                    push_state: if due { PENDING } else { WAITING }.to_owned(),
                    pushed_version: 0,
                    pushed_sales_minor: None,
                    pushed_commission_minor: None,
                    pushed_status: None,
                    remote_id: None,
                    create_attempted: false,
                    last_push_error: None,
                    pushed_at: None,
                    created_at: ctx.now,
                    updated_at: ctx.now,
                };
                versions.push(version_row(&order));
                new_orders.push(order.into());
                if due {
                    new_jobs.push(push_job());
                }
            }
            Some(o) => {
                let changed = (
                    o.sales_minor,
                    o.purchases,
                    o.commission_minor,
                    o.status.as_str(),
                    o.clicks,
                    o.units,
                ) != (sales, purchases, commission, status, f.clicks, units);
                // Clicks and units alone are no reason to e-mail an affiliate: no new version.
                let amounts_changed = (o.sales_minor, o.commission_minor, o.status.as_str())
                    != (sales, commission, status);
                let version = if amounts_changed {
                    o.version + 1
                } else {
                    o.version
                };
                // PENDING means a push job is queued or running already.
                let enqueue = due
                    && o.pushed_version < version
                    && o.push_state != DEAD
                    && o.push_state != PENDING;
                if changed || enqueue {
                    let mut row: orders::ActiveModel = o.clone().into();
                    if changed {
                        row.clicks = Set(f.clicks);
                        row.purchases = Set(purchases);
                        row.units = Set(units);
                        row.sales_minor = Set(sales);
                        row.commission_minor = Set(commission);
                        row.status = Set(status.to_owned());
                        row.basis = Set(basis_text.clone());
                        row.computed_at = Set(ctx.now);
                        row.version = Set(version);
                    }
                    if enqueue {
                        row.push_state = Set(PENDING.to_owned());
                    }
                    row.updated_at = Set(ctx.now);
                    let order = row.update(conn).await?;
                    if amounts_changed {
                        versions.push(version_row(&order));
                    }
                }
                if enqueue {
                    new_jobs.push(push_job());
                }
            }
        }
    }
    insert_all::<orders::Entity>(conn, new_orders).await?;
    insert_all::<order_versions::Entity>(conn, versions).await?;
    let pushes = jobs::enqueue_many(conn, new_jobs).await?;
    Ok(usize::try_from(pushes).unwrap_or(usize::MAX))
}

fn version_row(o: &orders::Model) -> order_versions::ActiveModel {
    order_versions::ActiveModel {
        store_id: Set(o.store_id.clone()),
        affiliate_id: Set(o.affiliate_id),
        day: Set(o.day),
        version: Set(o.version),
        sales_minor: Set(o.sales_minor),
        purchases: Set(o.purchases),
        commission_minor: Set(o.commission_minor),
        status: Set(o.status.clone()),
        created_at: Set(o.computed_at),
        ..Default::default()
    }
}

/// Dead pushes queued again: their orders are pending once more.
pub async fn revive_dead_orders(
    conn: &impl ConnectionTrait,
    store: Option<&StoreId>,
) -> Result<u64, DbErr> {
    let mut q = orders::Entity::update_many()
        .col_expr(
            orders::Column::PushState,
            sea_orm::sea_query::Expr::value(PENDING),
        )
        .filter(orders::Column::PushState.eq(DEAD));
    if let Some(store) = store {
        q = q.filter(orders::Column::StoreId.eq(store.as_str()));
    }
    Ok(q.exec(conn).await?.rows_affected)
}
