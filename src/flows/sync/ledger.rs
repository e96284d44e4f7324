//! From a report to the ledger, in one transaction: figures per (affiliate, day) with their
//! history, unmatched rows, and orders whose amounts changed, with their pushes enqueued.
//! Re-reading unchanged figures writes nothing.
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};

use crate::{
    clients::amazon::report::Rows,
    domain::{
        commission::DefaultCommission,
        figures::{Basis, Figures},
        ids::StoreId,
    },
    flows::tasks,
    jobs::JobError,
    store::{
        OrderStatus, PushState, jobs,
        ledger::{self as rows, Change, Key, Order},
        runs,
    },
};

/// The last day whose figures may still change an order: age 60. From age 61 a day is final.
pub const FINAL_AFTER_DAYS: i64 = 60;

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

/// What one ingest counted.
pub type Summary = runs::Counts;

pub fn order_number(campaign: &str, affiliate_id: i64, day: NaiveDate) -> String {
    format!("AMZ-{campaign}-a{affiliate_id}-{}", day.format("%Y%m%d"))
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
    report: &Rows,
) -> Result<Summary, JobError> {
    let store = ctx.store;
    let mut summary = Summary {
        rows: report.len(),
        ..Default::default()
    };
    let known = crate::store::affiliates::known_ids(conn, store).await?;

    let mut matched: BTreeMap<Key, Figures> = BTreeMap::new();
    let mut unmatched: BTreeMap<rows::UnmatchedKey, Figures> = BTreeMap::new();
    for ((campaign, ad_group, day), f) in report {
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

    let mut existing = rows::figures_in(conn, store, (ctx.from, ctx.to)).await?;

    // Figures: a row Amazon no longer reports counts as zeros (restated to nothing).
    let keys: BTreeSet<Key> = matched.keys().chain(existing.keys()).copied().collect();
    let mut current: BTreeMap<Key, Figures> = BTreeMap::new();
    let mut fresh = Vec::new();
    for key in keys {
        let (affiliate_id, day) = key;
        let age = (ctx.today - day).num_days();
        let new = matched.get(&key).cloned().unwrap_or_default();
        let stored = existing.remove(&key);
        let old = stored.as_ref().map(Figures::from);
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
            if !already_ignored(conn, ctx, key, &changes).await? {
                record_change(conn, ctx, affiliate_id, day, changes, false).await?;
                summary.ignored_final += 1;
            }
            if let Some(old) = old {
                current.insert(key, old);
            }
            continue;
        }
        match stored {
            Some(row) => {
                rows::update_figures(conn, row, &new, ctx.now).await?;
                record_change(conn, ctx, affiliate_id, day, changes, true).await?;
            }
            None => fresh.push((key, new.clone())),
        }
        summary.changes += 1;
        current.insert(key, new);
    }
    rows::insert_figures(conn, store, &fresh, ctx.now).await?;

    summary.unmatched = unmatched.len();
    store_unmatched(conn, ctx, unmatched).await?;
    summary.pushes = orders_for(conn, ctx, &current).await?;
    Ok(summary)
}

/// Whether this very change of a final day was recorded last time already.
async fn already_ignored(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    key: Key,
    changes: &Map<String, Value>,
) -> Result<bool, JobError> {
    let last = rows::last_ignored_change(conn, ctx.store, key).await?;
    Ok(last.is_some_and(|l| {
        serde_json::from_str::<Value>(&l).ok() == Some(Value::Object(changes.clone()))
    }))
}

async fn record_change(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    affiliate_id: i64,
    day: NaiveDate,
    changes: Map<String, Value>,
    applied: bool,
) -> Result<(), JobError> {
    let change = Change {
        affiliate_id: Some(affiliate_id),
        campaign: None,
        day,
        changes_json: Value::Object(changes).to_string(),
        applied,
    };
    Ok(rows::record_change(conn, ctx.store, change, ctx.now).await?)
}

async fn store_unmatched(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    report: BTreeMap<rows::UnmatchedKey, Figures>,
) -> Result<(), JobError> {
    let mut existing = rows::unmatched_in(conn, ctx.store, (ctx.from, ctx.to)).await?;
    for (key, f) in report {
        let old = existing.remove(&key);
        let same = old.as_ref().is_some_and(|m| {
            (
                m.clicks,
                m.purchases,
                m.sales_minor,
                m.total_sales_minor,
                m.brb_minor,
            ) == (
                f.clicks,
                f.purchases,
                f.sales_minor,
                f.total_sales_minor,
                f.brb_minor,
            )
        });
        if !same {
            rows::save_unmatched(conn, ctx.store, &key, old, &f, ctx.now).await?;
        }
    }
    Ok(())
}

/// Brings every order of the range in line with the figures and the current default commission;
/// enqueues the pushes due. Returns how many pushes were enqueued.
async fn orders_for(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    figures: &BTreeMap<Key, Figures>,
) -> Result<usize, JobError> {
    let existing = rows::orders_in(conn, ctx.store, (ctx.from, ctx.to)).await?;
    let keys: BTreeSet<Key> = figures.keys().chain(existing.keys()).copied().collect();
    let basis_text = format!("{} of {}", ctx.commission, ctx.basis.label());
    let (mut new_orders, mut new_jobs) = (Vec::new(), Vec::new());
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
            .map_err(|e| {
                JobError::permanent(format!("commission of {affiliate_id} on {day}: {e}"))
            })?;
        let status = if commission > 0 {
            OrderStatus::Approved
        } else {
            OrderStatus::Rejected
        };
        let due = age >= i64::from(ctx.push_after_days);
        match existing.get(&key) {
            None if commission == 0 => {}
            None => {
                new_orders.push(Order {
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
                    status,
                    version: 1,
                    basis: basis_text.clone(),
                    computed_at: ctx.now,
                    push_state: if due {
                        PushState::Pending
                    } else {
                        PushState::Waiting
                    },
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
                });
                if due {
                    new_jobs.push(tasks::push_job(ctx.store, affiliate_id, day, ctx.now));
                }
            }
            Some(o) => {
                let changed = (
                    o.sales_minor,
                    o.purchases,
                    o.commission_minor,
                    o.status,
                    o.clicks,
                    o.units,
                ) != (sales, purchases, commission, status, f.clicks, units);
                // Clicks and units alone are no reason to e-mail an affiliate: no new version.
                let amounts_changed =
                    (o.sales_minor, o.commission_minor, o.status) != (sales, commission, status);
                let version = if amounts_changed {
                    o.version + 1
                } else {
                    o.version
                };
                // Pending means a push job is queued or running already.
                let enqueue = due
                    && o.pushed_version < version
                    && o.push_state != PushState::Dead
                    && o.push_state != PushState::Pending;
                if changed || enqueue {
                    let mut order = o.clone();
                    if changed {
                        order.clicks = f.clicks;
                        order.purchases = purchases;
                        order.units = units;
                        order.sales_minor = sales;
                        order.commission_minor = commission;
                        order.status = status;
                        order.basis = basis_text.clone();
                        order.computed_at = ctx.now;
                        order.version = version;
                    }
                    if enqueue {
                        order.push_state = PushState::Pending;
                    }
                    order.updated_at = ctx.now;
                    rows::update_order(conn, order, amounts_changed).await?;
                }
                if enqueue {
                    new_jobs.push(tasks::push_job(ctx.store, affiliate_id, day, ctx.now));
                }
            }
        }
    }
    rows::insert_orders(conn, new_orders).await?;
    let pushes = jobs::enqueue(conn, &new_jobs, ctx.now).await?;
    Ok(usize::try_from(pushes).unwrap_or(usize::MAX))
}
