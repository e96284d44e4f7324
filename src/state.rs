//! What every handler and worker shares.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    amazon::{AmazonApp, tokens::TokenLocks},
    clock::SharedClock,
    config::Settings,
    crypto::TokenCipher,
    webhooks::verify::Verifier,
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
