//! POST /webhooks/platform: the order of checks, the status codes and dedupe (DESIGN §4.1).
use attribution_bridge::webhooks::verify::Verifier;
use serde_json::{Value, json};

use crate::helpers::*;

async fn stores(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM stores").await
}

/// An install of st_1 as delivery msg_1, signed now with the app's secret: its body, timestamp
/// and signature.
fn install_signed_now(app: &TestApp) -> (Vec<u8>, String, String) {
    let body = install_body("st_1");
    let ts = app.now().to_string();
    let sig = app.sign("msg_1", &ts, &body);
    (body, ts, sig)
}

/// Posts an install of `store_id` as delivery `id`, signed with `secret` alone (a secret the app
/// may or may not know).
async fn install_signed_with(
    app: &TestApp,
    secret: String,
    id: &str,
    store_id: &str,
) -> reqwest::Response {
    let signer = Verifier::new(&[secret.into()], 300).unwrap();
    app.post_signed_with(&signer, id, install_body(store_id))
        .await
}

/// Asserts that no store and no delivery in the inbox were recorded.
async fn assert_nothing_stored(app: &TestApp) {
    let inbox = app.count("SELECT COUNT(*) FROM webhook_inbox").await;
    assert_eq!((stores(app).await, inbox), (0, 0));
}

/// The JSON bytes of an install of store `store_id` with token "t".
fn install_body(store_id: &str) -> Vec<u8> {
    serde_json::to_vec(&install_event(store_id, "t")).unwrap()
}

#[tokio::test]
async fn a_signed_install_creates_the_store() {
    let app = spawn_app().await;
    app.install("st_1001", "gpat_token").await;
    let store = app.store("st_1001").await;
    assert_eq!(store.status.as_str(), "active");
    assert_eq!(store.currency, "USD");
    assert_eq!(
        (
            store.commission_type.as_str(),
            store.commission_value.as_str()
        ),
        ("percentage", "10")
    );
}

#[tokio::test]
async fn a_tampered_body_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (body, ts, sig) = install_signed_now(&app);
    let mut tampered = body.clone();
    let pos = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[pos] = b'2';
    let res = app
        .post_raw(Some("msg_1"), Some(&ts), Some(&sig), tampered)
        .await;
    assert_eq!(res.status(), 401);
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let app = spawn_app().await;
    let res = install_signed_with(&app, random_secret(), "msg_1", "st_1").await;
    assert_eq!(res.status(), 401);
    assert_eq!(stores(&app).await, 0);
}

#[tokio::test]
async fn the_second_secret_of_a_rotation_is_accepted() {
    let new_secret = random_secret();
    let app = {
        let new_secret = new_secret.clone();
        spawn_app_with(move |env| {
            let old = env
                .iter()
                .find(|(k, _)| k == "APP__PLATFORM__WEBHOOK_SECRETS")
                .unwrap()
                .1
                .clone();
            env.push((
                "APP__PLATFORM__WEBHOOK_SECRETS".into(),
                format!("{new_secret}, {old}"),
            ));
        })
        .await
    };
    // The helper signs with the old secret (now second in the list)…
    app.install("st_1", "t").await;
    // …and the platform may already sign with the new one.
    let res = install_signed_with(&app, new_secret, "msg_new", "st_2").await;
    assert_eq!(res.status(), 200);
    assert_eq!(stores(&app).await, 2);
}

#[tokio::test]
async fn each_missing_header_is_refused() {
    let app = spawn_app().await;
    let (body, ts, sig) = install_signed_now(&app);
    for (id, t, s) in [
        (None, Some(ts.as_str()), Some(sig.as_str())),
        (Some("msg_1"), None, Some(sig.as_str())),
        (Some("msg_1"), Some(ts.as_str()), None),
    ] {
        let res = app.post_raw(id, t, s, body.clone()).await;
        assert_eq!(res.status(), 401);
        let detail: Value = res.json().await.unwrap();
        assert!(
            detail["detail"]
                .as_str()
                .unwrap()
                .contains("missing webhook-"),
            "{detail}"
        );
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn timestamps_outside_tolerance_or_hostile_are_refused() {
    let app = spawn_app().await;
    let body = install_body("st_1");
    let now = app.now();
    for ts in [
        (now - 301).to_string(),
        (now + 301).to_string(),
        (-now).to_string(),
        "soon".to_owned(),
        i64::MIN.to_string(),
        u64::MAX.to_string(),
    ] {
        // Correctly signed over the hostile timestamp: only the timestamp is wrong.
        let sig = app.sign("msg_ts", &ts, &body);
        let res = app
            .post_raw(Some("msg_ts"), Some(&ts), Some(&sig), body.clone())
            .await;
        assert_eq!(res.status(), 401, "timestamp {ts}");
    }
    assert_nothing_stored(&app).await;
    // At the edge of the tolerance it is still accepted.
    let ts = (now - 300).to_string();
    let sig = app.sign("msg_edge", &ts, &body);
    assert_eq!(
        app.post_raw(Some("msg_edge"), Some(&ts), Some(&sig), body)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let app = spawn_app_setting("APP__PLATFORM__WEBHOOK_BODY_LIMIT_BYTES", "2048").await;
    let mut event = install_event("st_1", "t");
    event["data"]["padding"] = json!("x".repeat(4096));
    let res = app.deliver("msg_big", &event).await;
    assert_eq!(res.status(), 413);
    assert_eq!(stores(&app).await, 0);
}

#[tokio::test]
async fn a_signed_but_malformed_body_is_400_and_changes_nothing() {
    let app = spawn_app().await;
    for body in [
        b"{not json".to_vec(),
        serde_json::to_vec(&json!({"type":"app.installed","data":{"store":{"id":"st_1"}}}))
            .unwrap(),
        serde_json::to_vec(
            &json!({"type":"affiliate.created","data":{"store_id":"st_1","affiliate":{"id":-4}}}),
        )
        .unwrap(),
    ] {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let res = app.post_signed(&id, body).await;
        assert_eq!(res.status(), 400);
    }
    assert_nothing_stored(&app).await;
}

#[tokio::test]
async fn an_unknown_event_type_is_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let status = app
        .send(&json!({"type":"order.refunded","timestamp":"2026-11-20T10:00:00Z","data":{}}))
        .await;
    assert_eq!(status, "ignored");
    app.assert_rows(
        "webhook_inbox WHERE event_type = 'order.refunded' AND outcome = 'ignored'",
        1,
    )
    .await;
}

#[tokio::test]
async fn the_same_delivery_twice_is_processed_once() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    let event = affiliate_event("affiliate.created", "st_1", 7, "Alice");
    let first = app.deliver("msg_dup", &event).await;
    assert_eq!(first.json::<Value>().await.unwrap()["status"], "processed");
    // Meanwhile the affiliate was renamed; a replay of the old delivery must not undo that.
    app.send(&affiliate_event("affiliate.updated", "st_1", 7, "Alicia"))
        .await;
    let again = app.deliver("msg_dup", &event).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "duplicate");
    app.assert_rows("affiliates WHERE name = 'Alicia'", 1).await;
}

#[tokio::test]
async fn two_identical_deliveries_racing_are_processed_once() {
    let app = spawn_app().await;
    let event = install_event("st_race", "t");
    let (a, b) = tokio::join!(
        app.deliver("msg_race", &event),
        app.deliver("msg_race", &event)
    );
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    let mut receipts = vec![
        a.json::<Value>().await.unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned(),
        b.json::<Value>().await.unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];
    receipts.sort();
    assert_eq!(receipts, ["duplicate", "processed"]);
    app.assert_rows("webhook_inbox WHERE webhook_id = 'msg_race'", 1)
        .await;
    assert_eq!(stores(&app).await, 1);
}

#[tokio::test]
async fn affiliate_events_keep_the_roster() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    assert_eq!(app.add_affiliate("st_1", 1, "Alice").await, "processed");
    assert_eq!(app.add_affiliate("st_1", 2, "Bob").await, "processed");
    assert_eq!(
        app.send(&affiliate_event("affiliate.updated", "st_1", 2, "Robert"))
            .await,
        "processed"
    );
    let deleted = affiliate_deleted_event("st_1", 1);
    assert_eq!(app.send(&deleted).await, "processed");
    let current =
        attribution_bridge::store::affiliates::list_current(&app.state.deps.db, &store_id("st_1"))
            .await
            .unwrap();
    let names: Vec<_> = current
        .iter()
        .map(|a| (a.affiliate_id, a.name.as_str()))
        .collect();
    assert_eq!(names, [(2, "Robert")]);
    // Events for a store we do not serve are acknowledged and ignored.
    assert_eq!(app.add_affiliate("st_unknown", 3, "Eve").await, "ignored");
    app.assert_rows("affiliates WHERE store_id = 'st_unknown'", 0)
        .await;
}

#[tokio::test]
async fn a_commission_update_replaces_the_default_commission() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    let event = commission_event("st_1", "flat", "2.50");
    assert_eq!(app.send(&event).await, "processed");
    app.assert_rows(
        "stores WHERE commission_type = 'flat' AND commission_value = '2.5'",
        1,
    )
    .await;
}
