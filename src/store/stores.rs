//! Stores and their lifecycle: install, uninstall, commission changes, redaction and retention.
//! Every function takes the connection it runs on, so webhook effects share the inbox transaction.
use chrono::{DateTime, Duration, Utc};
use entity::{
    affiliates, amazon_connections, daily_figures, figure_changes, job_attempts, jobs,
    landing_pages, links, oauth_states, order_versions, orders, program_credentials, sessions,
    stores, sync_runs, unmatched_figures, webhook_inbox,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait, sea_query::Expr,
};
use secrecy::SecretString;
use serde::Serialize;

use crate::{
    crypto::TokenCipher,
    domain::{commission::DefaultCommission, ids::StoreId},
    webhooks::events::Installed,
};

pub const ACTIVE: &str = "active";
pub const UNINSTALLED: &str = "uninstalled";

/// Associated data binding a sealed program token to its store.
fn program_token_aad(store_id: &str) -> String {
    format!("program-token:{store_id}")
}

/// Locks the store's row until the end of the transaction (PostgreSQL; SQLite has one writer).
pub async fn lock(conn: &impl ConnectionTrait, id: &StoreId) -> Result<(), DbErr> {
    use sea_orm::{DbBackend, Statement};
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM stores WHERE id = $1 FOR UPDATE",
            [id.as_str().into()],
        ))
        .await?;
    }
    Ok(())
}

pub async fn find(
    conn: &impl ConnectionTrait,
    id: &StoreId,
) -> Result<Option<stores::Model>, DbErr> {
    stores::Entity::find_by_id(id.as_str()).one(conn).await
}

/// Creates the store, or brings an existing one up to date (a second install, or a reinstall).
pub async fn install(
    conn: &impl ConnectionTrait,
    cipher: &TokenCipher,
    event: &Installed,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let id = event.store.id.as_str();
    let commission = event.commission;
    let api_url = event
        .api_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned());
    match stores::Entity::find_by_id(id).one(conn).await? {
        Some(existing) => {
            let reinstalled = existing.status != ACTIVE;
            let commission_changed = existing.commission_type != commission.kind.as_str()
                || existing.commission_value != commission.value.normalize().to_string();
            let mut store: stores::ActiveModel = existing.into();
            store.name = Set(event.store.name.clone());
            store.url = Set(event.store.url.clone());
            store.currency = Set(event.store.currency.code().to_owned());
            store.program_api_url = Set(api_url);
            store.status = Set(ACTIVE.to_owned());
            store.uninstalled_at = Set(None);
            if reinstalled {
                store.installed_at = Set(now);
            }
            if commission_changed {
                set_commission_fields(&mut store, commission, now);
            }
            store.updated_at = Set(now);
            store.update(conn).await?;
        }
        None => {
            let mut store = stores::ActiveModel {
                id: Set(id.to_owned()),
                name: Set(event.store.name.clone()),
                url: Set(event.store.url.clone()),
                currency: Set(event.store.currency.code().to_owned()),
                status: Set(ACTIVE.to_owned()),
                program_api_url: Set(api_url),
                installed_at: Set(now),
                uninstalled_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                campaign_id: Set(Some(crate::domain::links::campaign_id_for(id))),
                ..Default::default()
            };
            set_commission_fields(&mut store, commission, now);
            store.insert(conn).await?;
        }
    }
    save_program_token(conn, cipher, &event.store.id, &event.access_token, now).await
}

fn set_commission_fields(
    store: &mut stores::ActiveModel,
    c: DefaultCommission,
    now: DateTime<Utc>,
) {
    store.commission_type = Set(c.kind.as_str().to_owned());
    store.commission_value = Set(c.value.normalize().to_string());
    store.commission_updated_at = Set(now);
}

async fn save_program_token(
    conn: &impl ConnectionTrait,
    cipher: &TokenCipher,
    store_id: &StoreId,
    token: &SecretString,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let sealed = cipher.seal(token, &program_token_aad(store_id.as_str()));
    program_credentials::Entity::delete_by_id(store_id.as_str())
        .exec(conn)
        .await?;
    program_credentials::ActiveModel {
        store_id: Set(store_id.as_str().to_owned()),
        access_token: Set(sealed),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
}

/// The program's admin-API token of an active store, decrypted for immediate use.
pub async fn program_token(
    conn: &impl ConnectionTrait,
    cipher: &TokenCipher,
    store_id: &StoreId,
) -> Result<Option<SecretString>, anyhow::Error> {
    let Some(row) = program_credentials::Entity::find_by_id(store_id.as_str())
        .one(conn)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(cipher.open(
        &row.access_token,
        &program_token_aad(store_id.as_str()),
    )?))
}

/// Stops the store at once: its tokens and sessions go, its history stays until retention ends.
/// Returns false when there was nothing to uninstall (unknown or already uninstalled): still a success.
pub async fn uninstall(
    conn: &impl ConnectionTrait,
    id: &StoreId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let Some(store) = find(conn, id).await? else {
        return Ok(false);
    };
    let was_active = store.status == ACTIVE;
    if was_active {
        let mut store: stores::ActiveModel = store.into();
        store.status = Set(UNINSTALLED.to_owned());
        store.uninstalled_at = Set(Some(now));
        store.updated_at = Set(now);
        store.update(conn).await?;
    }
    program_credentials::Entity::delete_by_id(id.as_str())
        .exec(conn)
        .await?;
    amazon_connections::Entity::delete_by_id(id.as_str())
        .exec(conn)
        .await?;
    oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::StoreId.eq(id.as_str()))
        .exec(conn)
        .await?;
    sessions::Entity::delete_many()
        .filter(sessions::Column::StoreId.eq(id.as_str()))
        .exec(conn)
        .await?;
    crate::jobs::cancel_store(conn, id, now).await?;

    // Their pushes were cancelled: after a reinstall, the next sync queues them again.
    orders::Entity::update_many()
        .col_expr(
            orders::Column::PushState,
            Expr::value(crate::flows::sync::ledger::WAITING),
        )
        .filter(orders::Column::StoreId.eq(id.as_str()))
        .filter(orders::Column::PushState.eq(crate::flows::sync::ledger::PENDING))
        .exec(conn)
        .await?;

    Ok(was_active)
}

/// Records the program's new default commission. False when the store is not active.
pub async fn set_commission(
    conn: &impl ConnectionTrait,
    id: &StoreId,
    commission: DefaultCommission,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let Some(store) = find(conn, id).await?.filter(|s| s.status == ACTIVE) else {
        return Ok(false);
    };
    let mut store: stores::ActiveModel = store.into();
    set_commission_fields(&mut store, commission, now);
    store.updated_at = Set(now);
    store.update(conn).await?;
    Ok(true)
}

/// Deletes every row of the store. Inbox rows stay as bare delivery ids (so a late retry of an
/// old delivery is still recognised) but no longer name the store.
pub async fn purge(conn: &impl ConnectionTrait, id: &StoreId) -> Result<(), DbErr> {
    let id = id.as_str();
    sessions::Entity::delete_many()
        .filter(sessions::Column::StoreId.eq(id))
        .exec(conn)
        .await?;
    affiliates::Entity::delete_many()
        .filter(affiliates::Column::StoreId.eq(id))
        .exec(conn)
        .await?;
    program_credentials::Entity::delete_by_id(id)
        .exec(conn)
        .await?;
    amazon_connections::Entity::delete_by_id(id)
        .exec(conn)
        .await?;
    oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::StoreId.eq(id))
        .exec(conn)
        .await?;
    landing_pages::Entity::delete_many()
        .filter(landing_pages::Column::StoreId.eq(id))
        .exec(conn)
        .await?;
    links::Entity::delete_many()
        .filter(links::Column::StoreId.eq(id))
        .exec(conn)
        .await?;
    macro_rules! purge_table {
        ($($t:ident),*) => {$(
            $t::Entity::delete_many().filter($t::Column::StoreId.eq(id)).exec(conn).await?;
        )*};
    }
    purge_table!(
        jobs,
        job_attempts,
        daily_figures,
        figure_changes,
        unmatched_figures,
        orders,
        order_versions,
        sync_runs
    );
    webhook_inbox::Entity::update_many()
        .col_expr(
            webhook_inbox::Column::StoreId,
            Expr::value(Option::<String>::None),
        )
        .filter(webhook_inbox::Column::StoreId.eq(id))
        .exec(conn)
        .await?;
    stores::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

/// Purges stores uninstalled more than `retention_days` ago, each in its own transaction, and
/// drops expired sessions. Returns how many stores were purged.
pub async fn purge_expired(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<usize, DbErr> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let expired = stores::Entity::find()
        .filter(stores::Column::Status.eq(UNINSTALLED))
        .filter(stores::Column::UninstalledAt.lt(cutoff))
        .all(db)
        .await?;
    let mut purged = 0;
    for store in &expired {
        let id = StoreId::parse(&store.id).map_err(|e| DbErr::Custom(e.to_string()))?;
        let txn = db.begin().await?;
        // Checked again under the lock: a reinstall since the listing keeps the store.
        lock(&txn, &id).await?;
        let still_expired = find(&txn, &id).await?.is_some_and(|s| {
            s.status == UNINSTALLED && s.uninstalled_at.is_some_and(|at| at < cutoff)
        });
        if !still_expired {
            txn.rollback().await?;
            continue;
        }
        purge(&txn, &id).await?;
        txn.commit().await?;
        purged += 1;
        tracing::info!(store_id = %id, "purged uninstalled store after retention");
    }

    sessions::Entity::delete_many()
        .filter(sessions::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    oauth_states::Entity::delete_many()
        .filter(oauth_states::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;

    Ok(purged)
}

/// What `stores list` and the setup page show of a store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSummary {
    pub id: String,
    pub name: String,
    pub url: String,
    pub currency: String,
    pub status: String,
    pub default_commission: String,
    pub program_connected: bool,
    pub affiliates: u64,
    pub installed_at: DateTime<Utc>,
    pub uninstalled_at: Option<DateTime<Utc>>,
}

pub async fn summary(
    conn: &impl ConnectionTrait,
    store: stores::Model,
) -> Result<StoreSummary, DbErr> {
    let program_connected = program_credentials::Entity::find_by_id(store.id.as_str())
        .count(conn)
        .await?
        > 0;
    let affiliates = affiliates::Entity::find()
        .filter(affiliates::Column::StoreId.eq(store.id.as_str()))
        .filter(affiliates::Column::DeletedAt.is_null())
        .count(conn)
        .await?;
    let default_commission =
        DefaultCommission::from_columns(&store.commission_type, &store.commission_value)
            .map(|c| c.to_string())
            .unwrap_or_else(|e| e.to_string());
    Ok(StoreSummary {
        id: store.id,
        name: store.name,
        url: store.url,
        currency: store.currency,
        status: store.status,
        default_commission,
        program_connected,
        affiliates,
        installed_at: store.installed_at,
        uninstalled_at: store.uninstalled_at,
    })
}

pub async fn list(conn: &impl ConnectionTrait) -> Result<Vec<StoreSummary>, DbErr> {
    let stores = stores::Entity::find()
        .order_by_asc(stores::Column::Id)
        .all(conn)
        .await?;
    let mut out = Vec::with_capacity(stores.len());
    for store in stores {
        out.push(summary(conn, store).await?);
    }
    Ok(out)
}
