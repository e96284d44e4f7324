//! The Amazon Ads API host (reference §2–3, §7 items 3–5): header checks, profiles, advertisers,
//! publishers, template and macro tags. The report is in `report`, the sandbox's hooks in `hooks`.
use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{CLIENT_ID, JsonError, Sandbox, random_token};

pub const ADVERTISER_NAME: &str = "Sandbox Brand";

/// Reference §3.2 (ids 1–29); 1–4 take macro tags, the others template tags.
pub const PUBLISHERS: [&str; 29] = [
    "Google Ads",
    "Facebook Ads",
    "Microsoft Ads",
    "Pinterest Ads",
    "Snapchat Ads",
    "Twitter Ads",
    "LinkedIn Ads",
    "Youtube",
    "Display - Other",
    "Video - Other",
    "Blogpost - Other",
    "Email - Other",
    "TikTok",
    "Reddit",
    "Hulu",
    "Verizon Media",
    "BuzzFeed",
    "Pandora",
    "Spotify",
    "ESPN",
    "Slick Deals",
    "Fox",
    "ABC",
    "NBC",
    "CBS",
    "BET",
    "Conde Naste",
    "Hearst Digital",
    "Meredith Corporation",
];

pub fn publisher_name(id: &str) -> Option<&'static str> {
    let n: usize = id.parse().ok()?;
    PUBLISHERS.get(n.checked_sub(1)?).copied()
}

fn is_macro(id: &str) -> bool {
    matches!(id, "1" | "2" | "3" | "4")
}

/// MaaSError with the request id the gateway adds.
pub(super) fn ads_error(status: StatusCode, details: &str) -> JsonError {
    let body = json!({
        "code": status.as_u16().to_string(),
        "details": details,
        "requestId": random_token(20).to_ascii_uppercase(),
    });
    JsonError::new(status, body)
}

pub(super) fn header_value<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

impl Sandbox {
    /// Every call: a live access token and our client id, else 401 "Authentication failed".
    fn authenticate(&self, req: &HttpRequest) -> Result<(), JsonError> {
        let now = self.now();
        let token = header_value(req, header::AUTHORIZATION.as_str())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        let live = token.is_some_and(|t| {
            self.read(|s| s.access_tokens.get(t).is_some_and(|g| g.expires_at > now))
        });
        let client_ok = header_value(req, "Amazon-Advertising-API-ClientId") == Some(CLIENT_ID);
        if live && client_ok {
            Ok(())
        } else {
            Err(ads_error(StatusCode::UNAUTHORIZED, "Authentication failed"))
        }
    }

    /// `/attribution/*`: also a Scope header naming our seller profile.
    pub(super) fn attribution_scope(&self, req: &HttpRequest) -> Result<(), JsonError> {
        self.authenticate(req)?;
        let Some(scope) = header_value(req, "Amazon-Advertising-API-Scope") else {
            let body = json!({"code": "400", "details": "Scope header is missing"});
            return Err(JsonError::new(StatusCode::BAD_REQUEST, body));
        };
        match scope.trim().parse::<i64>() {
            Ok(id) if id == self.ids().profile_id => Ok(()),
            // The shape Airbyte special-cases: `message`, not `details`.
            Ok(id) if id == self.ids().legacy_profile_id => Err(JsonError::new(
                StatusCode::BAD_REQUEST,
                json!({"message": "This profileID is not authorized to use Amazon Attribution"}),
            )),
            _ => Err(ads_error(
                StatusCode::UNAUTHORIZED,
                "Not authorized to access scope",
            )),
        }
    }
}

pub(super) async fn not_found(req: HttpRequest) -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "code": "NOT_FOUND",
        "details": format!("Could not find resource for full path: {}", req.path()),
    }))
}

pub(super) async fn profiles(
    req: HttpRequest,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    sb.authenticate(&req)?;
    let ids = sb.ids();
    // The legacy profile comes first so that "take the first profile" visibly goes wrong.
    Ok(HttpResponse::Ok().json(json!([
        {
            "profileId": ids.legacy_profile_id,
            "countryCode": "US",
            "currencyCode": "USD",
            "timezone": "America/Los_Angeles",
            "accountInfo": {
                "marketplaceStringId": "ATVPDKIKX0DER",
                "id": format!("ENTITY{}", &ids.account_id[1..]),
                "type": "vendor",
                "name": "Sandbox Brand (legacy Attribution)",
                "subType": "AMAZON_ATTRIBUTION",
                "validPaymentMethod": false
            }
        },
        {
            "profileId": ids.profile_id,
            "countryCode": "US",
            "currencyCode": "USD",
            "dailyBudget": 9.99999999E8,
            "timezone": "America/Los_Angeles",
            "accountInfo": {
                "marketplaceStringId": "ATVPDKIKX0DER",
                "id": ids.account_id,
                "type": "seller",
                "name": ADVERTISER_NAME,
                "validPaymentMethod": true
            }
        }
    ])))
}

pub(super) async fn advertisers(
    req: HttpRequest,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    sb.attribution_scope(&req)?;
    Ok(HttpResponse::Ok().json(json!({"advertisers": [
        {"advertiserId": sb.ids().advertiser_id, "advertiserName": ADVERTISER_NAME}
    ]})))
}

pub(super) async fn publishers(
    req: HttpRequest,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    sb.attribution_scope(&req)?;
    let list: Vec<Value> = PUBLISHERS
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let id = (i + 1).to_string();
            json!({"id": id, "name": name, "macroEnabled": is_macro(&id)})
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "publishers": list })))
}

/// All values of a list parameter, repeated (`a=1&a=2`) or comma-separated (`a=1,2`).
pub(super) fn list_param(query: &str, name: &str) -> Vec<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == name || k.strip_suffix("[]") == Some(name))
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fn macro_template(publisher: &str) -> &'static str {
    match publisher {
        "1" => {
            "aa_campaignid={campaignid}&aa_adgroupid={adgroupid}&aa_creativeid=ad-{creative}_{targetid}_dev-{device}_ext-{feeditemid}"
        }
        "2" => "aa_campaignid={{campaign.id}}&aa_adgroupid={{adset.id}}&aa_creativeid={{ad.id}}",
        "3" => {
            "aa_campaignid={CampaignId}&aa_adgroupid={AdGroupId}&aa_creativeid=ad-{AdId}_{TargetId}_dev-{Device}_ext-{feeditemid}"
        }
        _ => "aa_campaignid={campaignid}&aa_adgroupid={adgroupid}&aa_creativeid={adid}",
    }
}

/// Both tag resources; `macro_wanted` selects which publishers each accepts.
fn tags(req: &HttpRequest, sb: &Sandbox, macro_wanted: bool) -> Result<HttpResponse, JsonError> {
    sb.attribution_scope(req)?;
    let publishers = list_param(req.query_string(), "publisherIds");
    let mut advertisers = list_param(req.query_string(), "advertiserIds");
    if publishers.is_empty() {
        return Err(ads_error(
            StatusCode::BAD_REQUEST,
            "publisherIds is required",
        ));
    }
    for p in &publishers {
        if publisher_name(p).is_none() || is_macro(p) != macro_wanted {
            let details = format!("Publisher not supported: {p}");
            return Err(ads_error(StatusCode::BAD_REQUEST, &details));
        }
    }
    let ours = &sb.ids().advertiser_id;
    if let Some(bad) = advertisers.iter().find(|a| *a != ours) {
        let details = format!("Invalid advertiser identifier: {bad}");
        return Err(ads_error(StatusCode::BAD_REQUEST, &details));
    }
    if advertisers.is_empty() {
        advertisers.push(ours.clone()); // "If no values are passed, all advertisers are returned."
    }
    // Amazon's hidden side effect: fetching tags switches measurement on.
    sb.update(|s| s.measurement.insert(ours.clone()));
    let mut map = BTreeMap::new();
    for adv in advertisers {
        let per_pub: BTreeMap<String, String> = publishers
            .iter()
            .map(|p| {
                let ids = if macro_wanted {
                    macro_template(p).to_owned()
                } else {
                    "aa_campaignid={insertCampaign}&aa_adgroupid={insertAdGroupId}&aa_creativeid={insertCreativeId}".to_owned()
                };
                let kind = if macro_wanted { "macro" } else { "static" };
                let tag = format!("?maas=maas_adg_api_{adv}_{kind}_{p}_73&ref_=aa_maas&tag=maas&{ids}");
                (p.clone(), tag)
            })
            .collect();
        map.insert(adv, per_pub);
    }
    // The bare map, as live fixtures show (no advertiserAttributionTagMap wrapper).
    Ok(HttpResponse::Ok().json(map))
}

pub(super) async fn non_macro_tags(
    req: HttpRequest,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    tags(&req, &sb, false)
}

pub(super) async fn macro_tags(
    req: HttpRequest,
    sb: web::Data<Sandbox>,
) -> Result<HttpResponse, JsonError> {
    tags(&req, &sb, true)
}
