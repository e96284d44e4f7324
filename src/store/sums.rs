//! Sums of a store's figures and orders over a day range, added up in SQL (one GROUP BY each), for
//! the merchant's Overview, Affiliates and Figures pages (DESIGN §4.2).
use std::collections::BTreeMap;

use chrono::NaiveDate;
use entity::{daily_figures, orders};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, QueryFilter, QuerySelect, sea_query::Expr};

use super::StoreScoped;
use crate::domain::ids::StoreId;

/// Amazon's figures added up, money in minor units of the marketplace's currency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FigureSums {
    pub clicks: i64,
    /// Of the promoted (linked) products.
    pub purchases: i64,
    pub sales_minor: i64,
    /// Of every product of the brand (promoted + halo).
    pub total_purchases: i64,
    pub total_sales_minor: i64,
    /// Brand Referral Bonus estimate.
    pub brb_minor: i64,
}

/// Orders added up in one currency, money in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSums {
    pub currency: String,
    pub orders: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
}

/// `SUM(column)` as a BIGINT on both databases (PostgreSQL's SUM of a bigint is a numeric).
fn sum(column: &str) -> Expr {
    Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)"))
}

type FigureRow<K> = (K, i64, i64, i64, i64, i64, i64);

fn figure_sums<K>((key, clicks, p, s, tp, ts, brb): FigureRow<K>) -> (K, FigureSums) {
    let sums = FigureSums {
        clicks,
        purchases: p,
        sales_minor: s,
        total_purchases: tp,
        total_sales_minor: ts,
        brb_minor: brb,
    };
    (key, sums)
}

/// The store's figures of `from..=to` (of one affiliate when given), added up by `by`.
async fn figures_by<K: sea_orm::TryGetable + Ord>(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (from, to): (NaiveDate, NaiveDate),
    affiliate: Option<i64>,
    by: daily_figures::Column,
) -> Result<BTreeMap<K, FigureSums>, DbErr> {
    let mut q = daily_figures::Entity::of_store(store)
        .filter(daily_figures::Column::Day.between(from, to))
        .select_only()
        .column(by);
    if let Some(a) = affiliate {
        q = q.filter(daily_figures::Column::AffiliateId.eq(a));
    }
    let rows: Vec<FigureRow<K>> = q
        .column_as(sum("clicks"), "clicks")
        .column_as(sum("purchases"), "purchases")
        .column_as(sum("sales_minor"), "sales")
        .column_as(sum("total_purchases"), "total_purchases")
        .column_as(sum("total_sales_minor"), "total_sales")
        .column_as(sum("brb_minor"), "brb")
        .group_by(by)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(figure_sums).collect())
}

/// The store's orders of `from..=to` (of one affiliate when given), added up by `by` and currency.
async fn orders_by<K: sea_orm::TryGetable + Ord>(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (from, to): (NaiveDate, NaiveDate),
    affiliate: Option<i64>,
    by: orders::Column,
) -> Result<BTreeMap<K, Vec<OrderSums>>, DbErr> {
    let mut q = orders::Entity::of_store(store)
        .filter(orders::Column::Day.between(from, to))
        .select_only()
        .column(by)
        .column(orders::Column::Currency);
    if let Some(a) = affiliate {
        q = q.filter(orders::Column::AffiliateId.eq(a));
    }
    let rows: Vec<(K, String, i64, i64, i64)> = q
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "orders")
        .column_as(sum("sales_minor"), "sales")
        .column_as(sum("commission_minor"), "commission")
        .group_by(by)
        .group_by(orders::Column::Currency)
        .into_tuple()
        .all(conn)
        .await?;
    let mut out: BTreeMap<K, Vec<OrderSums>> = BTreeMap::new();
    for (key, currency, orders, sales_minor, commission_minor) in rows {
        out.entry(key).or_default().push(OrderSums {
            currency,
            orders,
            sales_minor,
            commission_minor,
        });
    }
    Ok(out)
}

/// Per day of `range` (inclusive), the store's figures (of one affiliate when given).
pub async fn figures_per_day(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    range: (NaiveDate, NaiveDate),
    affiliate: Option<i64>,
) -> Result<BTreeMap<NaiveDate, FigureSums>, DbErr> {
    figures_by(conn, store, range, affiliate, daily_figures::Column::Day).await
}

/// Per affiliate, the store's figures of `range` (inclusive).
pub async fn figures_per_affiliate(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    range: (NaiveDate, NaiveDate),
) -> Result<BTreeMap<i64, FigureSums>, DbErr> {
    figures_by(conn, store, range, None, daily_figures::Column::AffiliateId).await
}

/// Per day of `range` (inclusive), the store's orders (of one affiliate when given), per currency.
pub async fn orders_per_day(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    range: (NaiveDate, NaiveDate),
    affiliate: Option<i64>,
) -> Result<BTreeMap<NaiveDate, Vec<OrderSums>>, DbErr> {
    orders_by(conn, store, range, affiliate, orders::Column::Day).await
}

/// Per affiliate, the store's orders of `range` (inclusive), per currency.
pub async fn orders_per_affiliate(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    range: (NaiveDate, NaiveDate),
) -> Result<BTreeMap<i64, Vec<OrderSums>>, DbErr> {
    orders_by(conn, store, range, None, orders::Column::AffiliateId).await
}
