//! GET /app/load and the store-bound session (DESIGN §4.2).
use crate::helpers::*;

#[tokio::test]
async fn a_signed_load_link_opens_the_stores_setup_page() {
    let app = app_with_store("st_1", "t", &[(42, "Alice")]).await;
    let res = app.open_store("st_1").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/app/stores/st_1");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("ab_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");

    let page = app.get("/app/stores/st_1").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Store st_1"), "store name shown");
    assert!(html.contains("Installed"));
    assert!(html.contains("Connected"), "program connection shown");
    assert!(
        html.contains(r#"id="affiliate-count">1<"#),
        "affiliates counted"
    );
    assert!(html.contains("10% of sales"));
    let list = app
        .get("/app/stores/st_1/affiliates")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("Alice"), "affiliates listed");
}

#[tokio::test]
async fn a_bad_signature_or_an_expired_link_is_refused() {
    let app = app_with_store("st_1", "t", &[]).await;
    let good = app.load_link("st_1", app.now());
    let forged = good.replace("store_id=st_1", "store_id=st_2");
    assert_eq!(app.client.get(forged).send().await.unwrap().status(), 401);
    let tampered = format!("{}A", &good[..good.len() - 4]);
    assert_eq!(app.client.get(tampered).send().await.unwrap().status(), 401);
    let expired = app.load_link("st_1", app.now() - 301);
    assert_eq!(app.client.get(expired).send().await.unwrap().status(), 401);
    let missing = app.url("/app/load?store_id=st_1");
    assert_eq!(app.client.get(missing).send().await.unwrap().status(), 400);
    // None of these opened a session.
    assert_eq!(app.get("/app/stores/st_1").await.status(), 401);
}

#[tokio::test]
async fn another_stores_page_is_404() {
    let app = app_with_store("st_a", "t", &[]).await;
    app.install("st_b", "t").await;
    app.open_store("st_a").await;
    assert_eq!(app.get("/app/stores/st_a").await.status(), 200);
    assert_eq!(app.get("/app/stores/st_b").await.status(), 404);
    assert_eq!(app.get("/app/stores/st_nope").await.status(), 404);
}

#[tokio::test]
async fn pages_without_a_session_ask_to_open_the_app_from_the_program() {
    let app = app_with_store("st_1", "t", &[]).await;
    let res = app.get("/app/stores/st_1").await;
    assert_eq!(res.status(), 401);
    assert!(res.text().await.unwrap().contains("Integrations"));
}

#[tokio::test]
async fn a_link_for_an_unknown_store_is_404() {
    let app = spawn_app().await;
    let res = app
        .client
        .get(app.load_link("st_ghost", app.now()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn metrics_count_webhooks_and_report_the_backlog() {
    let app = app_with_store("st_1", "t", &[]).await;
    app.send(&store_event("app.uninstalled", "st_never")).await;
    app.post_raw(
        Some("msg_bad"),
        Some(&app.now().to_string()),
        Some("v1,AAAA"),
        b"{}".to_vec(),
    )
    .await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(
        text.contains("attribution_bridge_webhooks_total{outcome=\"processed\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("attribution_bridge_webhooks_total{outcome=\"unauthorized\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("attribution_bridge_stores_active 1"),
        "{text}"
    );
    assert!(text.contains("attribution_bridge_jobs_waiting 0"), "{text}");
    assert!(!text.contains("st_1"), "no store data in metrics");
}
