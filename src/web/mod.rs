//! The HTTP surface: merchant pages, the load link, health probes. Handlers are thin; the work is
//! in the domain modules.
pub mod amazon;
pub mod error;
pub mod guard;
pub mod health;
pub mod load;
pub mod pages;
pub mod session;
pub mod sync;

use actix_web::{HttpResponse, web};
use askama::Template;

use crate::webhooks;
pub use error::PageError;

pub fn routes(cfg: &mut web::ServiceConfig, webhook_body_limit: usize) {
    cfg.route("/", web::get().to(pages::home))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .service(
            web::resource("/webhooks/platform")
                .app_data(web::PayloadConfig::new(webhook_body_limit))
                .route(web::post().to(webhooks::receive)),
        )
        .route("/app/load", web::get().to(load::load))
        .route("/app/amazon/connect", web::get().to(amazon::connect))
        .route("/oauth/amazon/callback", web::get().to(amazon::callback))
        .route("/app/stores/{store_id}", web::get().to(pages::setup))
        .route(
            "/app/stores/{store_id}/amazon/account",
            web::post().to(amazon::choose),
        )
        .route(
            "/app/stores/{store_id}/amazon/disconnect",
            web::post().to(amazon::disconnect),
        )
        .route(
            "/app/stores/{store_id}/landing-pages",
            web::post().to(amazon::landing_page),
        )
        .route(
            "/app/stores/{store_id}/landing-pages/{page}/delete",
            web::post().to(amazon::remove_landing_page),
        )
        .route(
            "/app/stores/{store_id}/links.csv",
            web::get().to(amazon::links_csv),
        )
        .route(
            "/app/stores/{store_id}/sync",
            web::post().to(sync::sync_now),
        )
        .route(
            "/app/stores/{store_id}/sales-basis",
            web::post().to(sync::sales_basis),
        )
        .route(
            "/app/stores/{store_id}/dead-letters/retry",
            web::post().to(sync::retry_dead_letters),
        )
        .route(
            "/app/stores/{store_id}/sandbox/shoppers",
            web::post().to(sync::sandbox_shoppers),
        );
}

/// Renders a template as an HTML response.
pub fn html(page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// Back to the store's setup page (after a form).
pub fn to_setup(store: &crate::domain::ids::StoreId) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/app/stores/{store}"),
        ))
        .finish()
}
