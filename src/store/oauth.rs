//! Login with Amazon attempts (`oauth_states`): single use, bound to a store, expiring. Keyed by
//! the SHA-256 of the `state` sent to Amazon; the PKCE verifier is sealed.
use chrono::{DateTime, Utc};
use entity::oauth_states;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr,
    EntityTrait, QueryFilter, sea_query::Expr,
};

use super::StoreScoped;
use crate::domain::{ids::StoreId, region::Region};

/// An attempt row.
pub use entity::oauth_states::Model as Attempt;

/// Records a new attempt; the store's used or expired ones go, so the table holds live ones only.
pub async fn start(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    state_hash: &str,
    region: Region,
    sealed_verifier: Vec<u8>,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    oauth_states::Entity::delete_of_store(store)
        .filter(
            Condition::any()
                .add(oauth_states::Column::UsedAt.is_not_null())
                .add(oauth_states::Column::ExpiresAt.lt(now)),
        )
        .exec(conn)
        .await?;
    oauth_states::ActiveModel {
        state_hash: Set(state_hash.to_owned()),
        store_id: Set(store.as_str().to_owned()),
        region: Set(region.as_str().to_owned()),
        code_verifier: Set(sealed_verifier),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The attempt Amazon's callback names, whichever store it belongs to (the caller checks).
pub async fn find(conn: &impl ConnectionTrait, state_hash: &str) -> Result<Option<Attempt>, DbErr> {
    super::by_unique_key(
        conn,
        oauth_states::Entity::find_by_id(state_hash.to_owned()),
    )
    .await
}

/// Marks the attempt used, if it is still unused and unexpired. True when this call consumed it.
pub async fn consume(
    conn: &impl ConnectionTrait,
    state_hash: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = oauth_states::Entity::update_many()
        .col_expr(oauth_states::Column::UsedAt, Expr::value(Some(now)))
        .filter(oauth_states::Column::StateHash.eq(state_hash))
        .filter(oauth_states::Column::UsedAt.is_null())
        .filter(oauth_states::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

pub async fn delete_of_store(conn: &impl ConnectionTrait, store: &StoreId) -> Result<(), DbErr> {
    oauth_states::Entity::delete_of_store(store)
        .exec(conn)
        .await?;
    Ok(())
}

/// Drops every expired attempt.
pub async fn sweep_expired(conn: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64, DbErr> {
    super::delete_expired(conn, oauth_states::Column::ExpiresAt, now).await
}
