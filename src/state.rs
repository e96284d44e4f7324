//! What every handler and worker shares.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    clients::amazon::AmazonApp, config::Settings, crypto::TokenCipher, domain::clock::SharedClock,
    flows::tokens::TokenLocks, webhooks::verify::Verifier,
};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub clock: SharedClock,
    pub cipher: Arc<TokenCipher>,
    pub verifier: Arc<Verifier>,
    pub amazon: Arc<AmazonApp>,
    pub token_locks: Arc<TokenLocks>,
    /// The built-in fake Amazon and program, when `[sandbox] enabled`.
    pub sandbox: Option<crate::sandbox::Sandbox>,
    pub metrics: Arc<crate::metrics::Metrics>,
}
