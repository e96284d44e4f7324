//! The merchant's requests, authorized before a handler runs (DESIGN §4.2): a page answers only
//! to the session of its `{store_id}`, and a form must also carry that session's CSRF token.
//! Anything else is refused (401 without a session, 404 for another store, 403 without the
//! token) and never reaches the handler.
use std::{future::Future, pin::Pin};

use actix_session::{Session, SessionExt};
use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use serde::de::DeserializeOwned;

use crate::{
    domain::ids::StoreId,
    web::{PageError, session},
};

/// The store of the session, provided it is the one asked for; anything else is a 404.
pub fn authorize(session: &Session, requested: &str) -> Result<StoreId, PageError> {
    let current = session::session_store(session).ok_or(PageError::NoSession)?;
    if current.as_str() != requested {
        return Err(PageError::NotFound);
    }
    Ok(current)
}

fn requested(req: &HttpRequest) -> String {
    req.match_info()
        .get("store_id")
        .unwrap_or_default()
        .to_owned()
}

/// The session's store, provided the app is still installed there; a 404 otherwise.
pub async fn installed(
    db: &sea_orm::DatabaseConnection,
    store: &StoreId,
) -> Result<crate::store::stores::Store, PageError> {
    crate::store::stores::find_active(db, store)
        .await?
        .ok_or(PageError::NotFound)
}

/// A page of the session's store (`GET /app/stores/{store_id}/…`).
pub struct StorePage {
    pub store: StoreId,
    pub session: Session,
}

impl FromRequest for StorePage {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        std::future::ready(
            authorize(&session, &requested(req))
                .map(|store| Self { store, session })
                .map_err(Into::into),
        )
    }
}

/// A form that carries the CSRF token of the page it was sent from.
pub trait WithCsrf {
    fn csrf(&self) -> &str;
}

/// A form that carries nothing but its CSRF token.
#[derive(serde::Deserialize)]
pub struct CsrfForm {
    pub csrf: String,
}

impl WithCsrf for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form of the session's store (`POST /app/stores/{store_id}/…`) with its fields `T`.
pub struct StoreForm<T> {
    pub store: StoreId,
    pub session: Session,
    pub form: T,
}

impl<T: DeserializeOwned + WithCsrf + 'static> FromRequest for StoreForm<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let form = web::Form::<T>::from_request(&req, payload);
        Box::pin(async move {
            // Who asks comes first: no session is a 401 and another store a 404, whatever the
            // form says; then a form that does not parse is a 400 page, not actix's plain text.
            let session = req.get_session();
            let store = authorize(&session, &requested(&req))?;
            let form = form
                .await
                .map_err(|e| PageError::BadRequest(e.to_string()))?
                .into_inner();
            session::check_csrf(&session, form.csrf())?;
            Ok(Self {
                store,
                session,
                form,
            })
        })
    }
}
