use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::Duration;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{CLIENT_ID, CLIENT_SECRET, Harness};

const BAD_CODE: &str = "The request has an invalid grant parameter : code";
const BAD_REFRESH: &str = "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission.";

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[actix_web::test]
async fn the_consent_page_offers_allow_and_deny_and_refuses_unknown_clients() {
    let h = Harness::start().await;
    let consent = |client: &str, response_type: &str, redirect: &str| {
        let mut url = h.sandbox.authorize_url();
        url.query_pairs_mut()
            .append_pair("client_id", client)
            .append_pair("scope", "advertising::campaign_management")
            .append_pair("response_type", response_type)
            .append_pair("redirect_uri", redirect)
            .append_pair("state", "s1")
            .append_pair("code_challenge", "abc")
            .append_pair("code_challenge_method", "S256");
        h.http.get(url).send()
    };
    let ok = consent(CLIENT_ID, "code", &h.callback()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let page = ok.text().await.unwrap();
    for needle in [
        "id=\"allow\"",
        "id=\"deny\"",
        "id=\"sandbox-banner\"",
        "name=\"state\" value=\"s1\"",
        "/sandbox/amazon/ap/oa/decision",
    ] {
        assert!(page.contains(needle), "consent page lacks {needle}");
    }
    assert_eq!(
        consent("amzn1.application-oa2-client.other", "code", &h.callback())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        consent(CLIENT_ID, "token", &h.callback())
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        consent(CLIENT_ID, "code", "https://evil.example/cb")
            .await
            .unwrap()
            .status(),
        400
    );
}

#[actix_web::test]
async fn allow_and_deny_redirect_to_the_callback_with_the_state() {
    let h = Harness::start().await;
    let allowed = h.decide("allow", "state-123", None).await;
    assert!(find(&allowed, "code").is_some_and(|c| c.len() >= 18));
    assert_eq!(
        find(&allowed, "scope"),
        Some("advertising::campaign_management")
    );
    assert_eq!(find(&allowed, "state"), Some("state-123"));

    let denied = h.decide("deny", "state-456", None).await;
    assert_eq!(find(&denied, "error"), Some("access_denied"));
    assert_eq!(
        find(&denied, "error_description"),
        Some("The user denied the request")
    );
    assert_eq!(find(&denied, "state"), Some("state-456"));
    assert_eq!(find(&denied, "code"), None);
}

#[actix_web::test]
async fn the_redirect_encodes_scope_as_amazon_does() {
    let h = Harness::start().await;
    let location = h.decision_location("deny", "x", None).await;
    assert!(
        location.contains("error_description=The+user+denied+the+request&state=x"),
        "{location}"
    );
    let code = h.decide("allow", "x", None).await;
    assert!(find(&code, "code").is_some());
    let location = h.decision_location("allow", "", None).await;
    assert!(
        location.contains("&scope=advertising%3A%3Acampaign_management"),
        "{location}"
    );
    assert!(
        !location.contains("state="),
        "no state sent, none echoed: {location}"
    );
}

#[actix_web::test]
async fn a_code_is_single_use_and_lives_five_minutes() {
    let h = Harness::start().await;
    let code = h.code(None).await;
    assert_eq!(h.exchange(&code, None).await.0, 200);
    let (status, body) = h.exchange(&code, None).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "invalid_grant", "error_description": BAD_CODE})
        )
    );

    let code = h.code(None).await;
    h.clock.advance(Duration::seconds(301));
    let (status, body) = h.exchange(&code, None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let code = h.code(None).await;
    h.clock.advance(Duration::seconds(299));
    assert_eq!(
        h.exchange(&code, None).await.0,
        200,
        "still valid just before 5 minutes"
    );
}

#[actix_web::test]
async fn pkce_and_redirect_must_match_the_consent() {
    let h = Harness::start().await;
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let code = h.code(Some(&challenge)).await;
    let (status, body) = h
        .exchange(&code, Some("a-different-verifier-of-sufficient-length-000"))
        .await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some(BAD_CODE))
    );

    let code = h.code(Some(&challenge)).await;
    assert_eq!(
        h.exchange(&code, None).await.0,
        400,
        "a PKCE-bound code needs its verifier"
    );

    let code = h.code(Some(&challenge)).await;
    let (status, body) = h.exchange(&code, Some(verifier)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert!(body["refresh_token"].as_str().unwrap().starts_with("Atzr|"));
    assert_eq!(
        (body["token_type"].as_str(), body["expires_in"].as_i64()),
        (Some("bearer"), Some(3600))
    );

    let code = h.code(None).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", &*code),
        ("redirect_uri", "http://127.0.0.1:1/other"),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ];
    let (status, body) = h.token_call(&form).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (400, Some(BAD_CODE))
    );
}

#[actix_web::test]
async fn token_errors_have_the_reference_shapes() {
    let h = Harness::start().await;
    let base = |grant: &'static str| {
        vec![
            ("grant_type", grant),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]
    };

    let mut wrong_secret = base("refresh_token");
    wrong_secret[2].1 = "nope";
    wrong_secret.push(("refresh_token", "Atzr|x"));
    let mut unknown = base("refresh_token");
    unknown.push(("refresh_token", "Atzr|unknown"));
    let cases = [
        (
            wrong_secret,
            401,
            json!({"error": "invalid_client", "error_description": "Client authentication failed"}),
        ),
        (
            base("refresh_token"),
            400,
            json!({"error": "invalid_request", "error_description": "The request is missing a required parameter : refresh_token"}),
        ),
        (
            base("password"),
            400,
            json!({"error": "unsupported_grant_type", "error_description": "The authorization grant type is not supported by the authorization server"}),
        ),
        (
            unknown,
            400,
            json!({"error": "invalid_grant", "error_description": BAD_REFRESH}),
        ),
    ];
    for (form, status, body) in cases {
        assert_eq!(h.token_call(&form).await, (status, body), "{form:?}");
    }
    let mut no_code = base("authorization_code");
    no_code.push(("redirect_uri", "x"));
    assert_eq!(
        h.token_call(&no_code).await.1["error_description"],
        "The request is missing a required parameter : code"
    );
}

#[actix_web::test]
async fn refresh_accepts_json_and_basic_auth_and_keeps_the_refresh_token() {
    let h = Harness::start().await;
    let (access, refresh) = h.tokens().await;
    let url = h.url("/sandbox/amazon/auth/o2/token");
    let body = json!({"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET});
    let resp = h.post_json("/sandbox/amazon/auth/o2/token", &body).await;
    assert_eq!(resp.status(), 200);
    let json: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(json["refresh_token"].as_str(), Some(refresh.as_str()));
    assert_ne!(json["access_token"].as_str(), Some(access.as_str()));

    for (secret, expected) in [(CLIENT_SECRET, 200), ("wrong", 401)] {
        let resp = h
            .http
            .post(&url)
            .basic_auth(CLIENT_ID, Some(secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), expected, "basic auth with secret {secret}");
    }
}

#[actix_web::test]
async fn access_tokens_expire_after_an_hour_and_revoke_kills_every_grant() {
    let h = Harness::start().await;
    let (access, refresh) = h.tokens().await;
    assert_eq!(h.api("/v2/profiles", &access, None).await.status(), 200);
    h.clock.advance(Duration::seconds(3601));
    let expired = h.api("/v2/profiles", &access, None).await;
    assert_eq!(expired.status(), 401);

    let (status, body) = h.refresh(&refresh).await;
    assert_eq!(status, 200);
    let fresh = body["access_token"].as_str().unwrap().to_owned();

    let resp = h.post("/sandbox/amazon/revoke").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(h.api("/v2/profiles", &fresh, None).await.status(), 401);
    assert_eq!(
        h.refresh(&refresh).await,
        (
            400,
            json!({"error": "invalid_grant", "error_description": BAD_REFRESH})
        )
    );
}
