//! The built-in sandbox (DESIGN §6): a local Login with Amazon, Amazon Ads Attribution API and
//! GoAffPro-compatible program admin API, served by the app's own server.
//!
//! It is written from the public contracts (`shared/reference/*.md`), never against the app's
//! clients, so that a misunderstanding in one is not mirrored in the other. Nothing here imports
//! anything of the app but the clock.
mod ads;
mod app_page;
mod control;
mod csrf;
mod figures;
mod form;
mod hooks;
mod lwa;
mod orders_page;
mod program;
mod report;
mod world;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, web};
use askama::Template;
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sha2::Sha256;
use url::Url;

use crate::domain::clock::SharedClock;
pub use csrf::FormToken;
use world::{Ids, State};

pub const CLIENT_ID: &str = "amzn1.application-oa2-client.sandbox";
pub const CLIENT_SECRET: &str = "sandbox-client-secret";

pub struct SandboxConfig {
    /// Where this server is reached, e.g. `http://127.0.0.1:8080`.
    pub public_url: Url,
    /// Same seed, same demo data.
    pub seed: u64,
    /// `whsec_<base64>`: the sandbox plays the platform and signs webhooks and load links with it.
    pub webhook_secret: SecretString,
    /// Where the state persists as JSON; `None` keeps it in memory (tests).
    pub state_file: Option<PathBuf>,
    pub clock: SharedClock,
}

#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    public_url: Url,
    seed: u64,
    webhook_key: SecretSlice<u8>,
    state_file: Option<PathBuf>,
    clock: SharedClock,
    ids: Ids,
    state: Mutex<State>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("public_url", &self.inner.public_url.as_str())
            .field("state_file", &self.inner.state_file)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Loads `state_file` when it exists.
    pub fn new(cfg: SandboxConfig) -> std::io::Result<Self> {
        let invalid = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, m.to_owned());
        let raw = cfg.webhook_secret.expose_secret().trim();
        let key = B64
            .decode(raw.strip_prefix("whsec_").unwrap_or(raw))
            .map_err(|_| invalid("the sandbox webhook secret must be whsec_ followed by base64"))?;
        if key.is_empty() {
            return Err(invalid("the sandbox webhook secret is empty"));
        }
        let state = match &cfg.state_file {
            Some(path) => world::load(path)?,
            None => State::default(),
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            inner: Arc::new(Inner {
                public_url: cfg.public_url,
                seed: cfg.seed,
                webhook_key: SecretSlice::from(key),
                state_file: cfg.state_file,
                clock: cfg.clock,
                ids: Ids::new(cfg.seed),
                state: Mutex::new(state),
                http,
            }),
        })
    }

    /// `{public_url}/sandbox/amazon/ap/oa`
    pub fn authorize_url(&self) -> Url {
        self.url("/sandbox/amazon/ap/oa")
    }

    /// `{public_url}/sandbox/amazon/auth/o2/token`
    pub fn token_url(&self) -> Url {
        self.url("/sandbox/amazon/auth/o2/token")
    }

    /// `{public_url}/sandbox/amazon/api`: the Ads API host; callers append `/v2/profiles` etc.
    pub fn api_url(&self) -> Url {
        self.url("/sandbox/amazon/api")
    }

    /// `{public_url}/sandbox/program/v1`: callers append `/admin/affiliates` etc.
    pub fn program_api_url(&self) -> Url {
        self.url("/sandbox/program/v1")
    }

    /// `{public_url}/sandbox/program/orders?store={store_id}`: the orders the program received
    /// from the app for that store, newest day first, with every update (`&page=N` for more).
    pub fn program_orders_url(&self, store_id: &str) -> Url {
        let mut url = self.url("/sandbox/program/orders");
        url.query_pairs_mut().append_pair("store", store_id);
        url
    }

    /// `public_url` + an absolute path, whether or not `public_url` ends in `/` or has a prefix.
    fn url(&self, path: &str) -> Url {
        let base = self.inner.public_url.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).expect("public_url plus a path is a URL")
    }

    fn now(&self) -> DateTime<Utc> {
        self.inner.clock.now()
    }

    /// Today in the marketplace's time zone (America/Los_Angeles).
    fn today(&self) -> NaiveDate {
        world::la_date(self.now())
    }

    fn seed(&self) -> u64 {
        self.inner.seed
    }

    fn ids(&self) -> &Ids {
        &self.inner.ids
    }

    fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.lock())
    }

    /// Changes the state and persists it before anyone else sees it.
    fn update<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.lock();
        let out = f(&mut state);
        state.prune(self.now());
        if let Some(path) = &self.inner.state_file
            && let Err(e) = world::save(path, &state)
        {
            // The demo goes on in memory; the operator sees why a restart would lose it.
            tracing::error!(error = %e, path = %path.display(), "sandbox: could not save state");
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `v1,` + base64(HMAC-SHA256(key, parts joined by `.`)): Standard Webhooks and load links.
    fn sign(&self, parts: &[&[u8]]) -> String {
        sign_with(self.inner.webhook_key.expose_secret(), parts)
    }
}

fn sign_with(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b".");
        }
        mac.update(part);
    }
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

/// Registers every sandbox route, all under `/sandbox`, with the `Sandbox` as scoped data.
pub fn configure(cfg: &mut web::ServiceConfig, sandbox: Sandbox) {
    cfg.service(
        web::scope("/sandbox")
            .app_data(web::Data::new(sandbox))
            .app_data(web::PayloadConfig::new(1 << 20))
            .app_data(
                web::FormConfig::default()
                    .limit(64 << 10)
                    .error_handler(|err, _| {
                        // A person sent the form: answer with a page, not actix's plain text.
                        let page =
                            error_page(StatusCode::BAD_REQUEST, "Invalid form", &err.to_string());
                        actix_web::error::InternalError::from_response(err, page).into()
                    }),
            )
            .configure(control::routes)
            .configure(lwa::routes)
            .configure(amazon_api_routes)
            .configure(hooks::routes)
            .configure(program::routes)
            .route("/app", web::get().to(app_page::app_page))
            .route("/program/orders", web::get().to(orders_page::orders_page)),
    );
}

/// The Ads API: the account calls (`ads`) and the report (`report`), under one scope.
fn amazon_api_routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/amazon/api")
            .route("/v2/profiles", web::get().to(ads::profiles))
            .route("/attribution/advertisers", web::get().to(ads::advertisers))
            .route("/attribution/publishers", web::get().to(ads::publishers))
            .route(
                "/attribution/tags/nonMacroTemplateTag",
                web::get().to(ads::non_macro_tags),
            )
            .route("/attribution/tags/macroTag", web::get().to(ads::macro_tags))
            .route("/attribution/report", web::post().to(report::report))
            .default_service(web::to(ads::not_found)),
    );
}

/// Reads the sandbox's webhook secret from `path`, creating a random one (0600) on first use, so
/// that a first run needs no configuration.
pub fn webhook_secret(path: &Path) -> std::io::Result<SecretString> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(SecretString::from(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = [0u8; 24];
            rand::rng().fill_bytes(&mut key);
            let secret = format!("whsec_{}", B64.encode(key));
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            crate::crypto::write_private(path, secret.as_bytes())?;
            Ok(SecretString::from(secret))
        }
        Err(e) => Err(e),
    }
}

/// Random token text from an alphabet of letters and digits.
fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "sandbox: template failed");
            HttpResponse::InternalServerError().body("sandbox: template failed")
        }
    }
}

#[derive(Template)]
#[template(path = "sandbox/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(status, &ErrorPage { title, message })
}

/// A JSON error answer, small enough to travel in a `Result` and to use with `?`.
#[derive(Debug)]
struct JsonError {
    status: StatusCode,
    body: serde_json::Value,
}

impl JsonError {
    fn new(status: StatusCode, body: serde_json::Value) -> Self {
        Self { status, body }
    }
}

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.body)
    }
}

impl actix_web::ResponseError for JsonError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(&self.body)
    }
}

/// 303: after a form POST the browser follows with a GET.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
