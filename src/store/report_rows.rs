//! A sync's report, staged when it is larger than `sync.held_rows`: the pull writes each page's
//! rows as it reads them, and the ingest takes them a few affiliates at a time, so a sync's
//! memory does not grow with the report (issue 11). The rows of a run are deleted by the ingest
//! that takes them (in its transaction), when the run fails, or else by the next sync of the
//! store once the run has ended or been abandoned ([`sweep`], `runs::abandon`).
use std::collections::BTreeMap;

use chrono::NaiveDate;
use entity::{report_rows, sync_runs};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, ExprTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, sea_query::Expr,
};
use serde::Deserialize;

pub use super::new_rows::ReportRow;
use super::{
    RunStatus, StoreScoped,
    bulk::upsert_bulk,
    ledger::{Key, Span, UnmatchedKey, spanned},
    packed::{Headed, figure_columns, packed},
};
use crate::domain::{figures::Figures, ids::StoreId};

/// A staged row's figures, or `None` when they are not to be taken: a metric was missing, or
/// the key came on two pages (a repeat is no more sales; DESIGN §4.3).
pub type Staged = Option<Figures>;

/// Stages rows of one page of a run's report (each key once). A key an earlier page staged
/// turns incomplete.
pub async fn stage(conn: &impl ConnectionTrait, rows: &[ReportRow<'_>]) -> Result<(), DbErr> {
    upsert_bulk(
        conn,
        "report_rows",
        rows,
        "ON CONFLICT (run_id, ours, affiliate_id, day, campaign_id, ad_group_id) \
         DO UPDATE SET complete = false",
    )
    .await
}

/// How many distinct keys the run's report had, in the range or not.
pub async fn count(conn: &impl ConnectionTrait, store: &StoreId, run: i64) -> Result<u64, DbErr> {
    report_rows::Entity::of_store(store)
        .filter(report_rows::Column::RunId.eq(run))
        .count(conn)
        .await
}

/// The run's rows of the store's campaign (ad groups `a{id}`) within `span`, by (affiliate,
/// day), read in one bulk pass (see [`packed`]).
pub async fn ours_in(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    run: i64,
    span: Span,
) -> Result<BTreeMap<Key, Staged>, DbErr> {
    use report_rows::Column as C;
    let query = spanned::<report_rows::Entity>(store, span, (C::AffiliateId, C::Day))
        .filter(C::RunId.eq(run))
        .filter(C::Ours.eq(true));
    // Whether the row is complete first, then its figures.
    let fields: Vec<C> = std::iter::once(C::Complete)
        .chain(figure_columns!(C))
        .collect();
    let mut out = BTreeMap::new();
    packed(
        conn,
        query,
        (C::AffiliateId, C::Day),
        &fields,
        |key, Headed(complete, figures): Headed<Flag>| {
            out.insert(key, complete.is_set().then_some(figures));
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

/// The affiliate ids of the run's rows of the store's campaign's ad groups `a{id}`, known to the
/// store or not, each once.
pub async fn affiliate_ids(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    run: i64,
) -> Result<Vec<i64>, DbErr> {
    report_rows::Entity::of_store(store)
        .filter(report_rows::Column::RunId.eq(run))
        .filter(report_rows::Column::Ours.eq(true))
        .select_only()
        .column(report_rows::Column::AffiliateId)
        .distinct()
        .into_tuple()
        .all(conn)
        .await
}

/// The run's rows of `from..=to` that are not the store's campaign's ad groups `a{id}`, in key
/// order (day, campaign, ad group): at most `limit` of them, after the key `after`.
pub async fn others_in(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    run: i64,
    (from, to): (NaiveDate, NaiveDate),
    after: Option<&UnmatchedKey>,
    limit: usize,
) -> Result<Vec<(UnmatchedKey, Staged)>, DbErr> {
    use report_rows::Column as C;
    let mut query = report_rows::Entity::of_store(store)
        .filter(C::RunId.eq(run))
        .filter(C::Ours.eq(false))
        .filter(C::AffiliateId.eq(0))
        .filter(C::Day.between(from, to));
    if let Some((campaign, ad_group, day)) = after {
        let key = Expr::tuple([
            Expr::col(C::Day),
            Expr::col(C::CampaignId),
            Expr::col(C::AdGroupId),
        ]);
        let after = Expr::tuple([
            Expr::value(*day),
            Expr::value(campaign.clone()),
            Expr::value(ad_group.clone()),
        ]);
        query = query.filter(key.gt(after));
    }
    // The primary key's order for these rows (ours false, affiliate 0): read along it.
    let rows = query
        .order_by_asc(C::Day)
        .order_by_asc(C::CampaignId)
        .order_by_asc(C::AdGroupId)
        .limit(u64::try_from(limit).unwrap_or(u64::MAX))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let figures = r.complete.then_some(Figures::from([
                r.clicks,
                r.detail_page_views,
                r.add_to_carts,
                r.purchases,
                r.units,
                r.sales_minor,
                r.total_purchases,
                r.total_units,
                r.total_sales_minor,
                r.brb_minor,
            ]));
            ((r.campaign_id, r.ad_group_id, r.day), figures)
        })
        .collect())
}

/// Deletes the run's rows.
pub async fn clear(conn: &impl ConnectionTrait, store: &StoreId, run: i64) -> Result<u64, DbErr> {
    Ok(report_rows::Entity::delete_of_store(store)
        .filter(report_rows::Column::RunId.eq(run))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes what the store's runs that have ended left staged (a run that failed before it
/// could delete them); a run still going keeps its rows.
pub async fn sweep(conn: &impl ConnectionTrait, store: &StoreId) -> Result<u64, DbErr> {
    let ended = sync_runs::Entity::of_store(store)
        .filter(sync_runs::Column::Status.ne(RunStatus::Running))
        .select_only()
        .column(sync_runs::Column::Id)
        .into_query();
    Ok(report_rows::Entity::delete_of_store(store)
        .filter(report_rows::Column::RunId.in_subquery(ended))
        .exec(conn)
        .await?
        .rows_affected)
}

/// A staged row's completeness as [`packed`] reads it: a boolean on PostgreSQL, 0 or 1 on SQLite.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Int(i64),
}

impl Flag {
    fn is_set(&self) -> bool {
        matches!(self, Flag::Bool(true) | Flag::Int(1))
    }
}
