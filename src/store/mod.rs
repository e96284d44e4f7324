//! The persistence layer: every query of the app, one module per table group. Finders of a
//! store's data take its `StoreId` and start from [`StoreScoped`], so no query of store data can
//! forget the store (svix-server's `secure_find`). Rows come out as the entity models, re-exported
//! here under their own names; states are enums, never strings.
pub mod affiliates;
mod bulk;
pub mod connections;
pub mod inbox;
pub mod jobs;
pub mod ledger;
pub mod links;
mod new_rows;
pub mod oauth;
mod packed;
pub mod report_rows;
pub mod runs;
pub mod sessions;
pub mod stores;
pub mod sums;

pub use bulk::CHUNK_ROWS;
pub use entity::states::{
    ConnectionStatus, HoldState, JobStatus, OrderStatus, PushState, RunStatus, SalesBasis,
    StoreStatus,
};
pub use sea_orm::{DatabaseConnection, DbErr};

use sea_orm::{
    ColumnTrait, ConnectionTrait, DeleteMany, EntityTrait, QueryFilter, Select, UpdateMany,
};

use crate::domain::ids::StoreId;

/// Rows per multi-row INSERT: far below SQLite's and PostgreSQL's limits on bound values.
pub const BATCH: usize = 500;

/// The row `select` finds by a unique key (a primary key or a unique column), if any. Read
/// without the `LIMIT ?` of sea-orm's `one`: SQLite plans with a bound LIMIT's value
/// (`sqlite3ExprIsInteger`), so it prepares such a statement again at every use (a `perf probe`
/// counted 4,027 re-preparations in a `sync` that pushed 1,000 orders; 6 without). A unique key
/// needs no limit; anything else that wants the first of several rows keeps `one`.
pub(crate) async fn by_unique_key<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    select: Select<E>,
) -> Result<Option<E::Model>, DbErr> {
    Ok(select.all(conn).await?.into_iter().next())
}

/// A table whose rows belong to one store.
pub(crate) trait StoreScoped: EntityTrait {
    fn store_column() -> Self::Column;

    /// The store's rows, and only those.
    fn of_store(store: &StoreId) -> Select<Self> {
        Self::find().filter(Self::store_column().eq(store.as_str()))
    }

    fn update_of_store(store: &StoreId) -> UpdateMany<Self> {
        Self::update_many().filter(Self::store_column().eq(store.as_str()))
    }

    fn delete_of_store(store: &StoreId) -> DeleteMany<Self> {
        Self::delete_many().filter(Self::store_column().eq(store.as_str()))
    }
}

macro_rules! scoped {
    ($($table:ident),* $(,)?) => {$(
        impl StoreScoped for entity::$table::Entity {
            fn store_column() -> Self::Column {
                entity::$table::Column::StoreId
            }
        }
    )*};
}

scoped!(
    affiliates,
    amazon_connections,
    daily_figures,
    figure_changes,
    job_attempts,
    jobs,
    landing_pages,
    links,
    oauth_states,
    order_versions,
    orders,
    program_credentials,
    report_rows,
    sessions,
    sync_runs,
    unmatched_figures,
    webhook_inbox,
);

impl StoreScoped for entity::stores::Entity {
    fn store_column() -> Self::Column {
        entity::stores::Column::Id
    }
}

/// Inserts rows in batches of [`BATCH`].
pub(crate) async fn insert_all<E: EntityTrait>(
    conn: &impl sea_orm::ConnectionTrait,
    rows: Vec<E::ActiveModel>,
) -> Result<(), DbErr>
where
    E::ActiveModel: Clone,
{
    for chunk in rows.chunks(BATCH) {
        E::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Deletes the rows whose `expires_at` column is before `now`; returns how many went.
pub(crate) async fn delete_expired<C>(
    conn: &impl sea_orm::ConnectionTrait,
    expires_at: C,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait,
{
    Ok(C::EntityName::delete_many()
        .filter(expires_at.lt(now))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Locks a row until the end of the transaction on PostgreSQL (SQLite has one writer).
pub(crate) async fn lock_row(
    conn: &impl sea_orm::ConnectionTrait,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Result<(), DbErr> {
    use sea_orm::{DbBackend, Statement};
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?;
    }
    Ok(())
}
