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
    let live =
        sessions::Entity::find_by_id(id.to_owned()).filter(sessions::Column::ExpiresAt.gt(now));
    Ok(super::by_unique_key(conn, live).await?.map(|r| r.state))
}

/// A session's row: the SHA-256 of its key, the store it was opened for, its JSON state, and
/// when it expires.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub id: String,
    pub store: Option<String>,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(conn: &impl ConnectionTrait, row: SessionRow) -> Result<(), DbErr> {
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(row.id),
        store_id: Set(row.store),
        state: Set(row.state),
        expires_at: Set(row.expires_at),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Replaces the session's state; false when it no longer exists (expired or ended).
pub async fn update(conn: &impl ConnectionTrait, row: SessionRow) -> Result<bool, DbErr> {
    let res = sessions::Entity::update_many()
        .col_expr(sessions::Column::State, Expr::value(row.state))
        .col_expr(sessions::Column::StoreId, Expr::value(row.store))
        .col_expr(sessions::Column::ExpiresAt, Expr::value(row.expires_at))
        .filter(sessions::Column::Id.eq(row.id))
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
    super::delete_expired(conn, sessions::Column::ExpiresAt, now).await
}
