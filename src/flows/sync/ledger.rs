//! From a report to the ledger, in one transaction: figures per (affiliate, day) with their
//! history, unmatched rows, then the orders (`orders`). Re-reading unchanged figures writes
//! nothing. Amazon's word is taken only when it is complete (DESIGN §5): an incomplete row keeps
//! its day's last complete figures, and a day that vanishes is zeroed only when it is still
//! absent `confirm_absence` later.
use std::collections::{BTreeMap, BTreeSet, HashSet, btree_map::Entry};

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

/// What a key read on two pages reads as.
static REPEATED: Reading = Reading::Incomplete;

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

/// The report's rows of the range: the affiliates' by key, and the others that are complete.
struct Sorted<'r> {
    matched: BTreeMap<Key, &'r Reading>,
    unmatched: BTreeMap<rows::UnmatchedKey, Figures>,
    /// Keys in the whole report, in the range or not.
    distinct: usize,
}

/// Sorts the report's rows, page by page: a key read on two pages reads as incomplete.
fn sort<'r>(ctx: &Context<'_>, known: &HashSet<i64>, report: &'r [Rows]) -> Sorted<'r> {
    let mut distinct = 0;
    let mut matched: BTreeMap<Key, &Reading> = BTreeMap::new();
    // Incomplete ones too (`None`): a key read on two pages is stored from neither.
    let mut unmatched: BTreeMap<rows::UnmatchedKey, Option<&Figures>> = BTreeMap::new();
    let mut outside: BTreeSet<(&str, &str, NaiveDate)> = BTreeSet::new();
    for ((campaign, ad_group, day), reading) in report.iter().flatten() {
        if *day < ctx.from || *day > ctx.to {
            distinct += usize::from(outside.insert((campaign, ad_group, *day)));
            continue;
        }
        let fresh = match affiliate_of(ctx, known, campaign, ad_group) {
            Some(id) => match matched.entry((id, *day)) {
                Entry::Vacant(v) => {
                    v.insert(reading);
                    true
                }
                Entry::Occupied(mut o) => {
                    *o.get_mut() = &REPEATED;
                    false
                }
            },
            None => match unmatched.entry((campaign.clone(), ad_group.clone(), *day)) {
                Entry::Vacant(v) => {
                    v.insert(match reading {
                        Reading::Complete(f) => Some(f),
                        // Neither stored nor pushed: there is nothing of the store's to keep
                        // right.
                        Reading::Incomplete => None,
                    });
                    true
                }
                Entry::Occupied(mut o) => {
                    *o.get_mut() = None;
                    false
                }
            },
        };
        distinct += usize::from(fresh);
    }
    let unmatched = unmatched
        .into_iter()
        .filter_map(|(key, f)| Some((key, f?.clone())))
        .collect();
    Sorted {
        matched,
        unmatched,
        distinct,
    }
}

/// Brings the ledger in line with a report, given as its pages in order (each page's rows by
/// key): a key read on two pages is a repeat, not more sales, and reads as incomplete (as
/// [`merge`](crate::clients::amazon::report::merge) has it). Runs in the caller's transaction.
pub async fn ingest(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    report: &[Rows],
) -> Result<Summary, JobError> {
    let store = ctx.store;
    let mut summary = Summary::default();
    let known = crate::store::affiliates::known_ids(conn, store).await?;

    let Sorted {
        matched,
        unmatched,
        distinct,
    } = sort(ctx, &known, report);
    summary.rows = distinct;

    let existing = rows::figures_in(conn, store, (ctx.from, ctx.to)).await?;
    // The orders' states are read while the figures are weighed: the database builds them as
    // this task compares (what it writes meanwhile touches no order, and waits its turn). The
    // read is polled first, so that its statement is sent before the comparing starts.
    let (orders, weighed) = tokio::join!(
        biased;
        rows::order_states_in(conn, store, (ctx.from, ctx.to)),
        weigh(conn, ctx, &matched, existing, &mut summary),
    );
    let (orders, current) = (orders?, weighed?);
    summary.unmatched = unmatched.len();
    store_unmatched(conn, ctx, unmatched).await?;
    let outcome = orders::bring_in_line(conn, ctx, orders, &current).await?;
    summary.pushes = outcome.pushes;
    summary.held = outcome.held;
    summary.newly_held = outcome.newly_held;
    Ok(summary)
}

/// Compares the report's figures with the stored ones and writes what changed (DESIGN §5):
/// returns the figures each order of the range should follow.
async fn weigh(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    matched: &BTreeMap<Key, &Reading>,
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};
    use proptest::prelude::*;

    use super::*;
    use crate::{
        clients::amazon::report,
        domain::{commission::DefaultCommission, currency::Currency, figures::Basis, ids::StoreId},
    };

    /// A page: rows of (ad group: affiliates 1–3, or 0 for one that is no affiliate's; day
    /// offset, 3 being outside the range; clicks; complete or not).
    fn page() -> impl Strategy<Value = Vec<(i64, i64, i64, bool)>> {
        prop::collection::vec((0i64..4, 0i64..4, 0i64..3, any::<bool>()), 0..6)
    }

    proptest! {
        /// The pages sorted as they came read as the report merged page by page
        /// (`report::merge`, the reader's rule): the same rows, repeats and count.
        #[test]
        fn pages_sort_as_their_merged_report(pages in prop::collection::vec(page(), 0..5)) {
            let store = StoreId::parse("st_p").unwrap();
            let usd = Currency::parse("USD").unwrap();
            let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
            let today = now.date_naive();
            let ctx = Context {
                store: &store,
                campaign_id: "ab_st_p",
                currency: usd,
                program_currency: usd,
                commission: DefaultCommission::from_columns("percentage", "10").unwrap(),
                basis: Basis::Promoted,
                confirm_absence: Duration::hours(12),
                hold_share: rust_decimal::Decimal::ONE,
                commission_since: now,
                today,
                push_after_days: 2,
                from: today - Duration::days(3),
                to: today - Duration::days(1),
                now,
            };
            let known: HashSet<i64> = (1..=3).collect();
            let pages: Vec<Rows> = pages
                .into_iter()
                .map(|rows| {
                    let mut page = Rows::new();
                    for (affiliate, age, clicks, complete) in rows {
                        let ad_group = if affiliate == 0 { "x".to_owned() } else { format!("a{affiliate}") };
                        let day = today - Duration::days(age);
                        let reading = if complete {
                            Reading::Complete(Figures { clicks, ..Default::default() })
                        } else {
                            Reading::Incomplete
                        };
                        // Within a page a key is given once: the reader sums a split row.
                        page.insert(("ab_st_p".to_owned(), ad_group, day), reading);
                    }
                    page
                })
                .collect();
            let mut merged = Rows::new();
            for page in pages.clone() {
                report::merge(page, &mut merged);
            }
            let by_page = sort(&ctx, &known, &pages);
            let at_once = sort(&ctx, &known, std::slice::from_ref(&merged));
            prop_assert_eq!(by_page.matched, at_once.matched);
            prop_assert_eq!(by_page.unmatched, at_once.unmatched);
            prop_assert_eq!(by_page.distinct, at_once.distinct);
            prop_assert_eq!(at_once.distinct, merged.len());
        }
    }
}
