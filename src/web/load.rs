//! `GET /app/load`: the platform's signed entry into a store's pages (DESIGN §4.2).
use actix_session::Session;
use actix_web::{HttpResponse, http::header, web};
use rand::{Rng, distr::Alphanumeric};
use serde::Deserialize;

use crate::{
    domain::ids::StoreId,
    state::AppState,
    store::stores,
    web::{PageError, session},
};

#[derive(Deserialize)]
pub struct LoadQuery {
    store_id: String,
    timestamp: String,
    signature: String,
}

pub async fn load(
    query: web::Query<LoadQuery>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let now = state.deps.clock.now().timestamp();
    state
        .verifier
        .verify_load_link(&query.store_id, &query.timestamp, &query.signature, now)
        .map_err(|e| {
            tracing::warn!(error = %e, "load link refused");
            PageError::BadLink
        })?;
    let store_id = StoreId::parse(&query.store_id).map_err(|_| PageError::NotFound)?;
    if !stores::is_active(&state.deps.db, &store_id).await? {
        return Err(PageError::NotFound);
    }
    // A new session key on every entry: no fixation, and one browser serves one store at a time.
    session.renew();
    session.clear();
    let csrf: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    session
        .insert(session::STORE_KEY, store_id.as_str())
        .and_then(|()| session.insert(session::CSRF_KEY, csrf))
        .map_err(|e| anyhow::anyhow!("session insert: {e}"))?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/app/stores/{store_id}")))
        .finish())
}
