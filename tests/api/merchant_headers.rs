//! Merchant pages, their form redirects, the OAuth callback and the links download are never
//! cached, never sniffed, leak no referrer and may be framed only by the platform's admin
//! (DESIGN §7).
use crate::helpers::*;

/// Asserts the answer's status and the headers every merchant answer carries; `frame_ancestors`
/// as the CSP must say it.
fn assert_merchant_answer(res: &reqwest::Response, status: u16, frame_ancestors: &str, what: &str) {
    assert_eq!(res.status(), status, "{what}");
    let h = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
    };
    assert_eq!(h("cache-control"), "no-store", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(h("referrer-policy"), "same-origin", "{what}");
    let csp = h("content-security-policy");
    assert!(
        csp.ends_with(&format!("frame-ancestors {frame_ancestors}")),
        "{what}: {csp}"
    );
    // Only the app's own script file runs: no inline script, nothing from elsewhere.
    assert!(csp.contains("script-src 'self';"), "{what}: {csp}");
}

#[tokio::test]
async fn merchant_pages_redirects_and_the_csv_are_not_cached_sniffed_or_framed() {
    let app = app_with_store("st_1", "gpat_1", &[(1, "Alice")]).await;
    app.install("st_2", "gpat_2").await;
    let none = "'none'";

    let load = app.open_store("st_1").await;
    assert_merchant_answer(&load, 303, none, "the load link's redirect");

    let page = app.get("/app/stores/st_1").await;
    assert_merchant_answer(&page, 200, none, "the setup page");
    let csrf = csrf_of(&page.text().await.unwrap()).unwrap();

    let form = app
        .post_form("/app/stores/st_1/sync", &[("csrf", csrf.as_str())])
        .await;
    assert_merchant_answer(&form, 303, none, "a form's redirect");

    let csv = app.get("/app/stores/st_1/links.csv").await;
    assert_merchant_answer(&csv, 200, none, "the links download");
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");

    let foreign = app.get("/app/stores/st_2").await;
    assert_merchant_answer(&foreign, 404, none, "another store's page");

    let callback = app.get("/oauth/amazon/callback?error=access_denied").await;
    assert_merchant_answer(&callback, 303, none, "the OAuth callback");

    // Probes and webhooks are for machines: no merchant headers there.
    let health = app.get("/healthz").await;
    assert!(health.headers().get("content-security-policy").is_none());
}

#[tokio::test]
async fn only_the_configured_admin_origin_may_frame_the_pages() {
    let app = spawn_app_setting("APP__PLATFORM__ADMIN_ORIGIN", "https://admin.example.com").await;
    app.install("st_1", "gpat_1").await;
    app.open_store("st_1").await;
    let page = app.get("/app/stores/st_1").await;
    assert_merchant_answer(&page, 200, "https://admin.example.com", "the setup page");
}
