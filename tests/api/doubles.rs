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

impl Respond for Lwa {
    fn respond(&self, req: &Request) -> ResponseTemplate {
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
        let header = |name: &str| {
            req.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let bearer = header("authorization").unwrap_or_default();
        let live = self
            .lwa
            .0
            .lock()
            .unwrap()
            .valid_access
            .iter()
            .any(|t| bearer == format!("Bearer {t}"));
        if !live || header("amazon-advertising-api-clientid").as_deref() != Some(CLIENT_ID) {
            return ResponseTemplate::new(401).set_body_json(
                json!({"code": "401", "details": "Authentication failed", "requestId": "R1"}),
            );
        }
        let p = req.url.path();
        if p.ends_with("/v2/profiles") {
            return ResponseTemplate::new(200).set_body_json(self.profiles.lock().unwrap().clone());
        }
        let Some(scope) = header("amazon-advertising-api-scope") else {
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
        ]
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
        if req
            .headers
            .get("x-goaffpro-access-token")
            .and_then(|v| v.to_str().ok())
            != Some(self.token.as_str())
        {
            return ResponseTemplate::new(401).set_body_json(json!({"error": "unauthorized"}));
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
