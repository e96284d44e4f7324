//! The program's affiliate roster as this app knows it, kept current by webhooks and roster reads.
use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::affiliates;
use entity::{states::StoreStatus, stores};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, PaginatorTrait, QueryFilter, QueryOrder,
    sea_query::{Expr, ExprTrait, OnConflict, Order, Query, ValueTuple},
};

use super::StoreScoped;
use crate::domain::text::storable;
use crate::domain::{
    affiliate::Affiliate,
    ids::{AffiliateId, StoreId},
};

/// An affiliate row (deleted ones keep their row, with `deleted_at`, for their history's names).
pub use entity::affiliates::Model as AffiliateRow;

/// Creates or updates affiliates (and revives those deleted), of any stores, each only if its
/// store is installed (a webhook's, a webhook group's, issue 11; a roster read's): `INSERT …
/// SELECT` from a `VALUES` list joined with the active stores, so the stores' state is checked in
/// the same statement, one per [`UPSERT_CHUNK`] affiliates. Each comes with the instant of its
/// change. Where an affiliate is given twice, what is written is what the changes one by one
/// would leave (a statement may not update a row twice): the later one's fields and
/// `updated_at`, and the first one's instant as `created_at` of a new row. Rows are written in
/// key order, which makes a deadlock between two writers on PostgreSQL unlikely (one would fail
/// the webhook group, which then commits one delivery at a time). Returns the `(store, affiliate
/// id)` of those written; the others' stores are not active.
pub async fn upsert_all(
    conn: &impl ConnectionTrait,
    upserts: &[(&StoreId, &Affiliate, DateTime<Utc>)],
) -> Result<HashSet<(String, i64)>, DbErr> {
    let mut last: BTreeMap<_, Change<'_>> = BTreeMap::new();
    for &(store, affiliate, at) in upserts {
        last.entry((store.as_str(), affiliate.id.get()))
            .and_modify(|c| (c.affiliate, c.at) = (affiliate, at))
            .or_insert(Change {
                affiliate,
                first_at: at,
                at,
            });
    }
    let last: Vec<_> = last.into_iter().collect();
    let mut written = HashSet::with_capacity(last.len());
    for chunk in last.chunks(UPSERT_CHUNK) {
        upsert_chunk(conn, chunk, &mut written).await?;
    }
    Ok(written)
}

/// Affiliates per statement: 6,000 bound values, well under SQLite's 32,766 and PostgreSQL's
/// 65,535.
const UPSERT_CHUNK: usize = 1_000;

/// One affiliate's changes in an [`upsert_all`]: the last one, its instant, and the first's.
struct Change<'a> {
    affiliate: &'a Affiliate,
    first_at: DateTime<Utc>,
    at: DateTime<Utc>,
}

type Keyed<'a> = ((&'a str, i64), Change<'a>);

async fn upsert_chunk(
    conn: &impl ConnectionTrait,
    chunk: &[Keyed<'_>],
    written: &mut HashSet<(String, i64)>,
) -> Result<(), DbErr> {
    use affiliates::Column as C;
    let rows = chunk.iter().map(|((store, id), change)| {
        let affiliate = change.affiliate;
        let ref_code = affiliate
            .ref_code
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| storable(r).into_owned());
        ValueTuple::Many(vec![
            (*store).into(),
            (*id).into(),
            storable(affiliate.name.trim()).into_owned().into(),
            ref_code.into(),
            storable(&affiliate.status).into_owned().into(),
            change.first_at.into(),
            change.at.into(),
        ])
    });
    // A `VALUES` list's columns are `column1`, `column2`, … on both SQLite and PostgreSQL.
    let v = |n: usize| Expr::col(("v", format!("column{n}")));
    let mut from_stores = Query::select();
    from_stores
        .exprs([v(1), v(2), v(3), v(4), v(5)])
        .expr(Expr::val(Option::<DateTime<Utc>>::None))
        .exprs([v(6), v(7)])
        .from_values(rows, "v")
        .inner_join(
            stores::Entity,
            Expr::col((stores::Entity, stores::Column::Id)).equals(("v", "column1")),
        )
        // Also what SQLite needs to read `ON CONFLICT` as the upsert's, not the join's.
        .and_where(stores::Column::Status.eq(StoreStatus::Active))
        // PostgreSQL writes (and locks) in this order, not the hash join's.
        .order_by(("v", "column1"), Order::Asc)
        .order_by(("v", "column2"), Order::Asc);
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
        .select_from(from_stores)
        .map_err(|e| DbErr::Custom(e.to_string()))?
        .on_conflict(
            OnConflict::columns([C::StoreId, C::AffiliateId])
                .update_columns([C::Name, C::RefCode, C::Status, C::DeletedAt, C::UpdatedAt])
                .to_owned(),
        )
        .returning(Query::returning().columns([C::StoreId, C::AffiliateId]));
    for row in conn.query_all(&insert).await? {
        written.insert((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
    }
    Ok(())
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

/// The store's current (not deleted) affiliates, by id; only those of `only` when given (none of
/// those deleted or unknown).
pub async fn current_of(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    only: Option<&[i64]>,
) -> Result<Vec<AffiliateRow>, DbErr> {
    let mut q =
        affiliates::Entity::of_store(store_id).filter(affiliates::Column::DeletedAt.is_null());
    if let Some(ids) = only {
        q = q.filter(affiliates::Column::AffiliateId.is_in(ids.iter().copied()));
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
    let live = affiliates::Entity::of_store(store_id)
        .filter(affiliates::Column::DeletedAt.is_null())
        .filter(affiliates::Column::AffiliateId.eq(affiliate_id));
    super::by_unique_key(conn, live).await
}
