//! Merchant pages. Every `/app/stores/{id}` page answers only to the session of that store.
use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::{PageError, html, session};
use crate::{affiliates, ids::StoreId, state::AppState, stores};

#[derive(Template)]
#[template(path = "home.html")]
struct Home {
    sandbox: bool,
}

pub async fn home(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    html(&Home {
        sandbox: state.settings.sandbox.enabled,
    })
}

/// The store of the session, provided it is the one asked for; anything else is a 404.
pub fn authorize(session: &Session, requested: &str) -> Result<StoreId, PageError> {
    let current = session::session_store(session).ok_or(PageError::NoSession)?;
    if current.as_str() != requested {
        return Err(PageError::NotFound);
    }
    Ok(current)
}

struct AffiliateRow {
    id: i64,
    name: String,
    ref_code: String,
    status: String,
}

#[derive(Template)]
#[template(path = "setup.html")]
struct Setup {
    sandbox: bool,
    store: stores::StoreSummary,
    affiliates: Vec<AffiliateRow>,
}

pub async fn setup(
    path: web::Path<String>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store_id = authorize(&session, &path)?;
    let store = stores::find(&state.db, &store_id)
        .await?
        .filter(|s| s.status == stores::ACTIVE)
        .ok_or(PageError::NotFound)?;
    let store = stores::summary(&state.db, store).await?;
    let affiliates = affiliates::list_current(&state.db, &store_id)
        .await?
        .into_iter()
        .map(|a| AffiliateRow {
            id: a.affiliate_id,
            name: a.name,
            ref_code: a.ref_code.unwrap_or_default(),
            status: a.status,
        })
        .collect();
    html(&Setup {
        sandbox: state.settings.sandbox.enabled,
        store,
        affiliates,
    })
}
