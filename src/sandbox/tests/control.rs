use base64::{Engine, engine::general_purpose::STANDARD as B64};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::program::install;
use super::{Harness, SECRET, ad_groups, start_time};

/// An independent check of a Standard Webhooks signature, as the app will do it.
fn expected_signature(content: &str) -> String {
    let key = B64.decode(SECRET.strip_prefix("whsec_").unwrap()).unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(content.as_bytes());
    format!("v1,{}", B64.encode(mac.finalize().into_bytes()))
}

#[test]
fn the_signer_matches_the_standard_webhooks_test_vector() {
    let key = B64.decode("C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    let parts: [&[u8]; 3] = [
        b"msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        b"1649367553",
        br#"{"email":"test@example.com","username":"test_user"}"#,
    ];
    assert_eq!(
        super::super::sign_with(&key, &parts),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[actix_web::test]
async fn installing_a_demo_store_sends_a_signed_webhook_then_opens_the_app() {
    let h = Harness::start().await;
    let resp = h.post("/sandbox/demo-stores").await;
    assert_eq!(resp.status(), 303);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/app/load");
    let q: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    let ts = start_time().timestamp().to_string();
    assert_eq!(q[0], ("store_id".into(), "st_demo_1".into()));
    assert_eq!(q[1], ("timestamp".into(), ts.clone()));
    assert_eq!(
        q[2],
        (
            "signature".into(),
            expected_signature(&format!("st_demo_1.{ts}"))
        )
    );
    assert!(
        location.query().unwrap().contains("signature=v1%2C"),
        "query values are URL-encoded"
    );

    let d = h.rx.deliveries.lock().unwrap()[0].clone();
    assert!(d.id.starts_with("msg_"));
    assert_eq!(d.timestamp, ts);
    assert_eq!(
        d.signature,
        expected_signature(&format!("{}.{}.{}", d.id, d.timestamp, d.body))
    );
    let event: Value = serde_json::from_str(&d.body).unwrap();
    let token = event["data"]["program"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        event,
        json!({"type": "app.installed", "timestamp": "2026-11-20T18:00:00Z", "data": {
        "store": {"id": "st_demo_1", "name": "Demo Outdoors 1", "url": "https://demo1.example", "currency": "USD"},
        "program": {"access_token": token, "api_url": h.sandbox.program_api_url().as_str(),
                    "default_commission": {"type": "percentage", "value": "10"}}}})
    );
    assert_eq!(
        h.sandbox.program_api_url().as_str(),
        h.url("/sandbox/program/v1")
    );

    let open = h.post("/sandbox/demo-stores/st_demo_1/open").await;
    assert_eq!(open.status(), 303);
    assert!(
        open.headers()["location"]
            .to_str()
            .unwrap()
            .contains("/app/load?store_id=st_demo_1&timestamp=")
    );
    let room = h.get("/sandbox").await.text().await.unwrap();
    assert!(
        room.contains("sandbox-banner")
            && room.contains("Demo Outdoors 1")
            && room.contains("Install a demo store")
    );
}

#[actix_web::test]
async fn a_refused_install_shows_what_the_app_answered() {
    let h = Harness::start().await;
    *h.rx.status.lock().unwrap() = 401;
    let resp = h.post("/sandbox/demo-stores").await;
    assert_eq!(resp.status(), 502);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("401") && page.contains("store refused") && page.contains("sandbox-banner"),
        "{page}"
    );
    let open = h.post("/sandbox/demo-stores/st_demo_1/open").await;
    assert_eq!(
        open.status(),
        409,
        "a store the app never accepted cannot be opened"
    );
}

#[actix_web::test]
async fn uninstall_revokes_the_program_token_and_tells_the_app() {
    let h = Harness::start().await;
    let (store, token, api) = install(&h).await;
    let resp = h
        .post(&format!("/sandbox/demo-stores/{store}/uninstall"))
        .await;
    assert_eq!(resp.status(), 303);
    let last = h.rx.deliveries.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&last.body).unwrap()["type"],
        "app.uninstalled"
    );
    let (roster_status, _) = h
        .program_get(&format!("{api}/admin/affiliates?fields=id"), &token)
        .await;
    assert_eq!(roster_status, 401);
}

#[actix_web::test]
async fn state_survives_a_restart_from_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sandbox/state.json");
    let (refresh, token, api_path, number) = {
        let h = Harness::with_state(Some(file.clone())).await;
        let (access, refresh) = h.tokens().await;
        h.click_links(&access, "c1", &ad_groups(3)).await;
        h.restate("2026-11-10", "up").await;
        let (_, token, api) = install(&h).await;
        let api_path = api.strip_prefix(&h.base).unwrap().to_owned();
        let (_, roster) = h
            .program_get(&format!("{api}/admin/affiliates?fields=id"), &token)
            .await;
        let body = json!({"number": "AMZ-1", "affiliate_id": roster["affiliates"][0]["id"], "total": 10.5, "commission": 1.05});
        let (status, _) = h
            .program_post(&format!("{api}/admin/orders"), &token, body)
            .await;
        assert_eq!(status, 200);
        (refresh, token, api_path, "AMZ-1")
    };
    assert!(file.exists());
    assert!(
        !dir.path().join("sandbox/state.json.tmp").exists(),
        "written through a temporary file and renamed"
    );

    let h = Harness::with_state(Some(file)).await;
    let (status, body) = h.refresh(&refresh).await;
    assert_eq!(status, 200, "the grant survived: {body}");
    let access = body["access_token"].as_str().unwrap();
    let (_, report) = h
        .report(
            access,
            json!({"startDate": "20261110", "endDate": "20261110", "groupBy": "ADGROUP"}),
        )
        .await;
    assert_eq!(
        report["reports"].as_array().unwrap().len(),
        3,
        "the clicked links survived"
    );
    assert_eq!(h.sandbox.read(|s| s.restatements.len()), 1);
    let orders = h.url(&format!(
        "{api_path}/admin/orders?number={number}&fields=number,total"
    ));
    let (_, found) = h.program_get(&orders, &token).await;
    assert_eq!(
        found,
        json!({"orders": [{"number": "AMZ-1", "total": 10.5}]}),
        "the store, its token and its orders survived"
    );
}

/// What a forged form could change: deliveries to the app, stores and their rosters, grants,
/// codes, clicks and restatements.
fn footprint(h: &Harness) -> String {
    let deliveries = h.rx.deliveries.lock().unwrap().len();
    h.sandbox.read(|s| {
        let stores: Vec<_> = s
            .stores
            .iter()
            .map(|st| (st.installed, st.affiliates.len(), st.access_token.clone()))
            .collect();
        format!(
            "{deliveries} {stores:?} {} {} {} {} {}",
            s.refresh_tokens.len(),
            s.access_tokens.len(),
            s.codes.len(),
            s.clicks.len(),
            s.restatements.len()
        )
    })
}

#[actix_web::test]
async fn sandbox_forms_without_their_csrf_token_are_refused_and_change_nothing() {
    let h = Harness::start().await;
    let (store, _, _) = install(&h).await;
    let (access, _) = h.tokens().await;
    // A tagged link, valid for the click form (the tag call switches measurement on).
    let path = format!(
        "/attribution/tags/nonMacroTemplateTag?publisherIds=12&advertiserIds={}",
        h.advertiser()
    );
    let tags: Value = h.api_json(&path, &access, Some(&h.profile())).await;
    let tag = tags[h.advertiser()]["12"].as_str().unwrap();
    let link = format!(
        "https://www.amazon.com/{}",
        tag.replace("{insertCampaign}", "c1")
            .replace("{insertAdGroupId}", "a1")
            .replace("{insertCreativeId}", "home")
    );
    let before = footprint(&h);

    // Another browser's token (bound to its own cookie), and a browser with no cookie at all.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = other.get(h.url("/sandbox")).send().await.unwrap();
    let foreign = super::csrf_of(&page.text().await.unwrap()).unwrap();
    let own = h.csrf().await;
    let cookieless = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let callback = h.callback();
    let fields = [
        ("date", "2026-11-10"),
        ("direction", "down"),
        ("links", link.as_str()),
        ("decision", "allow"),
        ("client_id", super::super::CLIENT_ID),
        ("redirect_uri", callback.as_str()),
        ("scope", "advertising::campaign_management"),
        ("state", "st"),
    ];
    let forms = [
        "/sandbox/demo-stores".to_owned(),
        format!("/sandbox/demo-stores/{store}/open"),
        format!("/sandbox/demo-stores/{store}/affiliates"),
        format!("/sandbox/demo-stores/{store}/uninstall"),
        format!("/sandbox/demo-stores/{store}/reinstall"),
        "/sandbox/amazon/revoke".to_owned(),
        "/sandbox/amazon/restate".to_owned(),
        "/sandbox/amazon/clicks".to_owned(),
        "/sandbox/amazon/ap/oa/decision".to_owned(),
    ];
    for form in &forms {
        for (client, csrf) in [
            (&h.http, None),
            (&h.http, Some("d3Jvbmc")),
            (&h.http, Some(foreign.as_str())),
            (&cookieless, Some(own.as_str())),
        ] {
            let mut body = fields.to_vec();
            body.extend(csrf.map(|c| ("csrf", c)));
            let resp = client.post(h.url(form)).form(&body).send().await.unwrap();
            assert_eq!(resp.status(), 403, "{form} with {csrf:?}");
            assert!(resp.text().await.unwrap().contains("sandbox-banner"));
        }
    }
    // A cross-site "simple" request that mentions JSON in its media type is a form all the same.
    let resp = h
        .http
        .post(h.url("/sandbox/amazon/clicks"))
        .header("content-type", "text/plain; json")
        .body(serde_json::to_string(&serde_json::json!({ "links": [link] })).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(footprint(&h), before, "a refused form changed nothing");

    // The page's own token is accepted (the click form, which also takes JSON without one).
    let resp = h
        .submit("/sandbox/amazon/clicks", &[("links", link.as_str())])
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(h.sandbox.read(|s| s.clicks.len()), 1);
}
