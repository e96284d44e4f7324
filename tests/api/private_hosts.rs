//! An install's program URL may not point at loopback, link-local, private or other non-public
//! addresses unless the host is allowed (DESIGN §7): IP literals, user-info and plain http are
//! refused at install; a name resolving to such an address is refused before any connection.
use std::net::IpAddr;

use attribution_bridge::{flows::roster, store::jobs};
use serde_json::Value;

use crate::{helpers::*, world::*};

/// Posts an install of `store_id` naming `api_url`; returns the status and the answer.
async fn install_at(app: &TestApp, store_id: &str, api_url: &str) -> (u16, Value) {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let res = app
        .deliver(&id, &install_event_at(store_id, "gpat_secret", api_url))
        .await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Asserts that nothing of any install was kept: no store, no delivery, no token.
async fn assert_nothing_stored(app: &TestApp) {
    app.assert_rows("stores", 0).await;
    app.assert_rows("webhook_inbox", 0).await;
    assert!(app.columns_containing("gpat_secret").await.is_empty());
}

#[tokio::test]
async fn installs_naming_private_addresses_or_user_info_are_400_and_store_nothing() {
    let app = spawn_app().await;
    for api_url in [
        "http://10.0.0.5/v1",
        "https://192.168.1.1",
        "https://[fd00::1]/",
        "https://169.254.169.254/",
        "https://user:pw@api.example/",
        "https://0.0.0.0/v1",
        "https://[::]/v1",
        "https://[::ffff:10.0.0.1]/v1",
        "https://100.64.0.1/v1",
        "https://localhost/v1",
    ] {
        let (status, answer) = install_at(&app, "st_1", api_url).await;
        assert_eq!(status, 400, "{api_url}: {answer}");
        assert_eq!(answer["code"], "malformed_payload", "{api_url}");
        let detail = answer["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("program.api_url"), "{api_url}: {detail}");
        assert_nothing_stored(&app).await;
    }
    // A public https host is accepted: whether it resolves somewhere private is decided later.
    let (status, answer) = install_at(&app, "st_1", "https://api.partner.example/v1").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        app.store("st_1").await.program_api_url.as_deref(),
        Some("https://api.partner.example/v1")
    );
}

#[tokio::test]
async fn loopback_is_accepted_only_while_it_is_listed() {
    let app =
        spawn_app_with(|env| env.retain(|(k, _)| k != "APP__PROGRAM__ALLOWED_PRIVATE_HOSTS")).await;
    let (status, answer) = install_at(&app, "st_1", "http://127.0.0.1:9/v1").await;
    assert_eq!(status, 400, "{answer}");
    assert_nothing_stored(&app).await;

    let listed = spawn_app().await;
    let (status, answer) = install_at(&listed, "st_1", "http://127.0.0.1:9/v1").await;
    assert_eq!(status, 200, "{answer}");
}

const HOST: &str = "program.partner.test";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Store st_1 whose program is `scheme://program.partner.test:{port}/v1`, the name resolving to
/// `resolves_to`, with one sale of affiliate 1 in Amazon's report.
fn partner_world(scheme: &str, resolves_to: &str) -> WorldBuilder {
    store_with(1)
        .program_at(scheme, HOST, ip(resolves_to))
        .setting("APP__JOBS__RETRY_SCHEDULE_SECS", "5,300,1800")
        .setting("APP__PROGRAM__REQUEST_TIMEOUT_SECS", "2")
        .sales("20261101", &[(1, "10.00")])
}

#[tokio::test]
async fn a_program_name_resolving_to_a_private_address_is_refused_before_connecting() {
    let w = partner_world("https", "10.1.2.3").opened().await;
    // The roster cannot be read, so the affiliate arrives by webhook.
    assert_eq!(
        w.app.add_affiliate("st_1", 1, "Affiliate 1").await,
        "processed"
    );
    let flash = w.connect_amazon(&[]).await;
    assert!(flash.contains("connected"), "{flash}");

    // A roster read fails, and says why.
    let err = roster::sync(&w.app.state.deps, &store_id("st_1"))
        .await
        .expect_err("the roster read is refused");
    assert!(
        err.to_string()
            .contains("program.partner.test resolves to 10.1.2.3, a private address"),
        "{err}"
    );

    // The push goes straight to the dead letters, saying why.
    w.sync_now().await;
    let dead = jobs::dead_letters(&w.app.state.deps.db, Some(&store_id("st_1")), None)
        .await
        .unwrap();
    let [letter] = dead.as_slice() else {
        panic!("one dead letter, not {}", dead.len());
    };
    let error = letter.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("10.1.2.3") && error.contains("private address (RFC 1918)"),
        "{error}"
    );
    w.app
        .assert_rows("orders WHERE push_state = 'dead'", 1)
        .await;

    // Nothing reached the program: no roster read, no order.
    let received = w.program.server.received_requests().await.unwrap();
    assert!(received.is_empty(), "{} requests", received.len());
    assert_eq!(w.orders.count(), 0);
}

#[tokio::test]
async fn the_same_name_listed_as_allowed_and_resolving_to_loopback_gets_its_orders() {
    let w = partner_world("http", "127.0.0.1")
        .setting(
            "APP__PROGRAM__ALLOWED_PRIVATE_HOSTS",
            &format!("127.0.0.1,{HOST}"),
        )
        .connected()
        .await;
    assert_eq!(w.links().await.len(), 1, "the roster was read");
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1);
    let order = w
        .orders
        .current("AMZ-ab_st_1-a1-20261101")
        .expect("the program has the order");
    assert_eq!(order["commission"].as_str(), Some("1.00"));
    w.app
        .assert_rows("orders WHERE push_state = 'pushed'", 1)
        .await;
}
