//! Merchant sessions: actix-session's middleware with its state kept in the `sessions` table.
//! Rows are keyed by the SHA-256 of the cookie's key, and carry the store id so that uninstall
//! and redaction can end a store's sessions.
use std::collections::HashMap;

use actix_session::{
    Session,
    storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError, generate_session_key},
};
use actix_web::cookie::time::Duration as CookieDuration;
use chrono::{DateTime, Duration, Utc};
use sea_orm::DatabaseConnection;
use sha2::{Digest, Sha256};

use crate::{
    domain::{clock::SharedClock, ids::StoreId},
    store::sessions::{self, SessionRow},
};

pub const STORE_KEY: &str = "store_id";
pub const CSRF_KEY: &str = "csrf";
pub const FLASH_KEY: &str = "flash";

#[derive(Clone)]
pub struct DbSessionStore {
    db: DatabaseConnection,
    clock: SharedClock,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection, clock: SharedClock) -> Self {
        Self { db, clock }
    }

    fn expiry(&self, ttl: &CookieDuration) -> DateTime<Utc> {
        self.clock.now() + Duration::seconds(ttl.whole_seconds())
    }

    /// The row that keeps `state` under `key` for `ttl`; fails only when `state` cannot be
    /// serialized.
    fn row(
        &self,
        key: &SessionKey,
        state: &HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> serde_json::Result<SessionRow> {
        Ok(SessionRow {
            id: row_id(key),
            store: store_of(state),
            state: serde_json::to_string(state)?,
            expires_at: self.expiry(ttl),
        })
    }
}

fn row_id(key: &SessionKey) -> String {
    hex::encode(Sha256::digest(key.as_ref().as_bytes()))
}

/// actix-session keeps values JSON-encoded; the store id is a JSON string.
fn store_of(state: &HashMap<String, String>) -> Option<String> {
    state
        .get(STORE_KEY)
        .and_then(|v| serde_json::from_str::<String>(v).ok())
}

impl SessionStore for DbSessionStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<HashMap<String, String>>, LoadError> {
        let state = sessions::load(&self.db, &row_id(key), self.clock.now())
            .await
            .map_err(|e| LoadError::Other(e.into()))?;
        state
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|e| LoadError::Deserialization(e.into()))
    }

    async fn save(
        &self,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let key = generate_session_key();
        let row = self
            .row(&key, &state, ttl)
            .map_err(|e| SaveError::Serialization(e.into()))?;
        sessions::insert(&self.db, row)
            .await
            .map_err(|e| SaveError::Other(e.into()))?;
        Ok(key)
    }

    async fn update(
        &self,
        key: SessionKey,
        state: HashMap<String, String>,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let row = self
            .row(&key, &state, ttl)
            .map_err(|e| UpdateError::Serialization(e.into()))?;
        let updated = sessions::update(&self.db, row)
            .await
            .map_err(|e| UpdateError::Other(e.into()))?;
        if !updated {
            // Expired or ended meanwhile (an uninstall ends a store's sessions): never revive it
            // with its store; an empty session takes its place.
            return self.save(HashMap::new(), ttl).await.map_err(|e| match e {
                SaveError::Serialization(e) => UpdateError::Serialization(e),
                SaveError::Other(e) => UpdateError::Other(e),
            });
        }
        Ok(key)
    }

    async fn update_ttl(
        &self,
        key: &SessionKey,
        ttl: &CookieDuration,
    ) -> Result<(), anyhow::Error> {
        sessions::extend(&self.db, &row_id(key), self.expiry(ttl)).await?;
        Ok(())
    }

    async fn delete(&self, key: &SessionKey) -> Result<(), anyhow::Error> {
        sessions::delete(&self.db, &row_id(key)).await?;
        Ok(())
    }
}

/// The store this browser session was opened for, if any.
pub fn session_store(session: &Session) -> Option<StoreId> {
    session
        .get::<String>(STORE_KEY)
        .ok()
        .flatten()
        .and_then(|s| StoreId::parse(&s).ok())
}

/// The session's CSRF token, for forms.
pub fn csrf_token(session: &Session) -> String {
    session
        .get::<String>(CSRF_KEY)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Refuses a form whose token is not this session's (constant-time comparison).
pub fn check_csrf(session: &Session, sent: &str) -> Result<(), super::PageError> {
    use subtle::ConstantTimeEq;
    let expected = csrf_token(session);
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) {
        return Err(super::PageError::Csrf);
    }
    Ok(())
}

/// A message for the next page the merchant sees.
pub fn flash(session: &Session, message: impl Into<String>) {
    let _ = session.insert(FLASH_KEY, message.into());
}

/// Back to the store's Overview page, with `message` for the merchant to read there.
pub fn back_to_setup(
    session: &Session,
    store: &StoreId,
    message: impl Into<String>,
) -> actix_web::HttpResponse {
    flash(session, message);
    super::to_setup(store)
}

/// Back to the store's Settings page with `message` shown there once.
pub fn back_to_settings(
    session: &Session,
    store: &StoreId,
    message: impl Into<String>,
) -> actix_web::HttpResponse {
    flash(session, message);
    actix_web::HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/app/stores/{store}/settings"),
        ))
        .finish()
}

pub fn take_flash(session: &Session) -> Option<String> {
    let message = session.get::<String>(FLASH_KEY).ok().flatten();
    if message.is_some() {
        session.remove(FLASH_KEY);
    }
    message
}
