//! Access tokens per store: sealed in the database, refreshed ahead of expiry and once on a 401.
//! Callers in this process share one refresh per store; `invalid_grant` on refresh means the
//! merchant revoked access, and the connection turns to "needs reconnect".
use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
};

use chrono::Duration;
use sea_orm::DbErr;
use secrecy::{ExposeSecret, SecretString};

use crate::{
    clients::amazon::{Region, ads::AmazonError, lwa},
    crypto::CryptoError,
    domain::ids::StoreId,
    flows::Deps,
    store::{ConnectionStatus, connections},
};

/// Refresh this long before Amazon's expiry.
const SKEW_SECS: i64 = 300;

#[derive(Default)]
pub struct TokenLocks(Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

impl TokenLocks {
    fn for_store(&self, store: &StoreId) -> Arc<tokio::sync::Mutex<()>> {
        self.0
            .lock()
            .expect("token lock map")
            .entry(store.as_str().to_owned())
            .or_default()
            .clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Amazon is not connected for this store")]
    NotConnected,
    #[error("Amazon access was revoked or expired; the merchant must reconnect")]
    NeedsReconnect,
    #[error("refreshing the Amazon access token failed: {0}")]
    Lwa(#[from] lwa::LwaError),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Amazon(#[from] AmazonError),
}

pub fn refresh_aad(store: &StoreId) -> String {
    format!("amazon-refresh:{store}")
}

pub fn access_aad(store: &StoreId) -> String {
    format!("amazon-access:{store}")
}

/// A valid access token for the store, and its region. `stale` is a token Amazon just refused: it
/// is replaced unless another caller already did so.
///
/// It runs as a task of its own: a caller that gives up (a sync dropping a page it fetched on a
/// wrong guess) must not cut a refresh short between Amazon's answer and saving it, or a
/// refresh token Amazon rotated would be lost.
pub async fn access_token(
    deps: &Deps,
    store: &StoreId,
    stale: Option<&SecretString>,
) -> Result<(SecretString, Region), AuthError> {
    let (deps, store, stale) = (deps.clone(), store.clone(), stale.cloned());
    let tracker = deps.unstoppable.clone();
    let task =
        tracker.spawn(async move { current_or_refreshed(&deps, &store, stale.as_ref()).await });
    match task.await {
        Ok(found) => found,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(AuthError::Db(DbErr::Custom(format!(
            "the access token's refresh stopped: {e}"
        )))),
    }
}

async fn current_or_refreshed(
    deps: &Deps,
    store: &StoreId,
    stale: Option<&SecretString>,
) -> Result<(SecretString, Region), AuthError> {
    let lock = deps.token_locks.for_store(store);
    let _one_refresh_at_a_time = lock.lock().await;
    // A second round only when the connection changed under us (the merchant reconnected, or
    // another instance refreshed): then the new row is the truth.
    for _ in 0..3 {
        if let Some(found) = attempt(deps, store, stale).await? {
            return Ok(found);
        }
    }
    Err(AuthError::NotConnected)
}

async fn attempt(
    deps: &Deps,
    store: &StoreId,
    stale: Option<&SecretString>,
) -> Result<Option<(SecretString, Region)>, AuthError> {
    let conn = connections::find(&deps.db, store)
        .await?
        .ok_or(AuthError::NotConnected)?;
    if conn.status == ConnectionStatus::NeedsReconnect {
        return Err(AuthError::NeedsReconnect);
    }
    let region: Region = conn.region.parse().map_err(|_| AuthError::NotConnected)?;
    let now = deps.clock.now();
    if let (Some(sealed), Some(expires)) = (&conn.access_token, conn.access_expires_at) {
        let current = deps.cipher.open(sealed, &access_aad(store))?;
        let is_stale = stale.is_some_and(|s| s.expose_secret() == current.expose_secret());
        if !is_stale && expires > now + Duration::seconds(SKEW_SECS) {
            return Ok(Some((current, region)));
        }
    }
    let sealed_refresh = conn.refresh_token.clone().ok_or(AuthError::NotConnected)?;
    let refresh = deps.cipher.open(&sealed_refresh, &refresh_aad(store))?;
    let endpoints = deps.amazon.endpoints(region);
    // Written only if the row still holds the refresh token we used: a reconnection meanwhile
    // is never overwritten.
    match lwa::refresh(&deps.amazon, &endpoints.token, &refresh).await {
        Ok(grant) => {
            let rotated = grant
                .refresh_token
                .as_ref()
                .filter(|r| r.expose_secret() != refresh.expose_secret())
                .map(|r| deps.cipher.seal(r, &refresh_aad(store)));
            let saved = connections::save_refreshed(
                &deps.db,
                store,
                &sealed_refresh,
                deps.cipher.seal(&grant.access_token, &access_aad(store)),
                now + Duration::seconds(grant.expires_in),
                rotated,
                now,
            )
            .await?;
            if !saved {
                return Ok(None);
            }
            tracing::info!(store_id = %store, "Amazon access token refreshed");
            Ok(Some((grant.access_token, region)))
        }
        Err(lwa::LwaError::InvalidGrant(detail)) => {
            let revoked = connections::mark_revoked(
                &deps.db,
                store,
                &sealed_refresh,
                "Amazon no longer accepts this app's access (it was revoked or expired). Connect Amazon again.",
                now,
            )
            .await?;
            if !revoked {
                return Ok(None);
            }
            tracing::warn!(store_id = %store, detail, "Amazon refresh token refused; needs reconnect");
            Err(AuthError::NeedsReconnect)
        }
        Err(e) => Err(AuthError::Lwa(e)),
    }
}

/// Runs `call` with a valid token; on a 401 refreshes once and runs it again.
pub async fn with_token<T, F, Fut>(deps: &Deps, store: &StoreId, call: F) -> Result<T, CallError>
where
    F: Fn(SecretString, Region) -> Fut,
    Fut: Future<Output = Result<T, AmazonError>>,
{
    let (token, region) = access_token(deps, store, None).await?;
    match call(token.clone(), region).await {
        Err(AmazonError::Unauthorized) => {
            let (fresh, region) = access_token(deps, store, Some(&token)).await?;
            Ok(call(fresh, region).await?)
        }
        other => Ok(other?),
    }
}
