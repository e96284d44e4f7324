//! From a report to the ledger, in one transaction: figures per (affiliate, day) with their
//! history, unmatched rows, then the orders (`orders`). Re-reading unchanged figures writes
//! nothing. Amazon's word is taken only when it is complete (DESIGN §5): an incomplete row keeps
//! its day's last complete figures, and a day that vanishes is zeroed only when it is still
//! absent `confirm_absence` later.
use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::NaiveDate;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};

use crate::{
    clients::amazon::report::{Reading, Rows},
    domain::figures::Figures,
    flows::sync::orders,
    jobs::JobError,
    store::ledger::{self as rows, Change, Key},
};

pub use super::context::{Context, FINAL_AFTER_DAYS, Summary, order_number};

/// Days seen for the first time are written this many at a time.
const FRESH_BATCH: usize = 5_000;

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
    // Only the exact spelling the app mints (`a{id}`): `a0243808` or `a+243832` is no affiliate's.
    let id: i64 = ad_group.strip_prefix('a')?.parse().ok()?;
    (known.contains(&id) && ad_group == crate::domain::links::ad_group_for(id)).then_some(id)
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

    let mut matched: BTreeMap<Key, &Reading> = BTreeMap::new();
    let mut unmatched: BTreeMap<rows::UnmatchedKey, Figures> = BTreeMap::new();
    for ((campaign, ad_group, day), reading) in report {
        if *day < ctx.from || *day > ctx.to {
            continue;
        }
        match (affiliate_of(ctx, &known, campaign, ad_group), reading) {
            (Some(id), reading) => {
                matched.insert((id, *day), reading);
            }
            (None, Reading::Complete(f)) => {
                unmatched.insert((campaign.clone(), ad_group.clone(), *day), f.clone());
            }
            // Neither stored nor pushed: there is nothing of the store's to keep right.
            (None, Reading::Incomplete) => {}
        }
    }

    let mut existing = rows::figures_in(conn, store, (ctx.from, ctx.to)).await?;
    let keys: BTreeSet<Key> = matched.keys().chain(existing.keys()).copied().collect();
    let mut current: BTreeMap<Key, Figures> = BTreeMap::new();
    let mut fresh = Vec::new();
    for key in keys {
        let (affiliate_id, day) = key;
        let age = ctx.age(day);
        let stored = existing.remove(&key);
        let old = stored.as_ref().map(|d| d.figures.clone());
        if age < 1 {
            continue;
        }
        let (new, stored) = match matched.get(&key) {
            Some(Reading::Complete(f)) => (f.clone(), stored),
            Some(Reading::Incomplete) => {
                // Never read as zero: the day keeps its last complete figures. Amazon has a row
                // for it, so it is not absent either.
                summary.incomplete += 1;
                present_again(conn, ctx, key, stored).await?;
                if let Some(old) = old {
                    current.insert(key, old);
                }
                continue;
            }
            None => {
                // Present before, absent now (an incident, a lost ad group id): zeroed only
                // when a reading at least `confirm_absence` later still has no row.
                let Some(row) = stored else {
                    continue;
                };
                let since = row.absent_since;
                let confirmed = since.is_some_and(|t| ctx.now - t >= ctx.confirm_absence);
                let old = row.figures.clone();
                if !confirmed {
                    if since.is_none() && old != Figures::default() {
                        rows::set_absent_since(conn, store, key, Some(ctx.now)).await?;
                    }
                    current.insert(key, old);
                    continue;
                }
                (Figures::default(), Some(row))
            }
        };
        let unchanged = old.as_ref() == Some(&new) || (old.is_none() && new == Figures::default());
        if unchanged {
            present_again(conn, ctx, key, stored).await?;
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
            Some(_) => {
                rows::update_figures(conn, store, key, &new, ctx.now).await?;
                record_change(conn, ctx, affiliate_id, day, changes, true).await?;
            }
            None => {
                fresh.push((key, new.clone()));
                // Written a batch at a time: a first reading would hold them all otherwise.
                if fresh.len() == FRESH_BATCH {
                    rows::insert_figures(conn, store, &fresh, ctx.now).await?;
                    fresh.clear();
                }
            }
        }
        summary.changes += 1;
        current.insert(key, new);
    }
    rows::insert_figures(conn, store, &fresh, ctx.now).await?;

    summary.unmatched = unmatched.len();
    store_unmatched(conn, ctx, unmatched).await?;
    let orders = orders::bring_in_line(conn, ctx, &current).await?;
    summary.pushes = orders.pushes;
    summary.held = orders.held;
    summary.newly_held = orders.newly_held;
    Ok(summary)
}

/// Amazon has a row for the stored day again: it no longer counts as absent.
async fn present_again(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    key: Key,
    stored: Option<rows::StoredDay>,
) -> Result<(), JobError> {
    if stored.is_some_and(|r| r.absent_since.is_some()) {
        rows::set_absent_since(conn, ctx.store, key, None).await?;
    }
    Ok(())
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
