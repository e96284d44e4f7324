//! The program's affiliate roster as this app knows it, kept current by webhooks.
use chrono::{DateTime, Utc};
use entity::affiliates;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};

use crate::{
    domain::ids::{AffiliateId, StoreId},
    webhooks::events::Affiliate,
};

/// Creates or updates an affiliate (and revives one that was deleted).
pub async fn upsert(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    affiliate: &Affiliate,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let row = affiliates::ActiveModel {
        store_id: Set(store_id.as_str().to_owned()),
        affiliate_id: Set(affiliate.id.get()),
        name: Set(affiliate.name.trim().to_owned()),
        ref_code: Set(affiliate
            .ref_code
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)),
        status: Set(affiliate.status.clone()),
        deleted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    affiliates::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([affiliates::Column::StoreId, affiliates::Column::AffiliateId])
                .update_columns([
                    affiliates::Column::Name,
                    affiliates::Column::RefCode,
                    affiliates::Column::Status,
                    affiliates::Column::DeletedAt,
                    affiliates::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Marks an affiliate deleted; the row stays so that its history keeps a name.
pub async fn mark_deleted(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
    affiliate_id: AffiliateId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = affiliates::Entity::update_many()
        .col_expr(
            affiliates::Column::DeletedAt,
            sea_orm::sea_query::Expr::value(Some(now)),
        )
        .col_expr(
            affiliates::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(affiliates::Column::StoreId.eq(store_id.as_str()))
        .filter(affiliates::Column::AffiliateId.eq(affiliate_id.get()))
        .exec(conn)
        .await?;
    Ok(res.rows_affected > 0)
}

/// The store's current (not deleted) affiliates, by id.
pub async fn list_current(
    conn: &impl ConnectionTrait,
    store_id: &StoreId,
) -> Result<Vec<affiliates::Model>, DbErr> {
    affiliates::Entity::find()
        .filter(affiliates::Column::StoreId.eq(store_id.as_str()))
        .filter(affiliates::Column::DeletedAt.is_null())
        .order_by_asc(affiliates::Column::AffiliateId)
        .all(conn)
        .await
}
