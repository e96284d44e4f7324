//! From a report to the ledger, in one transaction: figures per (affiliate, day) with their
//! history, unmatched rows, then the orders (`orders`). A large report comes staged in the
//! database (`report`) and is taken a span of affiliates at a time, so a sync's memory stays
//! bounded whatever the report's size. Re-reading unchanged figures writes nothing to the
//! ledger. Amazon's word is taken only when it is complete (DESIGN §5): an incomplete row keeps
//! its day's last complete figures, and a day that vanishes is zeroed only when it is still
//! absent `confirm_absence` later.
use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use sea_orm::ConnectionTrait;
use serde_json::{Map, Value, json};

use crate::{
    domain::figures::Figures,
    flows::sync::{orders, report::Report},
    jobs::JobError,
    store::{
        CHUNK_ROWS,
        ledger::{self as rows, Change, Key, Span},
        report_rows::{self, Staged},
    },
};

pub use super::context::{Context, FINAL_AFTER_DAYS, Summary, order_number};

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

/// The spans the ingest takes one after the other: about [`CHUNK_ROWS`] rows each (as many of
/// `ids`' days of the range: the store's affiliates and the report's ad groups `a{id}`), together
/// covering every affiliate id.
fn spans(ctx: &Context<'_>, mut ids: Vec<i64>) -> Vec<Span> {
    let days = (ctx.to - ctx.from).num_days().max(0) + 1;
    let per = usize::try_from(i64::try_from(CHUNK_ROWS).unwrap_or(i64::MAX) / days)
        .unwrap_or(1)
        .max(1);
    ids.sort_unstable();
    ids.dedup();
    let mut spans = Vec::new();
    let mut first = i64::MIN;
    // Each start is above the first id, so `start - 1` cannot overflow.
    for &start in ids.iter().step_by(per).skip(1) {
        spans.push(Span {
            days: (ctx.from, ctx.to),
            affiliates: (first, start - 1),
        });
        first = start;
    }
    spans.push(Span {
        days: (ctx.from, ctx.to),
        affiliates: (first, i64::MAX),
    });
    spans
}

/// Brings the ledger in line with the report; a staged one is taken a span of affiliates at a
/// time, and its staged rows are deleted. Runs in the caller's transaction.
pub async fn ingest(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    report: &mut Report,
) -> Result<Summary, JobError> {
    let store = ctx.store;
    let mut summary = Summary::default();
    let known = crate::store::affiliates::known_ids(conn, store).await?;
    let distinct = report.count(conn, store).await?;
    summary.rows = usize::try_from(distinct).unwrap_or(usize::MAX);
    // Rows of other campaigns and ad groups, a chunk at a time.
    let mut after = None;
    loop {
        let chunk = report
            .take_others(conn, store, (ctx.from, ctx.to), after.as_ref())
            .await?;
        let Some((last, _)) = chunk.last() else {
            break;
        };
        after = Some(last.clone());
        summary.unmatched += store_unmatched(conn, ctx, chunk).await?;
    }
    let mut tally = orders::Tally::default();
    let mut outcome = orders::Outcome::default();
    // A report held in memory is small: one span, one read of each of the ledger's tables.
    let spans = if let Report::Staged(run) = report {
        // Ad groups `a{id}` of no affiliate of the store count too: they are as many rows.
        let mut ids = report_rows::affiliate_ids(conn, store, *run).await?;
        ids.extend(known.iter().copied());
        spans(ctx, ids)
    } else {
        vec![Span::days((ctx.from, ctx.to))]
    };
    for span in spans {
        let mut matched = report.take_ours(conn, store, span).await?;
        // An ad group `a{id}` of no affiliate the store ever had is unmatched.
        let mut unknown = Vec::new();
        matched.retain(|&(id, day), staged| {
            if known.contains(&id) {
                return true;
            }
            let ad_group = crate::domain::links::ad_group_for(id);
            unknown.push(((ctx.campaign_id.to_owned(), ad_group, day), staged.take()));
            false
        });
        summary.unmatched += store_unmatched(conn, ctx, unknown).await?;
        let existing = rows::figures_in(conn, store, span).await?;
        // The orders' states are read while the figures are weighed: the database builds them
        // as this task compares (what it writes meanwhile touches no order, and waits its
        // turn). The read is polled first, so that its statement is sent before the comparing
        // starts.
        let (orders, weighed) = tokio::join!(
            biased;
            rows::order_states_in(conn, store, span),
            weigh(conn, ctx, &matched, existing, &mut summary),
        );
        let (orders, current) = (orders?, weighed?);
        outcome += orders::bring_in_line(conn, ctx, span, orders, &current, &mut tally).await?;
    }
    outcome += orders::settle(conn, ctx, tally).await?;
    report.clear(conn, store).await?;
    summary.pushes = outcome.pushes;
    summary.held = outcome.held;
    summary.newly_held = outcome.newly_held;
    Ok(summary)
}

/// Compares a span's figures in the report with the stored ones and writes what changed (DESIGN
/// §5): returns the figures each order of the span should follow, which are the span's stored
/// figures once this returns (`orders::settle` reads them back so).
async fn weigh(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    matched: &BTreeMap<Key, Staged>,
    mut existing: BTreeMap<Key, rows::StoredDay>,
    summary: &mut Summary,
) -> Result<BTreeMap<Key, Figures>, JobError> {
    let store = ctx.store;
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
            Some(Some(f)) => (f.clone(), stored),
            Some(None) => {
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
                // Written a chunk at a time: a first reading would hold them all otherwise.
                if fresh.len() == crate::store::CHUNK_ROWS {
                    rows::insert_figures(conn, store, &fresh, ctx.now).await?;
                    fresh.clear();
                }
            }
        }
        summary.changes += 1;
        current.insert(key, new);
    }
    rows::insert_figures(conn, store, &fresh, ctx.now).await?;
    Ok(current)
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

/// Stores the complete ones of these unmatched rows of the report (each key once) that changed;
/// returns how many were complete. An incomplete one is neither stored nor pushed: there is
/// nothing of the store's to keep right.
async fn store_unmatched(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    report: Vec<(rows::UnmatchedKey, Staged)>,
) -> Result<usize, JobError> {
    let report: Vec<(rows::UnmatchedKey, Figures)> = report
        .into_iter()
        .filter_map(|(key, f)| Some((key, f?)))
        .collect();
    let complete = report.len();
    let keys: Vec<&rows::UnmatchedKey> = report.iter().map(|(key, _)| key).collect();
    let mut existing = rows::unmatched_of_keys(conn, ctx.store, &keys).await?;
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
    Ok(complete)
}
