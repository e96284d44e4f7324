//! The program's affiliate roster as this app knows it, kept current by webhooks and roster reads.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::affiliates;
use entity::{states::StoreStatus, stores};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, OnConflict, Query},
};

use super::StoreScoped;
use crate::domain::text::storable;
use crate::domain::{
    affiliate::Affiliate,
    ids::{AffiliateId, StoreId},
};

/// An affiliate row (deleted ones keep their row, with `deleted_at`, for their history's names).
pub use entity::affiliates::Model as AffiliateRow;

/// Creates or updates an affiliate (and revives one that was deleted), if the store is installed:
/// one statement, `INSERT … SELECT` from the store's row. False when the store is not active.
pub async fn upsert(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    affiliate: &Affiliate,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    use affiliates::Column as C;
    let ref_code = affiliate
        .ref_code
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| storable(r).into_owned());
    let mut from_store = Query::select();
    from_store
        .exprs([
            Expr::val(store_id.as_str()),
            Expr::val(affiliate.id.get()),
            Expr::val(storable(affiliate.name.trim()).into_owned()),
            Expr::val(ref_code),
            Expr::val(storable(&affiliate.status).into_owned()),
            Expr::val(Option::<DateTime<Utc>>::None),
            Expr::val(now),
            Expr::val(now),
        ])
        .from(stores::Entity)
        .and_where(stores::Column::Id.eq(store_id.as_str()))
        .and_where(stores::Column::Status.eq(StoreStatus::Active));
    let mut insert = Query::insert();
    insert
        .into_table(affiliates::Entity)
        .columns([
            C::StoreId,
            C::AffiliateId,
            C::Name,
            C::RefCode,
            C::Status,
            C::DeletedAt,
            C::CreatedAt,
            C::UpdatedAt,
        ])
        .select_from(from_store)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::columns([C::StoreId, C::AffiliateId])
                .update_columns([C::Name, C::RefCode, C::Status, C::DeletedAt, C::UpdatedAt])
                .to_owned(),
        );
    Ok(conn.execute(&insert).await?.rows_affected() > 0)
}

/// Marks an affiliate deleted; the row stays so that its history keeps a name.
pub async fn mark_deleted(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    affiliate_id: AffiliateId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = affiliates::Entity::update_of_store(store_id)
        .col_expr(affiliates::Column::DeletedAt, Expr::value(Some(now)))
        .col_expr(affiliates::Column::UpdatedAt, Expr::value(now))
        .filter(affiliates::Column::AffiliateId.eq(affiliate_id.get()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// The store's current (not deleted) affiliates, by id.
pub async fn list_current(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
) -> Result<Vec<AffiliateRow>, DbErr> {
    current_of(conn, store_id, None).await
}

/// The store's current (not deleted) affiliates, by id; only `affiliate` when given (none when it
/// is deleted or unknown).
pub async fn current_of(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    affiliate: Option<i64>,
) -> Result<Vec<AffiliateRow>, DbErr> {
    let mut q =
        affiliates::Entity::of_store(store_id).filter(affiliates::Column::DeletedAt.is_null());
    if let Some(id) = affiliate {
        q = q.filter(affiliates::Column::AffiliateId.eq(id));
    }
    q.order_by_asc(affiliates::Column::AffiliateId)
        .all(conn)
        .await
}

pub async fn count_current(conn: &impl ConnectionTrait, store_id: &StoreId) -> Result<u64, DbErr> {
    affiliates::Entity::of_store(store_id)
        .filter(affiliates::Column::DeletedAt.is_null())
        .count(conn)
        .await
}

/// Every affiliate the store ever had (deleted ones too), by id: names for history.
pub async fn all_by_id(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
) -> Result<HashMap<i64, AffiliateRow>, DbErr> {
    Ok(affiliates::Entity::of_store(store_id)
        .all(conn)
        .await?
        .into_iter()
        .map(|a| (a.affiliate_id, a))
        .collect())
}

/// The ids of every affiliate the store ever had: a report row of one of them is theirs.
pub async fn known_ids(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
) -> Result<HashSet<i64>, DbErr> {
    Ok(all_by_id(conn, store_id).await?.into_keys().collect())
}

/// One of the store's current (not deleted) affiliates; another store's is never found.
pub async fn find_current(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    affiliate_id: i64,
) -> Result<Option<AffiliateRow>, DbErr> {
    affiliates::Entity::of_store(store_id)
        .filter(affiliates::Column::DeletedAt.is_null())
        .filter(affiliates::Column::AffiliateId.eq(affiliate_id))
        .one(conn)
        .await
}
