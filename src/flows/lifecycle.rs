//! A store's life in the program (DESIGN §2 steps 1 and 8, §4.1): the effects of the platform's
//! events, each run inside the transaction that records the delivery, and the program token
//! sealed with the store as associated data.
use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use secrecy::SecretString;

use crate::{
    crypto::{CryptoError, TokenCipher},
    domain::{
        affiliate::Affiliate,
        ids::{AffiliateId, StoreId},
    },
    flows::{Deps, links},
    store::{
        affiliates,
        stores::{self, NewStore},
    },
};

/// Associated data binding a sealed program token to its store.
fn program_token_aad(store: &StoreId) -> String {
    format!("program-token:{store}")
}

/// The program's admin-API token of the store, opened for immediate use.
pub async fn program_token(
    deps: &Deps,
    store: &StoreId,
) -> Result<Option<SecretString>, ProgramTokenError> {
    let Some(sealed) = stores::sealed_program_token(&deps.db, store).await? else {
        return Ok(None);
    };
    Ok(Some(deps.cipher.open(&sealed, &program_token_aad(store))?))
}

/// Whether `cipher` opens this database's secrets, tried on a few stores' sealed program tokens:
/// refused only when none opens (one damaged row must not stop every store). A key file deleted
/// and created anew, or another `security.encryption_key`, would leave every store's tokens
/// unreadable while the service ran as if well: refused at start instead.
pub async fn check_key(
    conn: &impl ConnectionTrait,
    cipher: &crate::crypto::TokenCipher,
) -> Result<(), KeyMismatch> {
    let sealed = stores::some_sealed_program_tokens(conn, 5).await?;
    let opens = |(store, sealed): &(String, Vec<u8>)| {
        StoreId::parse(store)
            .is_ok_and(|store| cipher.open(sealed, &program_token_aad(&store)).is_ok())
    };
    match sealed.first() {
        Some((store, _)) if !sealed.iter().any(opens) => Err(KeyMismatch::Mismatch(store.clone())),
        _ => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyMismatch {
    #[error(
        "the encryption key does not open the secrets this database holds (store {0}'s program \
         token): was the key file (security.key_file) deleted or replaced, or \
         security.encryption_key changed? Restore the key they were sealed with; started with \
         this one, every store's tokens would be unreadable"
    )]
    Mismatch(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

#[derive(Debug, thiserror::Error)]
pub enum ProgramTokenError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Creates or updates the store (a second install, a reinstall) with its sealed program token.
pub async fn install(
    conn: &impl ConnectionTrait,
    cipher: &TokenCipher,
    new: &NewStore<'_>,
    token: &SecretString,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let sealed = cipher.seal(token, &program_token_aad(new.id));
    stores::install(conn, new, sealed, now).await
}

/// A new or changed affiliate of an installed store gets its links (if the store is connected
/// to Amazon; its refresh looks that up). False when the store is not installed.
pub async fn affiliate_upserted(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate: &Affiliate,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let written = affiliates_upserted(conn, &[(store, affiliate, now)], None).await?;
    Ok(!written.is_empty())
}

/// [`affiliate_upserted`] for consecutive affiliate events of a webhook group (issue 11), with
/// what one by one would leave: the affiliates in one statement ([`affiliates::upsert_all`]: the
/// later change of one affiliate wins), then the links of those written, refreshed once per
/// store: of the stores in `connected` only, when the caller knows which are (a store's refresh
/// looks its connection up otherwise, and mints nothing for one not connected). The links so
/// minted or changed are stamped with the instant of the store's first change in the run (one by
/// one would stamp each with its affiliate's first change: they differ by the run's span, a few
/// milliseconds). Returns the `(store, affiliate id)` written; the others' stores are not
/// installed.
pub async fn affiliates_upserted(
    conn: &impl ConnectionTrait,
    upserts: &[(&StoreId, &Affiliate, DateTime<Utc>)],
    connected: Option<&HashSet<StoreId>>,
) -> Result<HashSet<(String, i64)>, DbErr> {
    let written = affiliates::upsert_all(conn, upserts).await?;
    let mut refresh: BTreeMap<&str, (&StoreId, Vec<i64>, DateTime<Utc>)> = BTreeMap::new();
    for &(store, affiliate, at) in upserts {
        let id = affiliate.id.get();
        let may_have_links = connected.is_none_or(|c| c.contains(store));
        if may_have_links && written.contains(&(store.as_str().to_owned(), id)) {
            let (_, ids, first) = refresh.entry(store.as_str()).or_insert((store, vec![], at));
            ids.push(id);
            *first = (*first).min(at);
        }
    }
    for (store, mut ids, first) in refresh.into_values() {
        ids.sort_unstable();
        ids.dedup();
        links::refresh_affiliates(conn, store, &ids, first).await?;
    }
    Ok(written)
}

/// A deleted affiliate's links are retired. False when the store is not installed or the
/// affiliate unknown.
pub async fn affiliate_deleted(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate: AffiliateId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    if !stores::is_active(conn, store).await? {
        return Ok(false);
    }
    let known = affiliates::mark_deleted(conn, store, affiliate, now).await?;
    links::refresh_affiliate(conn, store, affiliate.get(), now).await?;
    Ok(known)
}
