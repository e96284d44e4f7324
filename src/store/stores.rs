//! Stores and their program credentials: install, uninstall, commission changes, redaction and
//! retention. Every function takes the connection it runs on, so webhook effects share the inbox
//! transaction. Program tokens come in and go out sealed: this layer never sees them in clear.
use chrono::{DateTime, Duration, Utc};
use entity::{
    affiliates, amazon_connections, daily_figures, figure_changes, job_attempts, jobs,
    landing_pages, links, oauth_states, order_versions, orders, program_credentials, report_rows,
    sessions, stores, sync_runs, unmatched_figures, webhook_inbox,
};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
    sea_query::Expr,
};
use serde::Serialize;

use super::{SalesBasis, StoreScoped, StoreStatus};
use crate::domain::{
    commission::DefaultCommission, currency::Currency, figures::Basis, ids::StoreId,
    links::campaign_id_for,
};

/// A store row.
pub use entity::stores::Model as Store;

/// What an install says about the store (DESIGN §4.1 `app.installed`).
#[derive(Debug, Clone)]
pub struct NewStore<'a> {
    pub id: &'a StoreId,
    pub name: &'a str,
    pub url: &'a str,
    pub currency: Currency,
    /// The program's admin API, without a trailing slash; `None` for the configured default.
    pub api_url: Option<String>,
    pub commission: DefaultCommission,
}

impl From<SalesBasis> for Basis {
    fn from(b: SalesBasis) -> Self {
        match b {
            SalesBasis::Promoted => Basis::Promoted,
            SalesBasis::Total => Basis::Total,
        }
    }
}

/// Locks the store's row until the end of the transaction (PostgreSQL; SQLite has one writer).
pub async fn lock(conn: &impl ConnectionTrait, id: &StoreId) -> Result<(), DbErr> {
    super::lock_row(
        conn,
        "SELECT 1 FROM stores WHERE id = $1 FOR UPDATE",
        vec![id.as_str().into()],
    )
    .await
}

pub async fn find(conn: &impl ConnectionTrait, id: &StoreId) -> Result<Option<Store>, DbErr> {
    super::by_unique_key(conn, stores::Entity::of_store(id)).await
}

/// The store, if the app is installed there.
pub async fn find_active(
    conn: &impl ConnectionTrait,
    id: &StoreId,
) -> Result<Option<Store>, DbErr> {
    Ok(find(conn, id)
        .await?
        .filter(|s| s.status == StoreStatus::Active))
}

pub async fn is_active(conn: &impl ConnectionTrait, id: &StoreId) -> Result<bool, DbErr> {
    Ok(find_active(conn, id).await?.is_some())
}

/// Creates the store, or brings an existing one up to date (a second install, or a reinstall),
/// with its sealed program token.
pub async fn install(
    conn: &impl ConnectionTrait,
    new: &NewStore<'_>,
    sealed_token: Vec<u8>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let commission = new.commission;
    match find(conn, new.id).await? {
        Some(existing) => {
            let reinstalled = existing.status != StoreStatus::Active;
            let commission_changed = existing.commission_type != commission.kind.as_str()
                || existing.commission_value != commission.value.normalize().to_string();
            let mut store: stores::ActiveModel = existing.into();
            store.name = Set(new.name.to_owned());
            store.url = Set(new.url.to_owned());
            store.currency = Set(new.currency.code().to_owned());
            store.program_api_url = Set(new.api_url.clone());
            store.status = Set(StoreStatus::Active);
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
                id: Set(new.id.as_str().to_owned()),
                name: Set(new.name.to_owned()),
                url: Set(new.url.to_owned()),
                currency: Set(new.currency.code().to_owned()),
                status: Set(StoreStatus::Active),
                program_api_url: Set(new.api_url.clone()),
                installed_at: Set(now),
                uninstalled_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
                campaign_id: Set(Some(campaign_id_for(new.id.as_str()))),
                sales_basis: Set(SalesBasis::Promoted),
                ..Default::default()
            };
            set_commission_fields(&mut store, commission, now);
            store.insert(conn).await?;
        }
    }
    program_credentials::Entity::delete_of_store(new.id)
        .exec(conn)
        .await?;
    program_credentials::ActiveModel {
        store_id: Set(new.id.as_str().to_owned()),
        access_token: Set(sealed_token),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await?;
    Ok(())
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

/// The sealed program token of the store, if it has one.
pub async fn sealed_program_token(
    conn: &impl ConnectionTrait,
    id: &StoreId,
) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(
        super::by_unique_key(conn, program_credentials::Entity::of_store(id))
            .await?
            .map(|row| row.access_token),
    )
}

/// Up to `n` sealed program tokens of any stores, with their stores' ids: the start's check that
/// the key opens this database's secrets (`lifecycle::check_key`), the one reader across stores.
pub async fn some_sealed_program_tokens(
    conn: &impl ConnectionTrait,
    n: u64,
) -> Result<Vec<(String, Vec<u8>)>, DbErr> {
    Ok(program_credentials::Entity::find()
        .order_by_asc(program_credentials::Column::StoreId)
        .limit(n)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.store_id, row.access_token))
        .collect())
}

/// Stops the store at once: its tokens, sessions and OAuth attempts go, its waiting work is
/// cancelled, its history stays until retention ends. Returns false when there was nothing to
/// uninstall (unknown or already uninstalled): still a success.
pub async fn uninstall(
    conn: &impl ConnectionTrait,
    id: &StoreId,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let Some(store) = find(conn, id).await? else {
        return Ok(false);
    };
    let was_active = store.status == StoreStatus::Active;
    if was_active {
        let mut store: stores::ActiveModel = store.into();
        store.status = Set(StoreStatus::Uninstalled);
        store.uninstalled_at = Set(Some(now));
        store.updated_at = Set(now);
        store.update(conn).await?;
    }
    program_credentials::Entity::delete_of_store(id)
        .exec(conn)
        .await?;
    amazon_connections::Entity::delete_of_store(id)
        .exec(conn)
        .await?;
    oauth_states::Entity::delete_of_store(id).exec(conn).await?;
    sessions::Entity::delete_of_store(id).exec(conn).await?;
    super::jobs::cancel_store(conn, id, now).await?;
    // Their pushes were cancelled: after a reinstall, the next sync queues them again.
    super::ledger::unqueue_pushes(conn, id).await?;
    Ok(was_active)
}

/// Records the program's new default commission. False when the store is not active.
pub async fn set_commission(
    conn: &impl ConnectionTrait,
    id: &StoreId,
    commission: DefaultCommission,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    update_active(conn, id, now, |store| {
        set_commission_fields(store, commission, now);
    })
    .await
}

/// The merchant's choice of sales figures. False when the store is not active.
pub async fn set_sales_basis(
    conn: &impl ConnectionTrait,
    id: &StoreId,
    basis: SalesBasis,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    update_active(conn, id, now, |store| store.sales_basis = Set(basis)).await
}

/// Applies `set` to the store's row and stamps `updated_at`. False when the store is not active.
async fn update_active(
    conn: &impl ConnectionTrait,
    id: &StoreId,
    now: DateTime<Utc>,
    set: impl FnOnce(&mut stores::ActiveModel),
) -> Result<bool, DbErr> {
    let Some(store) = find_active(conn, id).await? else {
        return Ok(false);
    };
    let mut store: stores::ActiveModel = store.into();
    set(&mut store);
    store.updated_at = Set(now);
    store.update(conn).await?;
    Ok(true)
}

/// Deletes every row of the store. Inbox rows stay as bare delivery ids (so a late retry of an
/// old delivery is still recognised) but no longer name the store.
pub async fn purge(conn: &impl ConnectionTrait, id: &StoreId) -> Result<(), DbErr> {
    macro_rules! purge_tables {
        ($($t:ident),*) => {$(
            $t::Entity::delete_of_store(id).exec(conn).await?;
        )*};
    }
    purge_tables!(
        sessions,
        affiliates,
        program_credentials,
        amazon_connections,
        oauth_states,
        landing_pages,
        links,
        jobs,
        job_attempts,
        daily_figures,
        figure_changes,
        unmatched_figures,
        orders,
        order_versions,
        sync_runs,
        report_rows
    );
    webhook_inbox::Entity::update_of_store(id)
        .col_expr(
            webhook_inbox::Column::StoreId,
            Expr::value(Option::<String>::None),
        )
        .exec(conn)
        .await?;
    stores::Entity::delete_of_store(id).exec(conn).await?;
    Ok(())
}

/// Purges stores uninstalled more than `retention_days` ago, each in its own transaction, and
/// drops expired sessions and OAuth attempts. Returns how many stores were purged.
pub async fn purge_expired(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Result<usize, DbErr> {
    let cutoff = now - Duration::days(i64::from(retention_days));
    let expired = stores::Entity::find()
        .filter(stores::Column::Status.eq(StoreStatus::Uninstalled))
        .filter(stores::Column::UninstalledAt.lt(cutoff))
        .all(db)
        .await?;
    let mut purged = 0;
    for store in &expired {
        let Ok(id) = StoreId::parse(&store.id) else {
            tracing::warn!(store_id = ?store.id, "stored store id no longer parses; not purged");
            continue;
        };
        let txn = db.begin().await?;
        // Checked again under the lock: a reinstall since the listing keeps the store.
        lock(&txn, &id).await?;
        let still_expired = find(&txn, &id).await?.is_some_and(|s| {
            s.status == StoreStatus::Uninstalled && s.uninstalled_at.is_some_and(|at| at < cutoff)
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
    super::sessions::sweep_expired(db, now).await?;
    super::oauth::sweep_expired(db, now).await?;
    Ok(purged)
}

/// What `stores list` and the Overview page show of a store.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSummary {
    pub id: String,
    pub name: String,
    pub url: String,
    pub currency: String,
    pub status: StoreStatus,
    pub default_commission: String,
    pub program_connected: bool,
    pub affiliates: u64,
    pub installed_at: DateTime<Utc>,
    pub uninstalled_at: Option<DateTime<Utc>>,
}

pub async fn summary(conn: &impl ConnectionTrait, store: Store) -> Result<StoreSummary, DbErr> {
    let Ok(id) = StoreId::parse(&store.id) else {
        return Err(DbErr::Custom(format!(
            "stored store id {:?} is invalid",
            store.id
        )));
    };
    let program_connected = program_credentials::Entity::of_store(&id)
        .count(conn)
        .await?
        > 0;
    let affiliates = super::affiliates::count_current(conn, &id).await?;
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

/// Every store, by id (the operator's view).
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

/// How many stores have the app installed.
pub async fn count_active(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    stores::Entity::find()
        .filter(stores::Column::Status.eq(StoreStatus::Active))
        .count(conn)
        .await
}
