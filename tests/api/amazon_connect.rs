//! The whole connect flow over real sockets: load link → connect → consent → callback →
//! profile/advertiser → links, against doubles of Login with Amazon, the Ads API and the program.
use std::collections::HashMap;

use attribution_bridge::{flows::tokens, flows::tokens::AuthError};
use chrono::Duration;
use serde_json::json;

use crate::{doubles::*, helpers::*, world::*};

/// The store with `affiliates` affiliates, installed and opened; Amazon not connected.
async fn world(affiliates: usize) -> World {
    store_with(affiliates).opened().await
}

/// Connects Amazon with the campaign-management scope in the redirect; returns the flash.
async fn connect(w: &World) -> String {
    w.connect_amazon(&[("scope", "advertising::campaign_management")])
        .await
}

/// Asserts that the flash says `needle` and that no Amazon connection was stored.
async fn assert_refused(w: &World, flash: &str, needle: &str) {
    assert!(flash.contains(needle), "{flash}");
    w.app.assert_rows("amazon_connections", 0).await;
}

fn store() -> attribution_bridge::domain::ids::StoreId {
    store_id("st_1")
}

#[tokio::test]
async fn connecting_mints_one_correct_link_per_affiliate() {
    let w = world(3).await;
    let consent = w.start_connect().await;
    assert_eq!(consent["client_id"], CLIENT_ID);
    assert_eq!(consent["scope"], "advertising::campaign_management");
    assert_eq!(consent["response_type"], "code");
    assert_eq!(
        consent["redirect_uri"],
        "http://127.0.0.1:8080/oauth/amazon/callback"
    );
    assert_eq!(consent["code_challenge_method"], "S256");
    let code = w.amazon.allow(&consent["code_challenge"]);
    let flash = w
        .callback(&[("code", &code), ("state", &consent["state"])])
        .await;
    assert_eq!(
        flash,
        "Amazon is connected. Every affiliate now has a link."
    );

    let links = w.links().await;
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
    w.app
        .assert_rows(
            "amazon_connections WHERE status = 'connected' AND profile_id = 111",
            1,
        )
        .await;
    let page = w.app.page("/app/stores/st_1").await;
    assert!(page.contains("Acme Brand"));
    assert!(
        page.contains(r#"id="link-count">3<"#),
        "three links counted"
    );
    let list = w.app.page("/app/stores/st_1/affiliates").await;
    assert_eq!(list.matches(r#"class="link" readonly"#).count(), 3);
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
    let consent = w.start_connect().await;
    let flash = w
        .callback(&[
            ("error", "access_denied"),
            ("error_description", "The user denied the request"),
            ("state", &consent["state"]),
        ])
        .await;
    assert_refused(&w, &flash, "access was not granted").await;
}

#[tokio::test]
async fn a_replayed_callback_is_refused() {
    let w = world(1).await;
    let consent = w.start_connect().await;
    let code = w.amazon.allow(&consent["code_challenge"]);
    let query = [
        ("code", code.as_str()),
        ("state", consent["state"].as_str()),
    ];
    assert!(w.callback(&query).await.contains("connected"));
    let again = w.callback(&query).await;
    assert!(again.contains("not valid"), "{again}");
    // An unknown state, and none at all.
    assert!(
        w.callback(&[("code", "x"), ("state", "forged")])
            .await
            .contains("not valid")
    );
    assert!(w.callback(&[("code", "x")]).await.contains("not valid"));
}

#[tokio::test]
async fn another_stores_state_is_refused_and_stays_usable_by_its_owner() {
    let w = world(1).await;
    w.app
        .send(&install_event_at("st_2", "gpat_two", &w.program.api_url()))
        .await;
    let consent_a = w.start_connect().await;
    // Another browser, on store st_2, presents st_1's attempt.
    let other = browser_client();
    other
        .get(w.app.load_link("st_2", w.app.now()))
        .send()
        .await
        .unwrap();
    let code = w.amazon.allow(&consent_a["code_challenge"]);
    let query = [
        ("code", code.as_str()),
        ("state", consent_a["state"].as_str()),
    ];
    let flash = w.callback_in(&other, &query).await;
    assert_refused(&w, &flash, "not valid").await;
    let flash = w.callback(&query).await;
    assert!(flash.contains("connected"), "{flash}");
}

#[tokio::test]
async fn an_expired_attempt_or_code_is_explained() {
    let w = world(1).await;
    let consent = w.start_connect().await;
    w.app.clock.advance(Duration::minutes(11));
    let code = w.amazon.allow(&consent["code_challenge"]);
    let flash = w
        .callback(&[("code", &code), ("state", &consent["state"])])
        .await;
    assert!(flash.contains("longer than 10 minutes"), "{flash}");

    // Amazon itself refuses an expired or unknown code: invalid_grant.
    let consent = w.start_connect().await;
    let flash = w
        .callback(&[("code", "ANexpired"), ("state", &consent["state"])])
        .await;
    assert_refused(&w, &flash, "did not accept the sign-in code").await;
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
        let consent = w.start_connect().await;
        let code = w.amazon.allow(&consent["code_challenge"]);
        w.amazon.lwa.0.lock().unwrap().next_error =
            Some((status, json!({"error": error, "error_description": "x"})));
        let flash = w
            .callback(&[("code", &code), ("state", &consent["state"])])
            .await;
        assert!(flash.contains(expected), "{error}: {flash}");
    }
    w.app.assert_rows("amazon_connections", 0).await;
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
    w.app
        .assert_rows(
            "amazon_connections WHERE status = 'needs_reconnect' AND refresh_token IS NULL",
            1,
        )
        .await;
    let page = w.app.page("/app/stores/st_1").await;
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
    let page = w.app.page("/app/stores/st_1").await;
    assert!(page.contains("legacy Attribution-only profiles are not supported"));
    w.app.assert_rows("links", 0).await;
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
        let page = w.app.page("/app/stores/st_1").await;
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
    w.app.assert_rows("links", 0).await;
    let page = w.app.page("/app/stores/st_1").await;
    assert!(page.contains("Second Brand") && page.contains("Acme Brand"));
    let csrf = w.app.csrf("/app/stores/st_1").await;

    let account = "/app/stores/st_1/amazon/account";
    let choice = ("choice", "222:5550001");
    let forged = w
        .app
        .post_form(account, &[("csrf", "forged"), choice])
        .await;
    assert_eq!(forged.status(), 403);
    let chosen = w
        .app
        .post_form(account, &[("csrf", csrf.as_str()), choice])
        .await;
    assert_eq!(chosen.status(), 303);
    let links = w.links().await;
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
    let links = w.links().await;
    assert!(
        links
            .iter()
            .any(|l| l.affiliate_id == 77 && l.url.contains("aa_adgroupid=a77"))
    );
    w.app.send(&affiliate_deleted_event("st_1", 77)).await;
    let links = w.links().await;
    assert!(!links.iter().any(|l| l.affiliate_id == 77));
    w.app
        .assert_rows(
            "links WHERE affiliate_id = 77 AND retired_at IS NOT NULL",
            1,
        )
        .await;
    // One affiliate's events touch that affiliate's links alone.
    w.app
        .assert_rows("links WHERE affiliate_id <> 77 AND retired_at IS NULL", 2)
        .await;
    // Back in the program: the same link again, current.
    w.app
        .send(&affiliate_event("affiliate.created", "st_1", 77, "Zoe"))
        .await;
    w.app
        .assert_rows("links WHERE affiliate_id = 77 AND retired_at IS NULL", 1)
        .await;
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
    let flash = flash_of(&w.app.page("/app/stores/st_1").await).unwrap();
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
    let links = w.links().await;
    let ids: Vec<&str> = links.iter().map(|l| l.landing_page_id.as_str()).collect();
    assert_eq!(ids, ["B00MNV8E0C", "B07ZZZZZZZ"]);
    assert!(
        links[0]
            .url
            .starts_with("https://www.amazon.com/dp/B00MNV8E0C?maas=")
    );
    assert!(links[0].url.ends_with("aa_creativeid=B00MNV8E0C"));
    // The home page's links were retired, not repointed.
    w.app
        .assert_rows(
            "links WHERE landing_page_id = 'home' AND retired_at IS NOT NULL",
            1,
        )
        .await;
}

#[tokio::test]
async fn disconnect_deletes_the_tokens() {
    let w = world(1).await;
    connect(&w).await;
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let res = w
        .app
        .post_form("/app/stores/st_1/amazon/disconnect", &[("csrf", csrf)])
        .await;
    assert_eq!(res.status(), 303);
    w.app.assert_rows("amazon_connections", 0).await;
    let page = w.app.page("/app/stores/st_1").await;
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
    let export = w.app.cli(&["export", "--store", "st_1", "--links"]);
    assert!(export.ok, "{}", export.stderr);
    assert_eq!(export.stdout, csv);
    // Another store's export is not reachable from this session.
    assert_eq!(w.app.get("/app/stores/st_2/links.csv").await.status(), 404);
}

#[tokio::test]
async fn uninstall_deletes_amazon_tokens_and_redact_leaves_nothing() {
    let w = world(2).await;
    connect(&w).await;
    w.app.send(&store_event("app.uninstalled", "st_1")).await;
    w.app.assert_rows("amazon_connections", 0).await;
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
    w.app.assert_rows("oauth_states", 0).await;
}

#[tokio::test]
async fn an_uninstall_while_amazon_answers_the_callback_keeps_no_token() {
    let w = world(1).await;
    let consent = w.start_connect().await;
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
    w.amazon.wait_for_token_request().await;
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

#[tokio::test]
async fn the_sweep_drops_abandoned_sign_in_attempts_and_keeps_live_ones() {
    let w = world(1).await;
    // st_1's merchant clicks "Connect Amazon" and walks away.
    let abandoned = w.start_connect().await;
    // Nine minutes later, st_2's merchant starts signing in.
    w.app.clock.advance(Duration::minutes(9));
    w.app
        .send(&install_event_at("st_2", "gpat_prog", &w.program.api_url()))
        .await;
    let other = browser_client();
    let res = other
        .get(w.app.load_link("st_2", w.app.now()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let page = other
        .get(w.app.url("/app/stores/st_2"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap()).unwrap();
    let res = other
        .get(
            w.app
                .url(&format!("/app/amazon/connect?region=NA&csrf={csrf}")),
        )
        .send()
        .await
        .unwrap();
    let live = consent_query(&res);
    w.app.assert_rows("oauth_states", 2).await;

    // The background sweep, eleven minutes after the first attempt.
    w.app.clock.advance(Duration::minutes(2));
    let db = &w.app.state.deps.db;
    attribution_bridge::store::stores::purge_expired(db, w.app.clock_now(), 30)
        .await
        .unwrap();
    w.app
        .assert_counts(&[
            ("oauth_states WHERE store_id = 'st_1'", 0),
            ("oauth_states WHERE store_id = 'st_2'", 1),
        ])
        .await;
    // The kept attempt still signs its merchant in; the swept one is explained, nothing stored.
    let code = w.amazon.allow(&live["code_challenge"]);
    let flash = w
        .callback_in(&other, &[("code", &code), ("state", &live["state"])])
        .await;
    assert!(flash.contains("connected"), "{flash}");
    let code = w.amazon.allow(&abandoned["code_challenge"]);
    let flash = w
        .callback(&[("code", &code), ("state", &abandoned["state"])])
        .await;
    assert!(flash.contains("Connect Amazon"), "{flash}");
    w.app
        .assert_rows("amazon_connections WHERE store_id = 'st_1'", 0)
        .await;
}

/// A profile whose currency or time zone cannot be read is refused at connect, named with why,
/// rather than read as a default or left to fail the first sync; a readable profile beside it is
/// still chosen.
#[tokio::test]
async fn a_profile_whose_currency_or_time_zone_cannot_be_read_is_refused_at_connect() {
    for (field, value, says) in [
        (
            "currencyCode",
            json!("ABC"),
            ["ABC", "is not an ISO 4217 currency"],
        ),
        ("currencyCode", json!(""), ["Acme", "it has no currency"]),
        ("currencyCode", json!(null), ["Acme", "it has no currency"]),
        (
            "timezone",
            json!("Mars/Olympus"),
            ["Mars/Olympus", "is unknown"],
        ),
    ] {
        let w = world(1).await;
        w.amazon.ads.profiles.lock().unwrap()[0][field] = value.clone();
        let flash = connect(&w).await;
        assert!(
            flash.contains("no account can use Amazon Attribution"),
            "{field} {value}: {flash}"
        );
        let page = w.app.page("/app/stores/st_1").await;
        for part in says {
            assert!(page.contains(part), "{field} {value}: {part}");
        }
        w.app.assert_rows("links", 0).await;
        w.app
            .assert_rows("amazon_connections WHERE currency_code IS NOT NULL", 0)
            .await;
    }
    // Beside a readable profile, the unreadable one is left out and the readable one chosen.
    let w = world(1).await;
    {
        let mut profiles = w.amazon.ads.profiles.lock().unwrap();
        let mut odd = profiles[0].clone();
        odd["profileId"] = json!(222);
        odd["currencyCode"] = json!("ABC");
        profiles.as_array_mut().unwrap().push(odd);
    }
    let flash = connect(&w).await;
    assert!(flash.contains("connected"), "{flash}");
    w.app
        .assert_rows("amazon_connections WHERE currency_code = 'USD'", 1)
        .await;
}
