//! The merchant's Amazon actions: connect, the OAuth callback, account choice, disconnect,
//! landing pages and the links export. Every action is for the session's store only.
use actix_session::Session;
use actix_web::{HttpResponse, http::header, web};
use sea_orm::TransactionTrait;
use serde::Deserialize;

use crate::{
    clients::amazon::Region,
    domain::{ids::StoreId, links::parse_landing_page},
    flows::{
        connect::{self, CallbackQuery, ConnectError, Outcome},
        links,
    },
    state::AppState,
    store::{self, connections, stores},
    web::{
        PageError,
        guard::{CsrfForm, StoreForm, StorePage, WithCsrf},
        session::{self, back_to_settings, back_to_setup, check_csrf},
    },
};

async fn active_store(app: &AppState, session: &Session) -> Result<StoreId, PageError> {
    let store = session::session_store(session).ok_or(PageError::NoSession)?;
    if !stores::is_active(&app.deps.db, &store).await? {
        return Err(PageError::NotFound);
    }
    Ok(store)
}

#[derive(Deserialize)]
pub struct ConnectQuery {
    region: Option<String>,
    /// Without it, another site could bind a merchant's Amazon grant to a store of its own.
    #[serde(default)]
    csrf: String,
}

/// `GET /app/amazon/connect?region=NA|EU|FE`: off to Amazon's consent page.
pub async fn connect(
    query: web::Query<ConnectQuery>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store = active_store(&state, &session).await?;
    check_csrf(&session, &query.csrf)?;
    let region: Region = query
        .region
        .as_deref()
        .unwrap_or("NA")
        .parse()
        .map_err(PageError::BadRequest)?;
    if !state.deps.amazon.is_configured() {
        return Ok(back_to_setup(
            &session,
            &store,
            "Amazon sign-in is not configured on this server (amazon.client_id). Please contact the operator.",
        ));
    }
    let consent = connect::start(&state.deps, &store, region)
        .await
        .map_err(|e| match e {
            ConnectError::Db(e) => PageError::Database(e),
            other => PageError::Unexpected(other.into()),
        })?;
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, consent.to_string()))
        .finish())
}

/// `GET /oauth/amazon/callback`: Amazon's redirect back. Every outcome lands on the Overview page with
/// a message; nothing here is a 500.
pub async fn callback(
    query: web::Query<CallbackQuery>,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let store = active_store(&state, &session).await?;
    let message = match connect::callback(&state.deps, &store, &query).await {
        Ok(Outcome::Connected) => "Amazon is connected. Every affiliate now has a link.".to_owned(),
        Ok(Outcome::MustChoose) => {
            "Amazon is connected. Choose the account to use below.".to_owned()
        }
        Ok(Outcome::NotEligible) => {
            "Amazon is connected, but no account can use Amazon Attribution; see below.".to_owned()
        }
        Err(e) => {
            tracing::warn!(store_id = %store, error = %e, "Amazon connection failed");
            e.message()
        }
    };
    Ok(back_to_setup(&session, &store, message))
}

#[derive(Deserialize)]
pub struct ChoiceForm {
    csrf: String,
    choice: String,
}

impl WithCsrf for ChoiceForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn choose(
    StoreForm {
        store,
        session,
        form,
    }: StoreForm<ChoiceForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (profile, advertiser) = form
        .choice
        .split_once(':')
        .and_then(|(p, a)| Some((p.parse::<i64>().ok()?, a)))
        .ok_or_else(|| PageError::BadRequest("choose one of the listed accounts".into()))?;
    let message = match connect::choose(&state.deps, &store, profile, advertiser).await {
        Ok(()) => "Account chosen. Every affiliate now has a link.".to_owned(),
        Err(e) => {
            tracing::warn!(store_id = %store, error = %e, "account choice failed");
            e.message()
        }
    };
    Ok(back_to_settings(&session, &store, message))
}

pub async fn disconnect(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    connect::disconnect(&state.deps, &store).await?;
    Ok(back_to_settings(
        &session,
        &store,
        "Amazon is disconnected and its tokens are deleted. Links stay as they are.",
    ))
}

#[derive(Deserialize)]
pub struct LandingForm {
    csrf: String,
    url: String,
    /// `main` replaces the main landing page; anything else adds a page.
    kind: String,
}

impl WithCsrf for LandingForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub async fn landing_page(
    StoreForm {
        store,
        session,
        form,
    }: StoreForm<LandingForm>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let conn = connections::find(&state.deps.db, &store).await?;
    let country = conn
        .and_then(|c| c.country_code)
        .unwrap_or_else(|| "US".into());
    let main = form.kind == "main";
    let message = match parse_landing_page(&form.url, &country) {
        Ok((id, url, asin)) if main || asin.is_some() => {
            let now = state.deps.clock.now();
            let txn = state.deps.db.begin().await?;
            links::set_landing_page(&txn, &store, (&id, &url, asin), main, now).await?;
            txn.commit().await?;
            format!("Landing page {url} saved; links updated.")
        }
        Ok(_) => "Additional landing pages must be product pages (/dp/ASIN).".to_owned(),
        Err(e) => e.to_string(),
    };
    Ok(back_to_settings(&session, &store, message))
}

pub async fn remove_landing_page(
    StoreForm { store, session, .. }: StoreForm<CsrfForm>,
    page: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let (_, page) = page.into_inner();
    let now = state.deps.clock.now();
    let txn = state.deps.db.begin().await?;
    links::remove_landing_page(&txn, &store, &page, now).await?;
    txn.commit().await?;
    Ok(back_to_settings(
        &session,
        &store,
        "Landing page removed; its links are retired.",
    ))
}

/// `GET /app/stores/{id}/links.csv`
pub async fn links_csv(
    StorePage { store, .. }: StorePage,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    let rows = store::links::current(&state.deps.db, &store).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"amazon-links-{store}.csv\""),
        ))
        .body(links::to_csv(&rows)))
}
