//! A sync's report as its ingest takes it: held in memory while it is small, staged in the
//! database (`report_rows`) once it holds more than `sync.held_rows` rows, so that a sync's
//! memory is bounded whatever the report's size, and a small report costs no writes (issue 11).
//! Either way a key read on two pages reads as incomplete: a repeat is not more sales (DESIGN
//! §4.3).
use std::collections::{BTreeMap, btree_map::Entry};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    clients::amazon::report::{Reading, Rows},
    domain::{figures::Figures, ids::StoreId, links::affiliate_of_ad_group},
    store::{
        CHUNK_ROWS,
        ledger::{Key, Span, UnmatchedKey},
        report_rows::{self, ReportRow, Staged},
    },
};

/// The report so far, in memory: its rows of the store's campaign's ad groups `a{id}` by
/// (affiliate, day), and the others by (campaign, ad group, day), in the range or not.
#[derive(Debug, Default)]
pub struct Held {
    ours: BTreeMap<Key, Staged>,
    others: BTreeMap<UnmatchedKey, Staged>,
    /// The distinct keys added, kept as the ingest takes the rows out.
    rows: usize,
}

impl Held {
    /// Adds a page's rows (`campaign`: the store's campaign id).
    pub fn add(&mut self, campaign: &str, page: Rows) {
        for ((campaign_id, ad_group_id, day), reading) in page {
            let figures = match reading {
                Reading::Complete(f) => Some(f),
                Reading::Incomplete => None,
            };
            match ours(campaign, &campaign_id, &ad_group_id) {
                Some(id) => repeat_or_new(self.ours.entry((id, day)), figures),
                None => repeat_or_new(self.others.entry((campaign_id, ad_group_id, day)), figures),
            }
        }
        self.rows = self.ours.len() + self.others.len();
    }

    /// How many distinct keys were added.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn repeat_or_new<K: Ord>(entry: Entry<'_, K, Staged>, figures: Staged) {
    match entry {
        Entry::Vacant(v) => {
            v.insert(figures);
        }
        Entry::Occupied(mut o) => *o.get_mut() = None,
    }
}

/// The affiliate of a row of the store's campaign (`campaign`) whose ad group is `a{id}`.
fn ours(campaign: &str, campaign_id: &str, ad_group_id: &str) -> Option<i64> {
    (campaign_id == campaign)
        .then(|| affiliate_of_ad_group(ad_group_id))
        .flatten()
}

/// A sync's report, read whole.
#[derive(Debug)]
pub enum Report {
    Held(Held),
    /// Staged by the run of this id.
    Staged(i64),
}

impl Report {
    /// How many distinct keys the report had, in the range or not.
    pub async fn count(&self, conn: &impl ConnectionTrait, store: &StoreId) -> Result<u64, DbErr> {
        match self {
            Report::Held(held) => Ok(u64::try_from(held.len()).unwrap_or(u64::MAX)),
            Report::Staged(run) => report_rows::count(conn, store, *run).await,
        }
    }

    /// Whether the ingest should take it in spans of affiliates: only a staged report is large.
    pub fn is_staged(&self) -> bool {
        matches!(self, Report::Staged(_))
    }

    /// Its rows of the store's campaign's ad groups `a{id}` within `span`. A held report gives
    /// them up (they are moved out, not copied); a staged one is read again each time.
    pub async fn take_ours(
        &mut self,
        conn: &impl ConnectionTrait,
        store: &StoreId,
        span: Span,
    ) -> Result<BTreeMap<Key, Staged>, DbErr> {
        match self {
            Report::Held(held) => {
                let ((from, to), (first, last)) = (span.days, span.affiliates);
                let (inside, rest) =
                    std::mem::take(&mut held.ours)
                        .into_iter()
                        .partition(|((id, day), _)| {
                            (first..=last).contains(id) && (from..=to).contains(day)
                        });
                held.ours = rest;
                Ok(inside)
            }
            Report::Staged(run) => report_rows::ours_in(conn, store, *run, span).await,
        }
    }

    /// Its other rows of `from..=to`, the next chunk of them after `after` (the last one of the
    /// chunk before): a held report gives them all up at once, a staged one reads up to
    /// [`CHUNK_ROWS`] at a time. Empty once there are no more.
    pub async fn take_others(
        &mut self,
        conn: &impl ConnectionTrait,
        store: &StoreId,
        (from, to): (NaiveDate, NaiveDate),
        after: Option<&UnmatchedKey>,
    ) -> Result<Vec<(UnmatchedKey, Staged)>, DbErr> {
        match self {
            Report::Held(held) => {
                let (inside, rest): (BTreeMap<_, _>, _) = std::mem::take(&mut held.others)
                    .into_iter()
                    .partition(|((_, _, day), _)| (from..=to).contains(day));
                held.others = rest;
                Ok(inside.into_iter().collect())
            }
            Report::Staged(run) => {
                let days = (from, to);
                report_rows::others_in(conn, store, *run, days, after, CHUNK_ROWS).await
            }
        }
    }

    /// Deletes what it staged (nothing when held).
    pub async fn clear(&self, conn: &impl ConnectionTrait, store: &StoreId) -> Result<(), DbErr> {
        if let Report::Staged(run) = self {
            report_rows::clear(conn, store, *run).await?;
        }
        Ok(())
    }
}

/// What a row that is not complete is staged with.
const ZERO: Figures = Figures {
    clicks: 0,
    detail_page_views: 0,
    add_to_carts: 0,
    purchases: 0,
    units: 0,
    sales_minor: 0,
    total_purchases: 0,
    total_units: 0,
    total_sales_minor: 0,
    brb_minor: 0,
};

/// A row of the run's report as it is staged: `affiliate` is that of an ad group `a{id}` of the
/// store's campaign; `figures` none when it is not complete.
fn staged_row<'a>(
    (store, run): (&'a StoreId, i64),
    affiliate: Option<i64>,
    (campaign_id, ad_group_id, day): (&'a str, &'a str, NaiveDate),
    figures: Option<&'a Figures>,
) -> ReportRow<'a> {
    // A row of the store's campaign is keyed by (affiliate, day) alone: its campaign and ad
    // group (`a{id}`, one spelling per id) say nothing more, and are not staged.
    let (campaign_id, ad_group_id) = match affiliate {
        Some(_) => ("", ""),
        None => (campaign_id, ad_group_id),
    };
    ReportRow {
        run_id: run,
        store_id: store.as_str(),
        ours: affiliate.is_some(),
        affiliate_id: affiliate.unwrap_or(0),
        day,
        campaign_id,
        ad_group_id,
        complete: figures.is_some(),
        figures: figures.unwrap_or(&ZERO),
    }
}

/// Stages one page of the run's report (`page`: its rows by key; `campaign`: the store's
/// campaign id). A key an earlier page staged turns incomplete.
pub async fn stage(
    conn: &impl ConnectionTrait,
    (store, run): (&StoreId, i64),
    campaign: &str,
    page: &Rows,
) -> Result<(), DbErr> {
    let rows: Vec<ReportRow<'_>> = page
        .iter()
        .map(|((campaign_id, ad_group_id, day), reading)| {
            let figures = match reading {
                Reading::Complete(f) => Some(f),
                Reading::Incomplete => None,
            };
            let affiliate = ours(campaign, campaign_id, ad_group_id);
            staged_row(
                (store, run),
                affiliate,
                (campaign_id, ad_group_id, *day),
                figures,
            )
        })
        .collect();
    report_rows::stage(conn, &rows).await
}

/// Stages what `held` holds as the run's first rows (its keys are distinct already).
pub async fn stage_held(
    conn: &impl ConnectionTrait,
    (store, run): (&StoreId, i64),
    held: &Held,
) -> Result<(), DbErr> {
    let mut rows: Vec<ReportRow<'_>> = Vec::with_capacity(held.len());
    for (&(id, day), f) in &held.ours {
        rows.push(staged_row(
            (store, run),
            Some(id),
            ("", "", day),
            f.as_ref(),
        ));
    }
    for ((campaign_id, ad_group_id, day), f) in &held.others {
        let key = (campaign_id.as_str(), ad_group_id.as_str(), *day);
        rows.push(staged_row((store, run), None, key, f.as_ref()));
    }
    report_rows::stage(conn, &rows).await
}
