//! End-to-end tests of the sandbox over real HTTP on 127.0.0.1:0, with a manual clock and a
//! stand-in for the app's webhook receiver.
mod ads;
mod control;
mod lwa;
mod pages;
mod program;
mod report;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, TimeZone, Utc};
use reqwest::Method;
use secrecy::SecretString;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{CLIENT_ID, CLIENT_SECRET, Sandbox, SandboxConfig, configure};
use crate::domain::clock::ManualClock;

/// The Standard Webhooks test secret (DESIGN §4.1).
pub const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
pub const SEED: u64 = 42;

/// 10:00 in Los Angeles on 20 November 2026: the marketplace's today is 2026-11-20.
pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 18, 0, 0).unwrap()
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

#[derive(Default)]
pub struct Receiver {
    pub deliveries: Mutex<Vec<Delivery>>,
    /// What the stand-in app answers (200 unless a test says otherwise).
    pub status: Mutex<u16>,
}

async fn receive(req: HttpRequest, body: web::Bytes, rx: web::Data<Receiver>) -> HttpResponse {
    let h = |n: &str| {
        let v = req.headers().get(n).and_then(|v| v.to_str().ok());
        v.unwrap_or_default().to_owned()
    };
    rx.deliveries.lock().unwrap().push(Delivery {
        id: h("webhook-id"),
        timestamp: h("webhook-timestamp"),
        signature: h("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    let status = *rx.status.lock().unwrap();
    let status =
        actix_web::http::StatusCode::from_u16(if status == 0 { 200 } else { status }).unwrap();
    HttpResponse::build(status).body(if status.is_success() {
        "ok"
    } else {
        "store refused"
    })
}

pub struct Harness {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub sandbox: Sandbox,
    pub rx: Arc<Receiver>,
}

impl Harness {
    pub async fn start() -> Self {
        Self::with_state(None).await
    }

    pub async fn with_state(state_file: Option<PathBuf>) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let clock = Arc::new(ManualClock::new(start_time()));
        let sandbox = Sandbox::new(SandboxConfig {
            public_url: base.parse().unwrap(),
            seed: SEED,
            webhook_secret: SecretString::from(SECRET),
            state_file,
            clock: clock.clone(),
        })
        .unwrap();
        let rx = Arc::new(Receiver::default());
        let (sb, rx_data) = (sandbox.clone(), web::Data::from(rx.clone()));
        let server = HttpServer::new(move || {
            let sb = sb.clone();
            App::new()
                .configure(move |c| configure(c, sb))
                .app_data(rx_data.clone())
                .route("/webhooks/platform", web::post().to(receive))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        actix_web::rt::spawn(server);
        // A browser: it keeps the sandbox's CSRF cookie.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .cookie_store(true)
            .build()
            .unwrap();
        Self {
            base,
            http,
            clock,
            sandbox,
            rx,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn callback(&self) -> String {
        self.url("/oauth/amazon/callback")
    }

    /// A plain GET of a path on this server, as a browser without credentials sends it.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        send(self.http.get(self.url(path))).await
    }

    /// The CSRF token of the control room's forms (its cookie is kept by this browser).
    pub async fn csrf(&self) -> String {
        let page = self.get("/sandbox").await.text().await.unwrap();
        csrf_of(&page).expect("the control room's forms carry a token")
    }

    /// A POST of a control-room button to a path on this server, with the page's CSRF token.
    pub async fn post(&self, path: &str) -> reqwest::Response {
        self.submit::<&str, &str>(path, &[]).await
    }

    /// A POST of a sandbox form (control room, consent page) with `fields` and the CSRF token
    /// its page carries, as the browser sends it.
    pub async fn submit<K: Serialize, V: Serialize>(
        &self,
        path: &str,
        fields: &[(K, V)],
    ) -> reqwest::Response {
        let csrf = self.csrf().await;
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (as_text(k), as_text(v)))
            .collect();
        form.push(("csrf".to_owned(), csrf));
        self.post_form(path, &form).await
    }

    /// A POST of an HTML form to a path on this server, exactly as given (no CSRF token added).
    pub async fn post_form<F: Serialize + ?Sized>(
        &self,
        path: &str,
        form: &F,
    ) -> reqwest::Response {
        send(self.http.post(self.url(path)).form(form)).await
    }

    /// A POST of a JSON body to a path on this server.
    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        send(self.http.post(self.url(path)).json(body)).await
    }

    /// Follows a tracking link: the sandbox's Amazon landing page with the link's query.
    pub async fn click(&self, query: &str) -> reqwest::Response {
        self.get(&format!("/sandbox/amazon/click?{query}")).await
    }

    /// Submits the control room's restatement form for one day (YYYY-MM-DD) and direction.
    pub async fn restate(&self, date: &str, direction: &str) -> reqwest::Response {
        let form = [("date", date), ("direction", direction)];
        self.submit("/sandbox/amazon/restate", &form).await
    }

    /// Submits the consent form as the browser does; returns where it redirects (our callback).
    pub async fn decision_location(
        &self,
        decision: &str,
        state: &str,
        challenge: Option<&str>,
    ) -> String {
        let mut form = vec![
            ("decision", decision.to_owned()),
            ("client_id", CLIENT_ID.to_owned()),
            ("redirect_uri", self.callback()),
            ("scope", "advertising::campaign_management".to_owned()),
            ("state", state.to_owned()),
        ];
        if let Some(c) = challenge {
            form.push(("code_challenge", c.to_owned()));
            form.push(("code_challenge_method", "S256".to_owned()));
        }
        let resp = self.submit("/sandbox/amazon/ap/oa/decision", &form).await;
        assert_eq!(resp.status(), 302);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with(&self.callback()), "{location}");
        location
    }

    /// Submits the consent form as the browser does; returns the redirect's query pairs.
    pub async fn decide(
        &self,
        decision: &str,
        state: &str,
        challenge: Option<&str>,
    ) -> Vec<(String, String)> {
        let location = self.decision_location(decision, state, challenge).await;
        url::Url::parse(&location)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect()
    }

    pub async fn code(&self, challenge: Option<&str>) -> String {
        let pairs = self.decide("allow", "st", challenge).await;
        pairs.into_iter().find(|(k, _)| k == "code").unwrap().1
    }

    pub async fn token_call(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let resp = self.post_form("/sandbox/amazon/auth/o2/token", form).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    pub async fn exchange(&self, code: &str, verifier: Option<&str>) -> (u16, Value) {
        let callback = self.callback();
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &callback),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token_call(&form).await
    }

    /// Trades a refresh token for a new access token, with our client id and secret in the form.
    pub async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ];
        self.token_call(&form).await
    }

    /// A fresh grant: (access token, refresh token).
    pub async fn tokens(&self) -> (String, String) {
        let code = self.code(None).await;
        let (status, body) = self.exchange(&code, None).await;
        assert_eq!(status, 200, "{body}");
        let s = |k: &str| body[k].as_str().unwrap().to_owned();
        (s("access_token"), s("refresh_token"))
    }

    pub fn profile(&self) -> String {
        self.sandbox.ids().profile_id.to_string()
    }

    pub fn advertiser(&self) -> String {
        self.sandbox.ids().advertiser_id.clone()
    }

    /// An Ads API GET with our client id, the token and (when given) the scope.
    pub async fn api(&self, path: &str, token: &str, scope: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .get(self.url(&format!("/sandbox/amazon/api{path}")))
            .bearer_auth(token)
            .header("Amazon-Advertising-API-ClientId", CLIENT_ID);
        if let Some(scope) = scope {
            req = req.header("Amazon-Advertising-API-Scope", scope);
        }
        send(req).await
    }

    /// An Ads API GET (see [`Harness::api`]) whose answer is parsed as JSON.
    pub async fn api_json<T: DeserializeOwned>(
        &self,
        path: &str,
        token: &str,
        scope: Option<&str>,
    ) -> T {
        self.api(path, token, scope).await.json().await.unwrap()
    }

    /// A raw attribution report call with our client id, the token and the seller profile scope.
    pub async fn report_request(&self, token: &str, body: &Value) -> reqwest::Response {
        let req = self
            .http
            .post(self.url("/sandbox/amazon/api/attribution/report"))
            .bearer_auth(token)
            .header("Amazon-Advertising-API-ClientId", CLIENT_ID)
            .header("Amazon-Advertising-API-Scope", self.profile())
            .json(body);
        send(req).await
    }

    pub async fn report(&self, token: &str, body: Value) -> (u16, Value) {
        let resp = self.report_request(token, &body).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// Fetches the template tag (switching measurement on), then clicks one link per ad group.
    pub async fn click_links(&self, token: &str, campaign: &str, ad_groups: &[String]) {
        let path = format!(
            "/attribution/tags/nonMacroTemplateTag?publisherIds=12&advertiserIds={}",
            self.advertiser()
        );
        let tags: Value = self.api_json(&path, token, Some(&self.profile())).await;
        let tag = tags[self.advertiser()]["12"].as_str().unwrap().to_owned();
        let links: Vec<String> = ad_groups
            .iter()
            .map(|g| {
                let filled = tag
                    .replace("{insertCampaign}", campaign)
                    .replace("{insertAdGroupId}", g)
                    .replace("{insertCreativeId}", "home");
                format!("https://www.amazon.com/{filled}")
            })
            .collect();
        let resp = self
            .post_json("/sandbox/amazon/clicks", &json!({ "links": links }))
            .await;
        assert_eq!(resp.status(), 200);
    }

    /// A program (affiliate platform) API call with a store token, and a JSON body when given.
    async fn program_call(
        &self,
        method: Method,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, url)
            .header("x-goaffpro-access-token", token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = send(req).await;
        (resp.status().as_u16(), resp.json().await.unwrap())
    }

    /// A program API GET of a full URL with a store token.
    pub async fn program_get(&self, url: &str, token: &str) -> (u16, Value) {
        self.program_call(Method::GET, url, token, None).await
    }

    /// A program API POST of a JSON body to a full URL with a store token.
    pub async fn program_post(&self, url: &str, token: &str, body: Value) -> (u16, Value) {
        self.program_call(Method::POST, url, token, Some(body))
            .await
    }

    /// A program API PATCH of a JSON body to a full URL with a store token.
    pub async fn program_patch(&self, url: &str, token: &str, body: Value) -> (u16, Value) {
        self.program_call(Method::PATCH, url, token, Some(body))
            .await
    }
}

/// Sends a request to the test server, failing the test if it cannot be delivered.
async fn send(req: reqwest::RequestBuilder) -> reqwest::Response {
    req.send().await.unwrap()
}

/// A form value as the text a browser sends.
fn as_text(value: &impl Serialize) -> String {
    match serde_json::to_value(value).unwrap() {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The CSRF token a page's forms carry, if it has a form.
pub fn csrf_of(html: &str) -> Option<String> {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// The keys of a JSON object, in the order the object holds them.
pub fn keys_of(object: &Value) -> Vec<&str> {
    object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

pub fn ad_groups(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("a{}", 1000 + i)).collect()
}
