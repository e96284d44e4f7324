//! A store's Login with Amazon connection and the account chosen for it. Tokens come in and go
//! out sealed. Token writes are conditional on the refresh token they were made from, so that a
//! reconnection meanwhile is never overwritten.
use std::collections::HashSet;

use chrono::{DateTime, Utc};
use entity::amazon_connections;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QuerySelect, UpdateMany, sea_query::Expr,
};

use super::{ConnectionStatus, StoreScoped};
use crate::domain::{ids::StoreId, region::Region};

/// A connection row (its tokens sealed).
pub use entity::amazon_connections::Model as Connection;

/// The Amazon account a store's links and reports use.
#[derive(Debug, Clone)]
pub struct Account {
    pub profile_id: i64,
    pub advertiser_id: String,
    pub advertiser_name: String,
    pub country_code: String,
    pub currency_code: String,
    pub timezone: String,
    pub marketplace_id: String,
    /// The non-macro template tag the links are minted from.
    pub template_tag: String,
}

pub async fn find(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Option<Connection>, DbErr> {
    super::by_unique_key(conn, amazon_connections::Entity::of_store(store)).await
}

/// The connection, if an account is chosen and usable.
pub async fn find_connected(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<Option<Connection>, DbErr> {
    Ok(find(conn, store)
        .await?
        .filter(|c| c.status == ConnectionStatus::Connected))
}

/// Which of `stores` are connected to Amazon, in one query (the intake reads this once per group
/// commit instead of once per affiliate event, so for at most `intake::MAX_BATCH` stores).
pub async fn connected_among(
    conn: &impl ConnectionTrait,
    stores: &HashSet<&StoreId>,
) -> Result<HashSet<StoreId>, DbErr> {
    if stores.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = amazon_connections::Entity::find()
        .select_only()
        .column(amazon_connections::Column::StoreId)
        .filter(amazon_connections::Column::StoreId.is_in(stores.iter().map(|s| s.as_str())))
        .filter(amazon_connections::Column::Status.eq(ConnectionStatus::Connected))
        .into_tuple()
        .all(conn)
        .await?;
    let found: HashSet<String> = found.into_iter().collect();
    Ok(stores
        .iter()
        .filter(|s| found.contains(s.as_str()))
        .map(|s| (*s).clone())
        .collect())
}

/// Every connected store's connection (the operator's daily work: schedules, roster reads).
pub async fn all_connected(conn: &impl ConnectionTrait) -> Result<Vec<Connection>, DbErr> {
    amazon_connections::Entity::find()
        .filter(amazon_connections::Column::Status.eq(ConnectionStatus::Connected))
        .all(conn)
        .await
}

/// A fresh sign-in replaces whatever the store had: the merchant chooses the account next.
pub async fn replace_after_sign_in(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    region: Region,
    sealed_refresh: Vec<u8>,
    sealed_access: Vec<u8>,
    access_expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    amazon_connections::Entity::delete_of_store(store)
        .exec(conn)
        .await?;
    amazon_connections::ActiveModel {
        store_id: Set(store.as_str().to_owned()),
        region: Set(region.as_str().to_owned()),
        status: Set(ConnectionStatus::ChooseAccount),
        refresh_token: Set(Some(sealed_refresh)),
        access_token: Set(Some(sealed_access)),
        access_expires_at: Set(Some(access_expires_at)),
        profile_id: Set(None),
        advertiser_id: Set(None),
        advertiser_name: Set(None),
        country_code: Set(None),
        currency_code: Set(None),
        timezone: Set(None),
        marketplace_id: Set(None),
        template_tag: Set(None),
        choices: Set(None),
        problem: Set(None),
        connected_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}

async fn update(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
    set: impl FnOnce(&mut amazon_connections::ActiveModel),
) -> Result<bool, DbErr> {
    let Some(row) = find(conn, store).await? else {
        return Ok(false);
    };
    let mut row: amazon_connections::ActiveModel = row.into();
    set(&mut row);
    row.updated_at = Set(now);
    row.update(conn).await?;
    Ok(true)
}

/// No account of the region can use Amazon Attribution; `problem` tells the merchant why.
pub async fn set_not_eligible(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    problem: String,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    update(conn, store, now, |row| {
        row.status = Set(ConnectionStatus::NotEligible);
        row.problem = Set(Some(problem));
    })
    .await
}

/// Several accounts fit: `choices_json` lists them until the merchant picks one.
pub async fn set_choices(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    choices_json: String,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    update(conn, store, now, |row| {
        row.status = Set(ConnectionStatus::ChooseAccount);
        row.choices = Set(Some(choices_json));
        row.problem = Set(None);
    })
    .await
}

/// The account is chosen and its template tag fetched: the store is connected.
pub async fn set_account(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    account: Account,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    update(conn, store, now, |row| {
        row.status = Set(ConnectionStatus::Connected);
        row.profile_id = Set(Some(account.profile_id));
        row.advertiser_id = Set(Some(account.advertiser_id));
        row.advertiser_name = Set(Some(account.advertiser_name));
        row.country_code = Set(Some(account.country_code));
        row.currency_code = Set(Some(account.currency_code));
        row.timezone = Set(Some(account.timezone));
        row.marketplace_id = Set(Some(account.marketplace_id));
        row.template_tag = Set(Some(account.template_tag));
        row.choices = Set(None);
        row.problem = Set(None);
    })
    .await
}

/// The update of the row that still holds `used_refresh` (sealing is randomized, so equal bytes
/// mean the same token).
fn same_grant(
    store: &StoreId,
    used_refresh: &[u8],
    now: DateTime<Utc>,
) -> UpdateMany<amazon_connections::Entity> {
    amazon_connections::Entity::update_of_store(store)
        .filter(amazon_connections::Column::RefreshToken.eq(used_refresh.to_vec()))
        .col_expr(amazon_connections::Column::UpdatedAt, Expr::value(now))
}

/// Stores a refreshed access token (and a rotated refresh token, when Amazon sent one). False
/// when the connection changed meanwhile: nothing was written.
pub async fn save_refreshed(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    used_refresh: &[u8],
    sealed_access: Vec<u8>,
    access_expires_at: DateTime<Utc>,
    sealed_new_refresh: Option<Vec<u8>>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = same_grant(store, used_refresh, now)
        .col_expr(
            amazon_connections::Column::AccessToken,
            Expr::value(Some(sealed_access)),
        )
        .col_expr(
            amazon_connections::Column::AccessExpiresAt,
            Expr::value(Some(access_expires_at)),
        );
    if let Some(refresh) = sealed_new_refresh {
        update = update.col_expr(
            amazon_connections::Column::RefreshToken,
            Expr::value(Some(refresh)),
        );
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// Amazon refused the refresh token: the tokens go and the merchant must reconnect. False when
/// the connection changed meanwhile.
pub async fn mark_revoked(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    used_refresh: &[u8],
    problem: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = same_grant(store, used_refresh, now)
        .col_expr(
            amazon_connections::Column::Status,
            Expr::value(ConnectionStatus::NeedsReconnect),
        )
        .col_expr(
            amazon_connections::Column::RefreshToken,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(
            amazon_connections::Column::AccessToken,
            Expr::value(Option::<Vec<u8>>::None),
        )
        .col_expr(
            amazon_connections::Column::AccessExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            amazon_connections::Column::Problem,
            Expr::value(Some(problem.to_owned())),
        )
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Forgets the connection, its tokens and its sign-in attempts.
pub async fn delete(conn: &impl ConnectionTrait, store: &StoreId) -> Result<(), DbErr> {
    amazon_connections::Entity::delete_of_store(store)
        .exec(conn)
        .await?;
    super::oauth::delete_of_store(conn, store).await
}
