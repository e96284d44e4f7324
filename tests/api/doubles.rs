//! HTTP doubles of Amazon (Login with Amazon + Ads API) and of the affiliate program, written from
//! the public contracts (reference §1–4, DESIGN §4.4), serving real sockets through wiremock.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

pub const CLIENT_ID: &str = "amzn1.application-oa2-client.test";
pub const CLIENT_SECRET: &str = "test-client-secret";

#[derive(Default)]
pub struct LwaState {
    /// code → PKCE challenge; removed when used.
    pub codes: HashMap<String, String>,
    pub refresh_tokens: Vec<String>,
    pub revoked: bool,
    pub valid_access: Vec<String>,
    pub refreshes: usize,
    pub issued: usize,
    /// The next token answer, instead of the normal one.
    pub next_error: Option<(u16, Value)>,
    /// Every token answer takes this long (a slow Amazon).
    pub delay_ms: u64,
    /// The grant (refresh token) each access token was issued for.
    pub grant_of_access: HashMap<String, String>,
}

fn form(req: &Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

fn lwa_error(status: u16, error: &str, description: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": error, "error_description": description}))
}

#[derive(Clone, Default)]
pub struct Lwa(pub Arc<Mutex<LwaState>>);

/// A request header's value, if it is there and is text.
fn header(req: &Request, name: &str) -> Option<String> {
    req.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Whether the request carries the program's access token `token`.
fn has_program_token(req: &Request, token: &str) -> bool {
    header(req, "x-goaffpro-access-token").as_deref() == Some(token)
}

/// The program's answer to a request without its access token.
fn unauthorized() -> ResponseTemplate {
    ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"}))
}

/// The order's fields with every update applied in turn.
fn patched(mut order: Value, patches: &[Value]) -> Value {
    for p in patches {
        for (k, val) in p.as_object().unwrap() {
            order[k] = val.clone();
        }
    }
    order
}

impl Respond for Lwa {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let delay = self.0.lock().unwrap().delay_ms;
        self.answer(req)
            .set_delay(std::time::Duration::from_millis(delay))
    }
}

impl Lwa {
    /// Whether the request's bearer token is an access token this LwA issued and still accepts.
    pub fn is_live(&self, req: &Request) -> bool {
        let bearer = header(req, "authorization").unwrap_or_default();
        self.0
            .lock()
            .unwrap()
            .valid_access
            .iter()
            .any(|t| bearer == format!("Bearer {t}"))
    }

    fn answer(&self, req: &Request) -> ResponseTemplate {
        let mut s = self.0.lock().unwrap();

        if let Some((status, body)) = s.next_error.take() {
            return ResponseTemplate::new(status).set_body_json(body);
        }
        let f = form(req);
        if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return lwa_error(401, "invalid_client", "Client authentication failed");
        }
        let issue = |s: &mut LwaState| {
            s.issued += 1;
            let access = format!("Atza|access-{}", s.issued);
            s.valid_access.push(access.clone());
            access
        };
        match f.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let (Some(code), Some(verifier)) = (f.get("code"), f.get("code_verifier")) else {
                    return lwa_error(
                        400,
                        "invalid_request",
                        "The request is missing a required parameter : code",
                    );
                };
                let Some(challenge) = s.codes.remove(code) else {
                    return lwa_error(
                        400,
                        "invalid_grant",
                        "The request has an invalid grant parameter : code",
                    );
                };
                if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                    return lwa_error(
                        400,
                        "invalid_grant",
                        "The request has an invalid grant parameter : code",
                    );
                }
                let refresh = format!("Atzr|refresh-{}", s.refresh_tokens.len() + 1);
                s.refresh_tokens.push(refresh.clone());
                let access = issue(&mut s);
                s.grant_of_access.insert(access.clone(), refresh.clone());
                ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": access, "token_type": "bearer", "expires_in": 3600, "refresh_token": refresh}))
            }
            Some("refresh_token") => {
                let token = f.get("refresh_token").cloned().unwrap_or_default();
                if s.revoked || !s.refresh_tokens.contains(&token) {
                    return lwa_error(
                        400,
                        "invalid_grant",
                        "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission.",
                    );
                }
                s.refreshes += 1;
                let access = issue(&mut s);
                s.grant_of_access.insert(access.clone(), token.clone());
                // `expires_in` as a string, as some LwA answers have it.
                ResponseTemplate::new(200).set_body_json(json!({
                    "access_token": access, "token_type": "bearer", "expires_in": "3600", "refresh_token": token}))
            }
            Some(_) => lwa_error(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server",
            ),
            None => lwa_error(
                400,
                "invalid_request",
                "The request is missing a required parameter : grant_type",
            ),
        }
    }
}

/// The Ads API: profiles, advertisers per profile, the template tag. Requires a live access token.
#[derive(Clone)]
pub struct Ads {
    pub lwa: Lwa,
    pub profiles: Arc<Mutex<Value>>,
    /// profile id → advertisers body, or (status, body) for an error.
    pub advertisers: Arc<Mutex<HashMap<String, (u16, Value)>>>,
    pub tag_wrapped: bool,
}

pub const TEMPLATE: &str = "?maas=maas_adg_api_{adv}_static_12_73&ref_=aa_maas&tag=maas&aa_campaignid={insertCampaign}&aa_adgroupid={insertAdGroupId}&aa_creativeid={insertCreativeId}";

impl Respond for Ads {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if !self.lwa.is_live(req)
            || header(req, "amazon-advertising-api-clientid").as_deref() != Some(CLIENT_ID)
        {
            return ResponseTemplate::new(401).set_body_json(
                json!({"code": "401", "details": "Authentication failed", "requestId": "R1"}),
            );
        }
        let p = req.url.path();
        if p.ends_with("/v2/profiles") {
            return ResponseTemplate::new(200).set_body_json(self.profiles.lock().unwrap().clone());
        }
        let Some(scope) = header(req, "amazon-advertising-api-scope") else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"code": "400", "details": "Scope header is missing"}));
        };
        if p.ends_with("/attribution/advertisers") {
            return match self.advertisers.lock().unwrap().get(&scope) {
                Some((status, body)) => ResponseTemplate::new(*status).set_body_json(body.clone()),
                None => ResponseTemplate::new(401).set_body_json(
                    json!({"code": "401", "details": "Not authorized to access scope"}),
                ),
            };
        }
        if p.ends_with("/attribution/tags/nonMacroTemplateTag") {
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let adv = q.get("advertiserIds").cloned().unwrap_or_default();
            let publisher = q.get("publisherIds").cloned().unwrap_or_default();
            let tag = TEMPLATE
                .replace("{adv}", &adv)
                .replace("_12_", &format!("_{publisher}_"));
            let map = json!({ adv: { publisher: tag } });
            let body = if self.tag_wrapped {
                json!({"advertiserAttributionTagMap": map})
            } else {
                map
            };
            return ResponseTemplate::new(200).set_body_json(body);
        }
        ResponseTemplate::new(404)
            .set_body_json(json!({"code": "NOT_FOUND", "details": "Could not find resource"}))
    }
}

pub fn seller_profile(id: i64, name: &str) -> Value {
    json!({"profileId": id, "countryCode": "US", "currencyCode": "USD", "dailyBudget": 9.99999999E8,
           "timezone": "America/Los_Angeles",
           "accountInfo": {"marketplaceStringId": "ATVPDKIKX0DER", "id": format!("A{id}"), "type": "seller", "name": name, "validPaymentMethod": true}})
}

pub fn legacy_profile(id: i64) -> Value {
    json!({"profileId": id, "countryCode": "US", "currencyCode": "USD", "timezone": "America/Los_Angeles",
           "accountInfo": {"marketplaceStringId": "ATVPDKIKX0DER", "id": "ENTITY1", "type": "vendor", "name": "Old", "subType": "AMAZON_ATTRIBUTION"}})
}

pub struct AmazonDouble {
    pub server: MockServer,
    pub lwa: Lwa,
    pub ads: Ads,
}

impl AmazonDouble {
    /// One seller profile (111) with one advertiser, plus a legacy profile to be dropped.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let lwa = Lwa::default();
        let ads = Ads {
            lwa: lwa.clone(),
            profiles: Arc::new(Mutex::new(json!([
                seller_profile(111, "Acme Seller"),
                legacy_profile(999)
            ]))),
            advertisers: Arc::new(Mutex::new(HashMap::from([(
                "111".to_owned(),
                (
                    200,
                    json!({"advertisers": [{"advertiserId": "1964981050701", "advertiserName": "Acme Brand"}]}),
                ),
            )]))),
            tag_wrapped: false,
        };
        Mock::given(method("POST"))
            .and(path("/auth/o2/token"))
            .respond_with(lwa.clone())
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ads.clone())
            .mount(&server)
            .await;
        Self { server, lwa, ads }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        let uri = self.server.uri();
        vec![
            ("APP__AMAZON__CLIENT_ID".into(), CLIENT_ID.into()),
            ("APP__AMAZON__CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            ("APP__AMAZON__AUTHORIZE_URL".into(), format!("{uri}/ap/oa")),
            (
                "APP__AMAZON__TOKEN_URL".into(),
                format!("{uri}/auth/o2/token"),
            ),
            ("APP__AMAZON__API_URL".into(), uri),
            ("APP__AMAZON__RETRY_BASE_MS".into(), "1".into()),
            ("APP__AMAZON__RETRY_CAP_MS".into(), "20".into()),
            // Roster reads retry like Amazon's calls: fast here too.
            ("APP__PROGRAM__RETRY_BASE_MS".into(), "1".into()),
            ("APP__PROGRAM__RETRY_CAP_MS".into(), "20".into()),
        ]
    }

    /// Waits (bounded, about 2 s) until a request reached the token endpoint; panics if none did.
    pub async fn wait_for_token_request(&self) {
        for _ in 0..200 {
            let requests = self.server.received_requests().await.unwrap();
            if requests.iter().any(|r| r.url.path() == "/auth/o2/token") {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("Amazon's token endpoint was never asked");
    }

    /// What Amazon does when the merchant clicks "Allow": a code bound to the PKCE challenge.
    pub fn allow(&self, challenge: &str) -> String {
        let mut s = self.lwa.0.lock().unwrap();
        let code = format!("ANcode{}", s.codes.len() + 1);
        s.codes.insert(code.clone(), challenge.to_owned());
        code
    }
}

/// The program's admin API: a roster of `n` affiliates, optionally answering full pages forever.
#[derive(Clone)]
pub struct Roster {
    pub token: String,
    pub people: Arc<Mutex<Vec<Value>>>,
    pub never_ending: bool,
    pub calls: Arc<Mutex<usize>>,
}

impl Respond for Roster {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        *self.calls.lock().unwrap() += 1;
        if !has_program_token(req, &self.token) {
            return unauthorized();
        }
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let limit: usize = q
            .get("limit")
            .and_then(|l| l.parse().ok())
            .unwrap_or(25)
            .min(250);
        let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
        let people = self.people.lock().unwrap();
        let page: Vec<Value> = if self.never_ending && offset >= people.len() && !people.is_empty()
        {
            // The quirk: past the end, the last full page again.
            let start = people.len().saturating_sub(limit);
            people[start..].to_vec()
        } else {
            people.iter().skip(offset).take(limit).cloned().collect()
        };
        if !q.contains_key("fields") {
            return ResponseTemplate::new(200).set_body_json(
                json!({"affiliates": page.iter().map(|_| json!({})).collect::<Vec<_>>()}),
            );
        }
        ResponseTemplate::new(200).set_body_json(json!({ "affiliates": page }))
    }
}

pub fn people(n: usize) -> Vec<Value> {
    (1..=n)
        .map(|i| json!({"id": i, "name": format!("Affiliate {i}"), "ref_code": format!("aff{i}"), "status": "approved"}))
        .collect()
}

pub struct ProgramDouble {
    pub server: MockServer,
    pub roster: Roster,
}

impl ProgramDouble {
    pub async fn start(token: &str, n: usize, never_ending: bool) -> Self {
        let server = MockServer::start().await;
        let roster = Roster {
            token: token.to_owned(),
            people: Arc::new(Mutex::new(people(n))),
            never_ending,
            calls: Arc::default(),
        };
        Mock::given(method("GET"))
            .and(path("/v1/admin/affiliates"))
            .respond_with(roster.clone())
            .mount(&server)
            .await;
        Self { server, roster }
    }

    pub fn api_url(&self) -> String {
        format!("{}/v1", self.server.uri())
    }
}

/// `POST /attribution/report`: the rows given, `page_size` per page, an opaque JSON cursor, the
/// last page's cursor empty; `faults` answered first, in order.
#[derive(Clone, Default)]
pub struct Report {
    pub lwa: Lwa,
    pub rows: Arc<Mutex<Vec<Value>>>,
    pub page_size: usize,
    pub faults: Arc<Mutex<std::collections::VecDeque<ResponseTemplate>>>,
    pub bodies: Arc<Mutex<Vec<Value>>>,
    /// Seeded faults and delays on every page (the proof scenarios).
    pub chaos: Arc<Mutex<Option<crate::chaos::Chaos>>>,
    /// With several stores on one Amazon account: the campaign each grant (refresh token) may
    /// read; a grant reads only its campaign's rows. Empty: every row for everyone.
    pub campaign_of_grant: Arc<Mutex<HashMap<String, String>>>,
    /// Holds the next page request until the test lets it go. The double runs on a thread of
    /// its own, so blocking here stalls only this mock server (every Amazon endpoint on it).
    pub gate: Arc<Mutex<Option<Gate>>>,
}

/// A request held by [`Report::gate`]: `arrived` is told when it comes, and it is answered
/// once `go` is.
pub struct Gate {
    pub arrived: std::sync::mpsc::Sender<()>,
    pub go: std::sync::mpsc::Receiver<()>,
}

impl Report {
    /// Holds the next report request at the gate: told on the first receiver when it arrives,
    /// answered once the sender says so (or is dropped).
    pub fn hold_next_page(&self) -> (std::sync::mpsc::Receiver<()>, std::sync::mpsc::Sender<()>) {
        let (arrived, has_arrived) = std::sync::mpsc::channel();
        let (go, let_go) = std::sync::mpsc::channel();
        *self.gate.lock().unwrap() = Some(Gate {
            arrived,
            go: let_go,
        });
        (has_arrived, go)
    }
}

impl Respond for Report {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if !self.lwa.is_live(req) {
            return ResponseTemplate::new(401)
                .set_body_json(json!({"code": "401", "details": "Authentication failed"}));
        }
        let gate = self.gate.lock().unwrap().take();
        if let Some(gate) = gate {
            let _ = gate.arrived.send(());
            let _ = gate.go.recv();
        }
        if let Some(fault) = self.faults.lock().unwrap().pop_front() {
            return fault;
        }
        let chaos = self.chaos.lock().unwrap().clone();
        let delay = match chaos.map(|c| c.draw(false)) {
            Some(crate::chaos::Draw {
                fault: Some(fault),
                delay,
                ..
            }) => return fault.set_delay(delay),
            Some(draw) => draw.delay,
            None => std::time::Duration::ZERO,
        };
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        self.bodies.lock().unwrap().push(body.clone());
        let start: usize = body
            .get("cursorId")
            .and_then(Value::as_str)
            .and_then(|c| serde_json::from_str::<Value>(c).ok())
            .and_then(|c| c["offset"].as_u64())
            .unwrap_or(0) as usize;
        let (from, to) = (
            body["startDate"].as_str().unwrap_or("").to_owned(),
            body["endDate"].as_str().unwrap_or("").to_owned(),
        );
        let campaign = {
            let grants = self.campaign_of_grant.lock().unwrap();
            let bearer = header(req, "authorization").unwrap_or_default();
            let lwa = self.lwa.0.lock().unwrap();
            bearer
                .strip_prefix("Bearer ")
                .and_then(|access| lwa.grant_of_access.get(access))
                .and_then(|grant| grants.get(grant))
                .cloned()
        };
        let rows: Vec<Value> = self
            .rows
            .lock()
            .unwrap()
            .iter()
            .filter(|r| {
                let d = r["date"].as_str().unwrap_or("");
                d >= from.as_str()
                    && d <= to.as_str()
                    && campaign
                        .as_ref()
                        .is_none_or(|c| r["campaignId"] == c.as_str())
            })
            .cloned()
            .collect();
        let size = if self.page_size == 0 {
            5000
        } else {
            self.page_size
        };
        let page: Vec<Value> = rows.iter().skip(start).take(size).cloned().collect();
        let next = start + page.len();
        let cursor = if next < rows.len() {
            json!({"offset": next, "version": "V2"}).to_string()
        } else {
            String::new()
        };
        ResponseTemplate::new(200)
            .set_body_json(json!({"reports": page, "cursorId": cursor, "size": page.len()}))
            .set_delay(delay)
    }
}

pub fn report_row(date: &str, affiliate: i64, clicks: i64, purchases: i64, sales: &str) -> Value {
    json!({"date": date, "campaignId": "ab_st_1", "adGroupId": format!("a{affiliate}"), "advertiserName": "Acme Brand",
           "publisher": "Email - Other", "Click-throughs": clicks.to_string(), "attributedDetailPageViewsClicks14d": clicks.to_string(),
           "attributedAddToCartClicks14d": "0", "attributedPurchases14d": purchases.to_string(), "unitsSold14d": purchases.to_string(),
           "attributedSales14d": sales, "attributedTotalPurchases14d": purchases.to_string(), "totalUnitsSold14d": purchases.to_string(),
           "totalAttributedSales14d": sales, "brb_bonus_amount": "1.5"})
}

impl AmazonDouble {
    pub async fn with_report(page_size: usize) -> (Self, Report) {
        let double = Self::start().await;
        let report = Report {
            lwa: double.lwa.clone(),
            page_size,
            ..Default::default()
        };
        Mock::given(method("POST"))
            .and(path("/attribution/report"))
            .respond_with(report.clone())
            .mount(&double.server)
            .await;
        (double, report)
    }
}

/// A program order as the double keeps it: the exact JSON text of its amounts, and every update.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub id: u64,
    pub body: Value,
    pub patches: Vec<Value>,
}

/// `GET/POST /v1/admin/orders` and `PATCH /v1/admin/orders/{id}`; `faults` answer writes first,
/// a fault with `store_anyway` keeps the order although the answer is lost.
#[derive(Clone, Default)]
pub struct Orders {
    pub token: String,
    pub orders: Arc<Mutex<Vec<StoredOrder>>>,
    pub faults: Arc<Mutex<std::collections::VecDeque<(ResponseTemplate, bool)>>>,
    pub writes: Arc<Mutex<usize>>,
    /// Seeded faults and delays on every write (the proof scenarios).
    pub chaos: Arc<Mutex<Option<crate::chaos::Chaos>>>,
    /// Creates that stored an order (a repeated number is refused with 409, never stored).
    pub creates: Arc<Mutex<usize>>,
    /// Every `POST` (create) and `PATCH` (update) received, faults and refusals included.
    pub creates_sent: Arc<Mutex<usize>>,
    pub patches_sent: Arc<Mutex<usize>>,
    /// Order number → its place in `orders`, so that thousands of orders stay quick to find.
    pub numbers: Arc<Mutex<HashMap<String, usize>>>,
    /// Numbers whose create the program refuses for good (400), whatever else happens.
    pub refused: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Respond for Orders {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        if !has_program_token(req, &self.token) {
            return unauthorized();
        }
        let mut orders = self.orders.lock().unwrap();
        let view = |o: &StoredOrder| {
            let mut v = o.body.clone();
            v["id"] = json!(o.id);
            patched(v, &o.patches)
        };
        if req.method.as_str() == "GET" {
            let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
            let found: Vec<Value> = orders
                .iter()
                .filter(|o| {
                    Some(o.body["number"].as_str().unwrap_or(""))
                        == q.get("number").map(String::as_str)
                })
                .map(view)
                .collect();
            return ResponseTemplate::new(200).set_body_json(json!({ "orders": found }));
        }
        *self.writes.lock().unwrap() += 1;
        if req.method.as_str() == "POST" {
            *self.creates_sent.lock().unwrap() += 1;
        } else {
            *self.patches_sent.lock().unwrap() += 1;
        }
        // A refused create is refused before anything else can happen to it.
        if req.method.as_str() == "POST"
            && let Ok(sent) = serde_json::from_slice::<Value>(&req.body)
            && sent["number"]
                .as_str()
                .is_some_and(|n| self.refused.lock().unwrap().contains(n))
        {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": "affiliate is blocked"}));
        }
        let mut fault = self.faults.lock().unwrap().pop_front();
        let mut delay = std::time::Duration::ZERO;
        if fault.is_none()
            && let Some(chaos) = self.chaos.lock().unwrap().clone()
        {
            let draw = chaos.draw(true);
            delay = draw.delay;
            fault = draw
                .fault
                .map(|f| (f.set_delay(draw.delay), draw.effect_anyway));
        }
        if let Some((answer, false)) = &fault {
            return answer.clone();
        }
        // Amounts must be JSON numbers with at most the currency's decimals (ISO 4217: JPY 0,
        // KWD 3, most 2); kept as the exact text sent.
        let text = String::from_utf8_lossy(&req.body).to_string();
        let mut body: Value = match serde_json::from_str(&text) {
            Ok(b) => b,
            Err(_) => {
                return ResponseTemplate::new(400).set_body_json(json!({"error": "bad json"}));
            }
        };
        let currency = body["currency"].as_str().map(str::to_owned).or_else(|| {
            let url = req.url.path().rsplit('/').next().unwrap_or("").to_owned();
            orders
                .iter()
                .find(|o| o.id.to_string() == url)
                .and_then(|o| o.body["currency"].as_str().map(str::to_owned))
        });
        let decimals = match currency.as_deref() {
            Some("JPY") => 0,
            Some("KWD") => 3,
            _ => 2,
        };
        for k in ["total", "subtotal", "commission"] {
            if body.get(k).is_some() {
                let raw = raw_number(&text, k).unwrap_or_default();
                let ok = body[k].is_number()
                    && raw.split('.').nth(1).is_none_or(|d| d.len() <= decimals);
                if !ok {
                    return ResponseTemplate::new(400)
                        .set_body_json(json!({"error": format!("bad {k}")}));
                }
                body[k] = json!(raw);
            }
        }
        let answer = if req.method.as_str() == "POST" {
            let number = body["number"].as_str().unwrap_or("").to_owned();
            if self.position(&orders, &number).is_some() {
                return ResponseTemplate::new(409)
                    .set_body_json(json!({"error": "order number already exists"}));
            }
            let id = 1000 + orders.len() as u64;
            *self.creates.lock().unwrap() += 1;
            orders.push(StoredOrder {
                id,
                body,
                patches: vec![],
            });
            self.numbers
                .lock()
                .unwrap()
                .insert(number, orders.len() - 1);
            ResponseTemplate::new(201).set_body_json(json!({"order": view(orders.last().unwrap())}))
        } else {
            let id: u64 = req
                .url
                .path()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .parse()
                .unwrap_or(0);
            let Some(o) = orders.iter_mut().find(|o| o.id == id) else {
                return ResponseTemplate::new(404).set_body_json(json!({"error": "not found"}));
            };
            o.patches.push(body);
            let v = view(o);
            ResponseTemplate::new(200).set_body_json(json!({"order": v}))
        };
        match fault {
            Some((lost, true)) => lost,
            _ => answer.set_delay(delay),
        }
    }
}

impl Orders {
    /// Where the order numbered `number` is in `orders` (the first such), if anywhere; the index
    /// is rebuilt when a test added orders itself.
    fn position(&self, orders: &[StoredOrder], number: &str) -> Option<usize> {
        let mut index = self.numbers.lock().unwrap();
        if index.len() != orders.len() {
            index.clear();
            for (i, o) in orders.iter().enumerate() {
                let n = o.body["number"].as_str().unwrap_or("").to_owned();
                index.entry(n).or_insert(i);
            }
        }
        index.get(number).copied()
    }

    /// The order as the program shows it now.
    pub fn current(&self, number: &str) -> Option<Value> {
        let orders = self.orders.lock().unwrap();
        let o = &orders[self.position(&orders, number)?];
        Some(patched(o.body.clone(), &o.patches))
    }

    pub fn count(&self) -> usize {
        self.orders.lock().unwrap().len()
    }

    pub fn patches(&self) -> usize {
        self.orders
            .lock()
            .unwrap()
            .iter()
            .map(|o| o.patches.len())
            .sum()
    }
}

impl ProgramDouble {
    pub async fn with_orders(token: &str, affiliates: usize) -> (Self, Orders) {
        let program = Self::start(token, affiliates, false).await;
        let orders = Orders {
            token: token.to_owned(),
            ..Default::default()
        };
        Mock::given(wiremock::matchers::path_regex(r"^/v1/admin/orders(/\d+)?$"))
            .respond_with(orders.clone())
            .mount(&program.server)
            .await;
        (program, orders)
    }
}

/// The exact text of a top-level number in a JSON body, as sent.
fn raw_number(body: &str, key: &str) -> Option<String> {
    let start = body.find(&format!("\"{key}\":"))? + key.len() + 3;
    let rest = body[start..].trim_start();
    Some(
        rest.chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-')
            .collect(),
    )
}
