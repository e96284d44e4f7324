//! The HTTP surface: merchant pages, the load link, health probes. Handlers are thin; the work is
//! in the domain modules.
pub mod activity;
pub mod affiliates;
pub mod amazon;
pub mod charts;
pub mod error;
pub mod figures;
pub mod guard;
pub mod health;
pub mod ledger;
pub mod load;
pub mod nav;
pub mod pages;
pub mod session;
pub mod static_files;
pub mod sync;

use actix_web::{HttpResponse, http::header, middleware::DefaultHeaders, web};
use askama::Template;

use crate::webhooks;
pub use error::PageError;

/// Every route of the app. Merchant pages and actions (`/app/...`, DESIGN §4.2) and the OAuth
/// callback answer with [`merchant_headers`]; `frame_ancestors` is who may frame them
/// ([`crate::config::PlatformSettings::frame_ancestors`]).
pub fn routes(cfg: &mut web::ServiceConfig, webhook_body_limit: usize, frame_ancestors: &str) {
    cfg.route("/", web::get().to(pages::home))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/metrics", web::get().to(health::metrics))
        .route("/static/{file}", web::get().to(static_files::serve))
        .service(
            web::resource("/webhooks/platform")
                .app_data(web::PayloadConfig::new(webhook_body_limit))
                .route(web::post().to(webhooks::receive)),
        )
        .service(
            web::resource("/oauth/amazon/callback")
                .wrap(merchant_headers(frame_ancestors))
                .route(web::get().to(amazon::callback)),
        )
        .service(
            web::scope("/app")
                .wrap(merchant_headers(frame_ancestors))
                .route("/load", web::get().to(load::load))
                .route("/amazon/connect", web::get().to(amazon::connect))
                .route("/stores/{store_id}", web::get().to(pages::overview))
                .route(
                    "/stores/{store_id}/affiliates",
                    web::get().to(affiliates::affiliates),
                )
                .route(
                    "/stores/{store_id}/affiliates/{affiliate_id}",
                    web::get().to(affiliates::affiliate),
                )
                .route(
                    "/stores/{store_id}/figures",
                    web::get().to(figures::figures),
                )
                .route(
                    "/stores/{store_id}/figures.csv",
                    web::get().to(figures::figures_csv),
                )
                .route(
                    "/stores/{store_id}/settings",
                    web::get().to(pages::settings),
                )
                .route("/stores/{store_id}/ledger", web::get().to(ledger::ledger))
                .route(
                    "/stores/{store_id}/ledger/{number}",
                    web::get().to(ledger::order),
                )
                .route(
                    "/stores/{store_id}/activity",
                    web::get().to(activity::activity),
                )
                .route(
                    "/stores/{store_id}/amazon/account",
                    web::post().to(amazon::choose),
                )
                .route(
                    "/stores/{store_id}/amazon/disconnect",
                    web::post().to(amazon::disconnect),
                )
                .route(
                    "/stores/{store_id}/landing-pages",
                    web::post().to(amazon::landing_page),
                )
                .route(
                    "/stores/{store_id}/landing-pages/{page}/delete",
                    web::post().to(amazon::remove_landing_page),
                )
                .route(
                    "/stores/{store_id}/links.csv",
                    web::get().to(amazon::links_csv),
                )
                .route("/stores/{store_id}/sync", web::post().to(sync::sync_now))
                .route(
                    "/stores/{store_id}/sales-basis",
                    web::post().to(sync::sales_basis),
                )
                .route(
                    "/stores/{store_id}/dead-letters/retry",
                    web::post().to(sync::retry_dead_letters),
                )
                .route(
                    "/stores/{store_id}/held/apply",
                    web::post().to(sync::apply_held),
                )
                .route(
                    "/stores/{store_id}/held/discard",
                    web::post().to(sync::discard_held),
                )
                .route(
                    "/stores/{store_id}/sandbox/shoppers",
                    web::post().to(sync::sandbox_shoppers),
                ),
        );
}

/// The headers of every merchant page, redirect and download (DESIGN §7): never cached, never
/// sniffed, no referrer beyond this site (load links and OAuth codes travel in query strings), no
/// script but the app's own (`/static/app.js`: the Copy buttons), and framed only by `frame_ancestors` (the platform's admin origin, or `'none'`).
/// A handler's own header of the same name wins.
pub fn merchant_headers(frame_ancestors: &str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CACHE_CONTROL, "no-store"))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((
            header::CONTENT_SECURITY_POLICY,
            format!(
                "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                 img-src 'self' data:; object-src 'none'; base-uri 'none'; \
                 frame-ancestors {frame_ancestors}"
            ),
        ))
}

/// Renders a template as an HTML response.
pub fn html(page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page.render().map_err(anyhow::Error::from)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// Back to the store's Overview page (after a form).
pub fn to_setup(store: &crate::domain::ids::StoreId) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/app/stores/{store}"),
        ))
        .finish()
}
