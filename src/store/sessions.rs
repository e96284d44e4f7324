//! Merchant sessions: actix-session's state, keyed by the SHA-256 of the cookie's key, with the
//! store id so that uninstall and redaction can end a store's sessions.
use chrono::{DateTime, Utc};
use entity::sessions;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    sea_query::Expr,
};

/// The session's JSON state, if it exists and has not expired.
pub async fn load(
    conn: &impl ConnectionTrait,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>, DbErr> {
    Ok(sessions::Entity::find_by_id(id.to_owned())
        .filter(sessions::Column::ExpiresAt.gt(now))
        .one(conn)
        .await?
        .map(|r| r.state))
}

pub async fn insert(
    conn: &impl ConnectionTrait,
    id: &str,
    store: Option<String>,
    state: String,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(id.to_owned()),
        store_id: Set(store),
        state: Set(state),
        expires_at: Set(expires_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Replaces the session's state; false when it no longer exists (expired or ended).
pub async fn update(
    conn: &impl ConnectionTrait,
    id: &str,
    store: Option<String>,
    state: String,
    expires_at: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = sessions::Entity::update_many()
        .col_expr(sessions::Column::State, Expr::value(state))
        .col_expr(sessions::Column::StoreId, Expr::value(store))
        .col_expr(sessions::Column::ExpiresAt, Expr::value(expires_at))
        .filter(sessions::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(res.rows_affected > 0)
}

pub async fn extend(
    conn: &impl ConnectionTrait,
    id: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::ExpiresAt, Expr::value(expires_at))
        .filter(sessions::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn delete(conn: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    sessions::Entity::delete_by_id(id.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Drops every expired session.
pub async fn sweep_expired(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(sessions::Entity::delete_many()
        .filter(sessions::Column::ExpiresAt.lt(now))
        .exec(conn)
        .await?
        .rows_affected)
}
