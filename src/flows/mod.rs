//! The use cases: connect Amazon, mint links, read the roster, install and uninstall, sync a store,
//! push its orders, schedule the daily work. They call `store` and `clients` with the
//! dependencies in [`Deps`], handed to them explicitly by the web handlers and the job worker.
pub mod connect;
pub mod dashboard;
pub mod errors;
pub mod handlers;
pub mod lifecycle;
pub mod links;
pub mod push;
pub mod roster;
pub mod scheduler;
pub mod status;
pub mod sync;
pub mod tasks;
pub mod tokens;
pub mod views;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    clients::{amazon::AmazonApp, program::ProgramApp},
    config::Settings,
    crypto::TokenCipher,
    domain::clock::SharedClock,
    metrics::Metrics,
};

/// What the use cases need: the database, the clock, the token cipher, the two clients, the
/// settings and the metrics they count into. Cheap to clone.
#[derive(Clone)]
pub struct Deps {
    pub db: DatabaseConnection,
    pub clock: SharedClock,
    pub cipher: Arc<TokenCipher>,
    pub amazon: Arc<AmazonApp>,
    pub program: Arc<ProgramApp>,
    /// One token refresh per store at a time, in this process.
    pub token_locks: Arc<tokens::TokenLocks>,
    pub settings: Arc<Settings>,
    /// What the sync and push flows count for `/metrics` (rows read, orders).
    pub metrics: Arc<Metrics>,
    /// Work that must not be cut short even when its caller is (a token refresh between
    /// Amazon's answer and saving it): a stop waits for it (`Application::run_until_stopped`).
    pub unstoppable: tokio_util::task::TaskTracker,
}
