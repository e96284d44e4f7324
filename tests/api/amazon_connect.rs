//! The whole connect flow over real sockets: load link → connect → consent → callback →
//! profile/advertiser → links, against doubles of Login with Amazon, the Ads API and the program.
use std::collections::HashMap;

use attribution_bridge::{domain::ids::StoreId, flows::tokens, flows::tokens::AuthError};
use chrono::Duration;
use serde_json::json;

use crate::{doubles::*, helpers::*};

pub struct World {
    pub app: TestApp,
    pub amazon: AmazonDouble,
    pub program: ProgramDouble,
}

pub async fn world(affiliates: usize) -> World {
    let amazon = AmazonDouble::start().await;
    let program = ProgramDouble::start("gpat_prog", affiliates, false).await;
    let env = amazon.env();
    let app = spawn_app_with(move |e| e.extend(env)).await;
    app.send(&install_event_at("st_1", "gpat_prog", &program.api_url()))
        .await;
    assert_eq!(app.open_store("st_1").await.status(), 303);
    World {
        app,
        amazon,
        program,
    }
}

/// Clicks "Connect Amazon"; returns the consent URL's query.
pub async fn start_connect(app: &TestApp, client: &reqwest::Client) -> HashMap<String, String> {
    let page = client
        .get(app.url("/app/stores/st_1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default();
    let res = client
        .get(app.url(&format!("/app/amazon/connect?region=NA&csrf={csrf}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let consent = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(consent.path().ends_with("/ap/oa"), "{consent}");
    consent.query_pairs().into_owned().collect()
}

/// Amazon's redirect back, then the setup page; returns the page's flash message.
pub async fn callback(app: &TestApp, client: &reqwest::Client, query: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&app.url("/oauth/amazon/callback")).unwrap();
    url.query_pairs_mut().extend_pairs(query);
    let res = client.get(url).send().await.unwrap();
    assert_eq!(
        res.status(),
        303,
        "the callback never fails with an error page"
    );
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let page = client
        .get(app.url(&location))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    flash_of(&page).unwrap_or_default()
}

pub async fn connect(w: &World) -> String {
    let consent = start_connect(&w.app, &w.app.client).await;
    let code = w.amazon.allow(&consent["code_challenge"]);
    callback(
        &w.app,
        &w.app.client,
        &[
            ("code", &code),
            ("state", &consent["state"]),
            ("scope", "advertising::campaign_management"),
        ],
    )
    .await
}

fn store() -> StoreId {
    StoreId::parse("st_1").unwrap()
}

#[tokio::test]
async fn connecting_mints_one_correct_link_per_affiliate() {
    let w = world(3).await;
    let consent = start_connect(&w.app, &w.app.client).await;
    assert_eq!(consent["client_id"], CLIENT_ID);
    assert_eq!(consent["scope"], "advertising::campaign_management");
    assert_eq!(consent["response_type"], "code");
    assert_eq!(
        consent["redirect_uri"],
        "http://127.0.0.1:8080/oauth/amazon/callback"
    );
    assert_eq!(consent["code_challenge_method"], "S256");
    let code = w.amazon.allow(&consent["code_challenge"]);
    let flash = callback(
        &w.app,
        &w.app.client,
        &[("code", &code), ("state", &consent["state"])],
    )
    .await;
    assert_eq!(
        flash,
        "Amazon is connected. Every affiliate now has a link."
    );

    let links = attribution_bridge::store::links::current(&w.app.state.deps.db, &store())
        .await
        .unwrap();
    assert_eq!(links.len(), 3);
    for (i, link) in links.iter().enumerate() {
        let url = url::Url::parse(&link.url).unwrap();
        assert_eq!(url.host_str(), Some("www.amazon.com"));
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["maas"], "maas_adg_api_1964981050701_static_12_73");
        assert_eq!(q["aa_campaignid"], "ab_st_1");
        assert_eq!(q["aa_adgroupid"], format!("a{}", i + 1));
        assert_eq!(q["aa_creativeid"], "home");
        assert_eq!((q["ref_"].as_str(), q["tag"].as_str()), ("aa_maas", "maas"));
    }
    // The legacy profile was dropped: the only eligible pair was chosen by itself.
    assert_eq!(w.app.count("SELECT COUNT(*) FROM amazon_connections WHERE status = 'connected' AND profile_id = 111").await, 1);
    let page = w.app.get("/app/stores/st_1").await.text().await.unwrap();
    assert!(page.contains("Acme Brand"));
    assert_eq!(page.matches("class=\"link-row\"").count(), 3);
    // Tokens are sealed at rest.
    assert_eq!(
        w.app.columns_containing("Atzr|refresh-1").await,
        Vec::<String>::new()
    );
    assert_eq!(
        w.app.columns_containing("Atza|access-1").await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_refused_consent_changes_nothing_and_says_so() {
    let w = world(1).await;
    let consent = start_connect(&w.app, &w.app.client).await;
    let flash = callback(
        &w.app,
        &w.app.client,
        &[
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
            ("state", &consent["state"]),
        ],
    )
    .await;
    assert!(flash.contains("access was not granted"), "{flash}");
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0
    );
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let w = world(1).await;
    let consent = start_connect(&w.app, &w.app.client).await;
    let code = w.amazon.allow(&consent["code_challenge"]);
    let query = [
        ("code", code.as_str()),
        ("state", consent["state"].as_str()),
    ];
    assert!(
        callback(&w.app, &w.app.client, &query)
            .await
            .contains("connected")
    );
    let again = callback(&w.app, &w.app.client, &query).await;
    assert!(again.contains("not valid"), "{again}");
    // An unknown state, and none at all.
    assert!(
        callback(&w.app, &w.app.client, &[("code", "x"), ("state", "forged")])
            .await
            .contains("not valid")
    );
    assert!(
        callback(&w.app, &w.app.client, &[("code", "x")])
            .await
            .contains("not valid")
    );
}

#[tokio::test]
async fn another_stores_state_is_refused_and_stays_usable_by_its_owner() {
    let w = world(1).await;
    w.app
        .send(&install_event_at("st_2", "gpat_two", &w.program.api_url()))
        .await;
    let consent_a = start_connect(&w.app, &w.app.client).await;
    // Another browser, on store st_2, presents st_1's attempt.
    let other = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    other
        .get(w.app.load_link("st_2", w.app.now()))
        .send()
        .await
        .unwrap();
    let code = w.amazon.allow(&consent_a["code_challenge"]);
    let flash = callback(
        &w.app,
        &other,
        &[("code", &code), ("state", &consent_a["state"])],
    )
    .await;
    assert!(flash.contains("not valid"), "{flash}");
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0
    );
    let flash = callback(
        &w.app,
        &w.app.client,
        &[("code", &code), ("state", &consent_a["state"])],
    )
    .await;
    assert!(flash.contains("connected"), "{flash}");
}

#[tokio::test]
async fn an_expired_attempt_or_code_is_explained() {
    let w = world(1).await;
    let consent = start_connect(&w.app, &w.app.client).await;
    w.app.clock.advance(Duration::minutes(11));
    let code = w.amazon.allow(&consent["code_challenge"]);
    let flash = callback(
        &w.app,
        &w.app.client,
        &[("code", &code), ("state", &consent["state"])],
    )
    .await;
    assert!(flash.contains("longer than 10 minutes"), "{flash}");

    // Amazon itself refuses an expired or unknown code: invalid_grant.
    let consent = start_connect(&w.app, &w.app.client).await;
    let flash = callback(
        &w.app,
        &w.app.client,
        &[("code", "ANexpired"), ("state", &consent["state"])],
    )
    .await;
    assert!(flash.contains("did not accept the sign-in code"), "{flash}");
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0
    );
}

#[tokio::test]
async fn every_login_with_amazon_error_becomes_a_message() {
    let w = world(1).await;
    for (status, error, expected) in [
        (400, "invalid_request", "did not accept the sign-in code"),
        (
            401,
            "invalid_client",
            "Login with Amazon settings are not accepted",
        ),
        (
            400,
            "unsupported_grant_type",
            "Login with Amazon settings are not accepted",
        ),
        (400, "invalid_grant", "did not accept the sign-in code"),
    ] {
        let consent = start_connect(&w.app, &w.app.client).await;
        let code = w.amazon.allow(&consent["code_challenge"]);
        w.amazon.lwa.0.lock().unwrap().next_error =
            Some((status, json!({"error": error, "error_description": "x"})));
        let flash = callback(
            &w.app,
            &w.app.client,
            &[("code", &code), ("state", &consent["state"])],
        )
        .await;
        assert!(flash.contains(expected), "{error}: {flash}");
    }
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0
    );
}

#[tokio::test]
async fn access_tokens_are_refreshed_ahead_of_expiry_and_shared_by_concurrent_callers() {
    let w = world(1).await;
    connect(&w).await;
    let state = &w.app.state.deps;
    // Fresh: no refresh.
    tokens::access_token(state, &store(), None).await.unwrap();
    assert_eq!(w.amazon.lwa.0.lock().unwrap().refreshes, 0);
    // Within five minutes of expiry: three concurrent callers, one refresh.
    w.app.clock.advance(Duration::minutes(56));
    let id = store();
    let (a, b, c) = tokio::join!(
        tokens::access_token(state, &id, None),
        tokens::access_token(state, &id, None),
        tokens::access_token(state, &id, None)
    );
    let (a, b, c) = (a.unwrap().0, b.unwrap().0, c.unwrap().0);
    use secrecy::ExposeSecret;
    assert_eq!(a.expose_secret(), "Atza|access-2");
    assert!(a.expose_secret() == b.expose_secret() && b.expose_secret() == c.expose_secret());
    assert_eq!(w.amazon.lwa.0.lock().unwrap().refreshes, 1);
}

#[tokio::test]
async fn a_401_refreshes_once_and_retries() {
    let w = world(1).await;
    connect(&w).await;
    // Amazon stops accepting the current token before its time.
    w.amazon.lwa.0.lock().unwrap().valid_access.clear();
    let state = w.app.state.clone();
    let profiles = tokens::with_token(&state.deps, &store(), |t, r| {
        let state = state.clone();
        async move { state.deps.amazon.ads(r).profiles(&t).await }
    })
    .await
    .unwrap();
    assert_eq!(profiles.len(), 2);
    assert_eq!(w.amazon.lwa.0.lock().unwrap().refreshes, 1);
}

#[tokio::test]
async fn a_revoked_refresh_token_turns_into_needs_reconnect() {
    let w = world(1).await;
    connect(&w).await;
    w.amazon.lwa.0.lock().unwrap().revoked = true;
    w.app.clock.advance(Duration::hours(2));
    let err = tokens::access_token(&w.app.state.deps, &store(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::NeedsReconnect), "{err}");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM amazon_connections WHERE status = 'needs_reconnect' AND refresh_token IS NULL").await, 1);
    let page = w.app.get("/app/stores/st_1").await.text().await.unwrap();
    assert!(page.contains("Needs reconnecting"));
    assert!(page.contains("id=\"connect\""));
    // Reconnecting brings it back.
    w.amazon.lwa.0.lock().unwrap().revoked = false;
    assert!(connect(&w).await.contains("connected"));
}

#[tokio::test]
async fn a_legacy_only_account_is_explained() {
    let w = world(1).await;
    *w.amazon.ads.profiles.lock().unwrap() = json!([legacy_profile(999)]);
    let flash = connect(&w).await;
    assert!(
        flash.contains("no account can use Amazon Attribution"),
        "{flash}"
    );
    let page = w.app.get("/app/stores/st_1").await.text().await.unwrap();
    assert!(page.contains("legacy Attribution-only profiles are not supported"));
    assert_eq!(w.app.count("SELECT COUNT(*) FROM links").await, 0);
}

#[tokio::test]
async fn a_profile_not_enabled_for_attribution_is_explained_not_retried() {
    for (status, body) in [
        (403, json!({"code": "403", "details": "Forbidden"})),
        (
            400,
            json!({"message": "This profileID is not authorized to use Amazon Attribution"}),
        ),
    ] {
        let w = world(1).await;
        w.amazon
            .ads
            .advertisers
            .lock()
            .unwrap()
            .insert("111".into(), (status, body));
        let flash = connect(&w).await;
        assert!(
            flash.contains("no account can use Amazon Attribution"),
            "{flash}"
        );
        let page = w.app.get("/app/stores/st_1").await.text().await.unwrap();
        assert!(
            page.contains("Amazon Attribution is not enabled"),
            "{status}"
        );
        let asked = w
            .amazon
            .server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/advertisers"))
            .count();
        assert_eq!(asked, 1, "not retried");
    }
}

#[tokio::test]
async fn with_two_profiles_the_merchant_chooses() {
    let w = world(2).await;
    *w.amazon.ads.profiles.lock().unwrap() = json!([
        seller_profile(111, "Acme US"),
        seller_profile(222, "Acme Two")
    ]);
    w.amazon.ads.advertisers.lock().unwrap().insert(
        "222".into(),
        (
            200,
            json!([{"advertiserId": 5550001, "advertiserName": "Second Brand"}]),
        ),
    );
    let flash = connect(&w).await;
    assert!(flash.contains("Choose the account"), "{flash}");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM links").await, 0);
    let page = w.app.get("/app/stores/st_1").await.text().await.unwrap();
    assert!(page.contains("Second Brand") && page.contains("Acme Brand"));
    let csrf = w.app.csrf("/app/stores/st_1").await;

    let post = |csrf: String| {
        w.app
            .client
            .post(w.app.url("/app/stores/st_1/amazon/account"))
            .form(&[("csrf", csrf), ("choice", "222:5550001".to_owned())])
            .send()
    };
    assert_eq!(post("forged".into()).await.unwrap().status(), 403);
    assert_eq!(post(csrf).await.unwrap().status(), 303);
    let links = attribution_bridge::store::links::current(&w.app.state.deps.db, &store())
        .await
        .unwrap();
    assert_eq!(links.len(), 2);
    assert!(
        links[0]
            .url
            .contains("maas=maas_adg_api_5550001_static_12_73")
    );
}

#[tokio::test]
async fn affiliate_webhooks_mint_and_retire_links_at_once() {
    let w = world(2).await;
    connect(&w).await;
    w.app
        .send(&affiliate_event("affiliate.created", "st_1", 77, "Zoe"))
        .await;
    let links = attribution_bridge::store::links::current(&w.app.state.deps.db, &store())
        .await
        .unwrap();
    assert!(
        links
            .iter()
            .any(|l| l.affiliate_id == 77 && l.url.contains("aa_adgroupid=a77"))
    );
    w.app.send(&json!({"type": "affiliate.deleted", "data": {"store_id": "st_1", "affiliate": {"id": 77}}})).await;
    let links = attribution_bridge::store::links::current(&w.app.state.deps.db, &store())
        .await
        .unwrap();
    assert!(!links.iter().any(|l| l.affiliate_id == 77));
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM links WHERE affiliate_id = 77 AND retired_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn landing_pages_are_validated_and_give_links_their_creative_id() {
    let w = world(1).await;
    connect(&w).await;
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let set = |url: &str, kind: &str| {
        w.app
            .client
            .post(w.app.url("/app/stores/st_1/landing-pages"))
            .form(&[("csrf", csrf.as_str()), ("url", url), ("kind", kind)])
            .send()
    };
    set("https://www.amazon.de/dp/B00MNV8E0C", "main")
        .await
        .unwrap();
    let flash = flash_of(&w.app.get("/app/stores/st_1").await.text().await.unwrap()).unwrap();
    assert!(flash.contains("www.amazon.com"), "{flash}");
    set(
        "https://www.amazon.com/Trail-Shoe/dp/B00MNV8E0C?th=1",
        "main",
    )
    .await
    .unwrap();
    set("https://www.amazon.com/dp/B07ZZZZZZZ", "extra")
        .await
        .unwrap();
    let links = attribution_bridge::store::links::current(&w.app.state.deps.db, &store())
        .await
        .unwrap();
    let ids: Vec<&str> = links.iter().map(|l| l.landing_page_id.as_str()).collect();
    assert_eq!(ids, ["B00MNV8E0C", "B07ZZZZZZZ"]);
    assert!(
        links[0]
            .url
            .starts_with("https://www.amazon.com/dp/B00MNV8E0C?maas=")
    );
    assert!(links[0].url.ends_with("aa_creativeid=B00MNV8E0C"));
    // The home page's links were retired, not repointed.
    assert_eq!(w.app.count("SELECT COUNT(*) FROM links WHERE landing_page_id = 'home' AND retired_at IS NOT NULL").await, 1);
}

#[tokio::test]
async fn disconnect_deletes_the_tokens() {
    let w = world(1).await;
    connect(&w).await;
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let res = w
        .app
        .client
        .post(w.app.url("/app/stores/st_1/amazon/disconnect"))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0
    );
    let page = w.app.get("/app/stores/st_1").await.text().await.unwrap();
    assert!(page.contains("id=\"connect\""));
}

#[tokio::test]
async fn links_export_as_csv_over_http_and_the_cli() {
    let w = world(2).await;
    connect(&w).await;
    let res = w.app.get("/app/stores/st_1/links.csv").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.starts_with("affiliate_id,affiliate_name,ref_code,landing_page,link\n1,Affiliate 1,aff1,home,https://www.amazon.com/?maas="));
    let env = test_env(&w.app.db, &w.app.secret, &w.app.encryption_key);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(["export", "--store", "st_1", "--links"])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), csv);
    // Another store's export is not reachable from this session.
    assert_eq!(w.app.get("/app/stores/st_2/links.csv").await.status(), 404);
}

#[tokio::test]
async fn uninstall_deletes_amazon_tokens_and_redact_leaves_nothing() {
    let w = world(2).await;
    connect(&w).await;
    w.app.send(&store_event("app.uninstalled", "st_1")).await;
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM links WHERE store_id = 'st_1'")
            .await,
        2,
        "history kept"
    );
    w.app.send(&store_event("store.redact", "st_1")).await;
    assert_eq!(w.app.columns_containing("st_1").await, Vec::<String>::new());
}

#[tokio::test]
async fn connect_requires_the_pages_csrf_token() {
    // Another site cannot send a merchant's browser off to bind their Amazon grant to its store.
    let w = world(1).await;
    let res = w.app.get("/app/amazon/connect?region=NA").await;
    assert_eq!(res.status(), 403);
    let res = w.app.get("/app/amazon/connect?region=NA&csrf=guess").await;
    assert_eq!(res.status(), 403);
    assert_eq!(w.app.count("SELECT COUNT(*) FROM oauth_states").await, 0);
}

#[tokio::test]
async fn an_uninstall_while_amazon_answers_the_callback_keeps_no_token() {
    let w = world(1).await;
    let consent = start_connect(&w.app, &w.app.client).await;
    let code = w.amazon.allow(&consent["code_challenge"]);
    w.amazon.lwa.0.lock().unwrap().delay_ms = 800;
    let mut url = url::Url::parse(&w.app.url("/oauth/amazon/callback")).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &consent["state"]);
    let in_flight = tokio::spawn({
        let client = w.app.client.clone();
        async move { client.get(url).send().await.unwrap().status() }
    });
    // Once Amazon holds the token request, the platform uninstalls the app.
    let mut asked = false;
    for _ in 0..200 {
        let requests = w.amazon.server.received_requests().await.unwrap();
        if requests.iter().any(|r| r.url.path() == "/auth/o2/token") {
            asked = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(asked);
    w.app.send(&store_event("app.uninstalled", "st_1")).await;
    assert_eq!(in_flight.await.unwrap(), 303);
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM amazon_connections").await,
        0,
        "no token kept"
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM sessions WHERE store_id = 'st_1'")
            .await,
        0,
        "the session is not revived"
    );
}
