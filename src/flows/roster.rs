//! Reading the program's whole roster, to catch what webhooks missed, and minting the links of
//! whoever is new.
use std::collections::HashSet;

use sea_orm::TransactionTrait;

use crate::{
    clients::program::ProgramError,
    domain::{
        affiliate::Affiliate,
        ids::{AffiliateId, StoreId},
    },
    flows::{Deps, lifecycle, links},
    store::{affiliates, connections, stores},
};

#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    #[error("the store is not installed or has no program token")]
    NoProgram,
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error(transparent)]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Token(#[from] lifecycle::ProgramTokenError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RosterSummary {
    pub affiliates: usize,
    pub removed: usize,
    pub links_changed: usize,
    /// Entries without a usable id: while there are any, no affiliate is retired.
    pub unreadable: usize,
}

/// Reads the roster (HTTP, outside any transaction), then applies it in one transaction: upserts,
/// removals of affiliates the program no longer has, and link updates.
pub async fn sync(deps: &Deps, store: &StoreId) -> Result<RosterSummary, RosterError> {
    let row = stores::find_active(&deps.db, store)
        .await?
        .ok_or(RosterError::NoProgram)?;
    let token = lifecycle::program_token(deps, store)
        .await?
        .ok_or(RosterError::NoProgram)?;
    let client = deps
        .program
        .client(row.program_api_url.as_deref(), token)
        .map_err(anyhow::Error::from)?;
    let entries = client.affiliates().await?;

    let now = deps.clock.now();
    let txn = deps.db.begin().await?;
    let mut present = HashSet::new();
    let mut roster = Vec::with_capacity(entries.len());
    let mut unreadable = 0;
    for entry in entries {
        let Some(id) = entry
            .id
            .as_deref()
            .and_then(|i| i.trim().parse().ok())
            .and_then(AffiliateId::new)
        else {
            tracing::warn!(store_id = %store, "roster entry without a usable id skipped");
            unreadable += 1;
            continue;
        };
        present.insert(id);
        let affiliate = Affiliate {
            id,
            name: entry.name.unwrap_or_default(),
            ref_code: entry.ref_code,
            status: entry.status.unwrap_or_else(|| "approved".into()),
        };
        roster.push(affiliate);
    }
    let upserts: Vec<_> = roster.iter().map(|a| (store, a, now)).collect();
    affiliates::upsert_all(&txn, &upserts).await?;
    let mut removed = 0;
    // An entry without a usable id may be any known affiliate: none is taken as gone then.
    let known = match unreadable {
        0 => affiliates::list_current(&txn, store).await?,
        _ => Vec::new(),
    };
    for known in known {
        let Some(id) = AffiliateId::new(known.affiliate_id) else {
            continue;
        };
        if !present.contains(&id) {
            affiliates::mark_deleted(&txn, store, id, now).await?;
            removed += 1;
        }
    }
    let links_changed = links::refresh(&txn, store, now).await?;
    txn.commit().await?;
    let summary = RosterSummary {
        affiliates: present.len(),
        removed,
        links_changed,
        unreadable,
    };
    if unreadable > 0 {
        tracing::warn!(store_id = %store, unreadable, "roster entries without a usable id: no affiliate retired on this read");
    }
    tracing::info!(store_id = %store, ?summary, "roster read");
    Ok(summary)
}

/// Reads the roster of every active store whose Amazon account is connected; failures are logged
/// per store and never stop the others.
pub async fn sync_connected(deps: &Deps) {
    let connected = match connections::all_connected(&deps.db).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot list connected stores for the roster read");
            return;
        }
    };
    for row in connected {
        let Ok(store) = StoreId::parse(&row.store_id) else {
            continue;
        };
        if let Err(e) = sync(deps, &store).await {
            tracing::warn!(store_id = %store, error = %e, "roster read failed");
        }
    }
}
