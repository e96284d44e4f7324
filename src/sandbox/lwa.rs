//! Login with Amazon (reference §1, §7 items 1–2): consent page, decision, token endpoint, and a
//! control-room button that revokes every grant.
use std::collections::HashMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::{
    Engine,
    engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD},
};
use chrono::Duration;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

use super::csrf::Checked;
use super::form::first_params;
use super::world::{AccessGrant, AuthCode, RefreshGrant};
use super::{CLIENT_ID, CLIENT_SECRET, Sandbox, error_page, random_token, render, see_other};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/amazon/ap/oa", web::get().to(consent))
        .route("/amazon/ap/oa/decision", web::post().to(decision))
        .route("/amazon/auth/o2/token", web::post().to(token))
        .route("/amazon/revoke", web::post().to(revoke));
}

const SCOPES: [&str; 2] = [
    "advertising::campaign_management",
    // Clients approved before Oct 2020 (reference §1.1).
    "cpc_advertising:campaign_management",
];
const CODE_TTL_SECS: i64 = 300;
const ACCESS_TTL_SECS: i64 = 3600;

impl Sandbox {
    /// The "Allowed Return URL" of the sandbox client: the app's callback (DESIGN §4.3).
    fn allowed_redirect(&self, uri: &str) -> bool {
        uri == self.url("/oauth/amazon/callback").as_str()
    }
}

#[derive(Template)]
#[template(path = "sandbox/consent.html")]
struct Consent<'a> {
    /// The token the decision form carries (`csrf`).
    csrf: &'a str,
    client_id: &'a str,
    redirect_uri: &'a str,
    redirect_host: String,
    scope: &'a str,
    state: &'a str,
    code_challenge: &'a str,
    code_challenge_method: &'a str,
}

async fn consent(req: HttpRequest, sb: web::Data<Sandbox>) -> HttpResponse {
    let p = first_params(req.query_string().as_bytes());
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    // Problems with the client or the return URL cannot be sent back: they are shown here.
    if get("client_id") != CLIENT_ID {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unknown client",
            "Login with Amazon does not know this client_id. The sandbox only knows amzn1.application-oa2-client.sandbox.",
        );
    }
    if !sb.allowed_redirect(get("redirect_uri")) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This return URL is not allowed",
            &format!(
                "redirect_uri must be one of the client's Allowed Return URLs; the sandbox allows only {}.",
                sb.url("/oauth/amazon/callback")
            ),
        );
    }
    if get("response_type") != "code" {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Unsupported response type",
            "response_type must be code.",
        );
    }
    let redirect = Url::parse(get("redirect_uri")).expect("allowed URLs parse");
    let state = p.get("state").map(String::as_str);
    if !SCOPES.contains(&get("scope")) {
        let reason = "An unknown scope was requested";
        return found(error_redirect(redirect, "invalid_scope", reason, state));
    }
    let method = get("code_challenge_method");
    if !get("code_challenge").is_empty() && !matches!(method, "" | "S256" | "plain") {
        let reason = "Unsupported code_challenge_method";
        return found(error_redirect(redirect, "invalid_request", reason, state));
    }
    let token = sb.form_token(&req);
    let page = render(
        StatusCode::OK,
        &Consent {
            csrf: &token.token,
            client_id: CLIENT_ID,
            redirect_uri: get("redirect_uri"),
            redirect_host: redirect.host_str().unwrap_or_default().to_owned(),
            scope: get("scope"),
            state: get("state"),
            code_challenge: get("code_challenge"),
            code_challenge_method: method,
        },
    );
    token.bind(page)
}

#[derive(Debug, Deserialize)]
struct Decision {
    decision: String,
    client_id: String,
    redirect_uri: String,
    scope: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    code_challenge: String,
    #[serde(default)]
    code_challenge_method: String,
}

async fn decision(Checked(d): Checked<Decision>, sb: web::Data<Sandbox>) -> HttpResponse {
    // The hidden fields came back from the browser: check them again.
    if d.client_id != CLIENT_ID || !sb.allowed_redirect(&d.redirect_uri) {
        let msg = "The consent form was altered: unknown client or return URL.";
        return error_page(StatusCode::BAD_REQUEST, "Invalid request", msg);
    }
    let redirect = Url::parse(&d.redirect_uri).expect("allowed URLs parse");
    let state = Some(d.state.as_str()).filter(|s| !s.is_empty());
    if d.decision != "allow" {
        let reason = "The user denied the request";
        return found(error_redirect(redirect, "access_denied", reason, state));
    }
    let code = format!("AN{}", random_token(18));
    let challenge = Some(d.code_challenge).filter(|c| !c.is_empty());
    let method = challenge
        .as_ref()
        .map(|_| match d.code_challenge_method.as_str() {
            "" => "plain".to_owned(), // RFC 7636: plain when the method is omitted
            m => m.to_owned(),
        });
    let grant = AuthCode {
        client_id: d.client_id,
        redirect_uri: d.redirect_uri,
        challenge,
        method,
        expires_at: sb.now() + Duration::seconds(CODE_TTL_SECS),
    };
    sb.update(|s| s.codes.insert(code.clone(), grant));
    let mut url = redirect;
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("scope", &d.scope);
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    found(url)
}

fn error_redirect(mut url: Url, error: &str, description: &str, state: Option<&str>) -> Url {
    url.query_pairs_mut()
        .append_pair("error", error)
        .append_pair("error_description", description);
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    url
}

fn found(url: Url) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, url.as_str()))
        .finish()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "error": error, "error_description": description }))
}

fn missing(name: &str) -> HttpResponse {
    let text = format!("The request is missing a required parameter : {name}");
    oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &text)
}

const BAD_CODE: &str = "The request has an invalid grant parameter : code";
const BAD_REFRESH: &str = "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission.";

/// Form or JSON body (both are seen in the wild); values that are not strings become text.
fn token_params(req: &HttpRequest, body: &[u8]) -> HashMap<String, String> {
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().contains("json"));
    if !is_json {
        return first_params(body);
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice(body) else {
        return HashMap::new();
    };
    map.into_iter()
        .filter_map(|(k, v)| match v {
            serde_json::Value::String(s) => Some((k, s)),
            serde_json::Value::Null => None,
            other => Some((k, other.to_string())),
        })
        .collect()
}

/// HTTP Basic client credentials, which take precedence over the body's.
fn basic_credentials(req: &HttpRequest) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

async fn token(req: HttpRequest, body: web::Bytes, sb: web::Data<Sandbox>) -> HttpResponse {
    let p = token_params(&req, &body);
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let (client_id, secret) = match basic_credentials(&req) {
        Some((id, secret)) => (Some(id), Some(secret)),
        None => (
            get("client_id").map(str::to_owned),
            get("client_secret").map(str::to_owned),
        ),
    };
    let Some(client_id) = client_id else {
        return missing("client_id");
    };
    if client_id != CLIENT_ID || secret.as_deref() != Some(CLIENT_SECRET) {
        let text = "Client authentication failed";
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", text);
    }
    match get("grant_type") {
        None => missing("grant_type"),
        Some("authorization_code") => {
            let Some(code) = get("code") else {
                return missing("code");
            };
            let Some(redirect_uri) = get("redirect_uri") else {
                return missing("redirect_uri");
            };
            exchange_code(&sb, code, redirect_uri, get("code_verifier"))
        }
        Some("refresh_token") => match get("refresh_token") {
            None => missing("refresh_token"),
            Some(refresh) => refresh_access(&sb, refresh),
        },
        Some(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server",
        ),
    }
}

fn exchange_code(
    sb: &Sandbox,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> HttpResponse {
    let now = sb.now();
    let issued = sb.update(|s| {
        // Any presentation uses the code up, whether or not it succeeds.
        let grant = s.codes.remove(code)?;
        let pkce_ok = match (grant.challenge.as_deref(), verifier) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(challenge), Some(v)) => match grant.method.as_deref() {
                Some("S256") => URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == challenge,
                _ => v == challenge,
            },
        };
        let valid = grant.expires_at > now
            && grant.client_id == CLIENT_ID
            && grant.redirect_uri == redirect_uri
            && pkce_ok;
        if !valid {
            return None;
        }
        let refresh = format!("Atzr|IwEB{}", random_token(360));
        let grant = RefreshGrant {
            client_id: CLIENT_ID.into(),
            created_at: now,
        };
        s.refresh_tokens.insert(refresh.clone(), grant);
        Some((issue_access(s, &refresh, now), refresh))
    });
    match issued {
        Some((access, refresh)) => token_response(&access, &refresh),
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", BAD_CODE),
    }
}

fn refresh_access(sb: &Sandbox, refresh: &str) -> HttpResponse {
    let now = sb.now();
    let access = sb.update(|s| {
        let grant = s.refresh_tokens.get(refresh)?;
        (grant.client_id == CLIENT_ID).then(|| issue_access(s, refresh, now))
    });
    match access {
        // The same refresh token comes back (reference §1.2).
        Some(access) => token_response(&access, refresh),
        None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", BAD_REFRESH),
    }
}

fn issue_access(
    s: &mut super::world::State,
    refresh: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    let access = format!("Atza|IwEB{}", random_token(360));
    let grant = AccessGrant {
        client_id: CLIENT_ID.into(),
        refresh_token: refresh.to_owned(),
        expires_at: now + Duration::seconds(ACCESS_TTL_SECS),
    };
    s.access_tokens.insert(access.clone(), grant);
    access
}

fn token_response(access: &str, refresh: &str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ACCESS_TTL_SECS,
            "refresh_token": refresh,
        }))
}

/// As if the merchant removed the app from "Login with Amazon" in their Amazon account.
async fn revoke(_: Checked<serde::de::IgnoredAny>, sb: web::Data<Sandbox>) -> HttpResponse {
    sb.update(|s| {
        s.refresh_tokens.clear();
        s.access_tokens.clear();
    });
    see_other(sb.url("/sandbox").as_str())
}
