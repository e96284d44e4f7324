//! Install, uninstall, reinstall, redaction and retention of a store.
use attribution_bridge::store::stores;
use chrono::Duration;

use crate::helpers::*;

#[tokio::test]
async fn uninstall_twice_and_before_install_both_answer_200() {
    let app = spawn_app().await;
    assert_eq!(
        app.send(&store_event("app.uninstalled", "st_never")).await,
        "processed"
    );
    app.assert_rows("stores", 0).await;

    app.install("st_1", "gpat_one").await;
    assert_eq!(
        app.send(&store_event("app.uninstalled", "st_1")).await,
        "processed"
    );
    assert_eq!(
        app.send(&store_event("app.uninstalled", "st_1")).await,
        "processed"
    );
    let store = app.store("st_1").await;
    assert_eq!(store.status.as_str(), "uninstalled");
    assert_eq!(store.uninstalled_at, Some(app.clock_now()));
}

#[tokio::test]
async fn uninstall_deletes_tokens_ends_sessions_and_keeps_history() {
    let app = app_with_store("st_1", "gpat_one", &[(1, "Alice")]).await;
    assert_eq!(app.open_store("st_1").await.status(), 303);
    assert_eq!(app.get("/app/stores/st_1").await.status(), 200);

    app.send(&store_event("app.uninstalled", "st_1")).await;
    app.assert_rows("program_credentials", 0).await;
    app.assert_rows("sessions", 0).await;
    app.assert_rows("affiliates WHERE store_id = 'st_1'", 1)
        .await;
    // The merchant's open page is closed at once, and the load link no longer opens it.
    assert_eq!(app.get("/app/stores/st_1").await.status(), 401);
    assert_eq!(app.open_store("st_1").await.status(), 404);
    // Roster changes for an uninstalled store are not acted on.
    assert_eq!(app.add_affiliate("st_1", 2, "Bob").await, "ignored");
}

#[tokio::test]
async fn a_reinstall_brings_the_store_back_with_its_new_token() {
    let app = spawn_app().await;
    app.install("st_1", "gpat_old").await;
    app.send(&store_event("app.uninstalled", "st_1")).await;
    app.clock.advance(Duration::days(3));
    app.install("st_1", "gpat_new").await;
    let store = app.store("st_1").await;
    assert_eq!(store.status.as_str(), "active");
    assert_eq!(store.uninstalled_at, None);
    assert_eq!(store.installed_at, app.clock_now());
    assert_eq!(app.program_token("st_1").await, "gpat_new");
    assert_eq!(app.open_store("st_1").await.status(), 303);
}

#[tokio::test]
async fn a_second_install_of_an_active_store_updates_it() {
    let app = spawn_app().await;
    app.install("st_1", "gpat_old").await;
    let mut event = install_event("st_1", "gpat_rotated");
    event["data"]["store"]["name"] = "Acme Renamed".into();
    assert_eq!(app.send(&event).await, "processed");
    assert_eq!(app.store("st_1").await.name, "Acme Renamed");
    assert_eq!(app.program_token("st_1").await, "gpat_rotated");
    app.assert_rows("stores", 1).await;
}

#[tokio::test]
async fn redact_leaves_no_row_of_the_store() {
    let app = spawn_app().await;
    app.install("st_redact", "gpat_r").await;
    app.install("st_keep", "gpat_k").await;
    app.add_affiliate("st_redact", 1, "Alice").await;
    app.add_affiliate("st_keep", 1, "Kim").await;
    app.open_store("st_redact").await;
    // A report row a sync that died left staged.
    app.execute(
        "INSERT INTO report_rows VALUES (1, 'st_redact', true, 1, '2026-11-18', 'ab_st_redact', \
         'a1', true, 1, 0, 0, 1, 1, 100, 1, 1, 100, 0)",
    )
    .await;
    assert!(!app.columns_containing("st_redact").await.is_empty());

    assert_eq!(
        app.send(&store_event("store.redact", "st_redact")).await,
        "processed"
    );
    assert_eq!(
        app.columns_containing("st_redact").await,
        Vec::<String>::new()
    );
    // Other stores are untouched, and redacting again (or an unknown store) is fine.
    app.assert_rows("affiliates WHERE store_id = 'st_keep'", 1)
        .await;
    assert_eq!(
        app.send(&store_event("store.redact", "st_redact")).await,
        "processed"
    );
}

#[tokio::test]
async fn uninstalled_stores_are_purged_after_the_retention_period() {
    let app = spawn_app_setting("APP__PLATFORM__RETENTION_DAYS", "30").await;
    app.install("st_old", "t").await;
    app.install("st_recent", "t").await;
    app.install("st_active", "t").await;
    app.send(&store_event("app.uninstalled", "st_old")).await;
    app.clock.advance(Duration::days(2));
    app.send(&store_event("app.uninstalled", "st_recent")).await;

    app.clock.advance(Duration::days(29));
    let purged = stores::purge_expired(&app.state.deps.db, app.clock_now(), 30)
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(app.columns_containing("st_old").await, Vec::<String>::new());
    let ids: Vec<String> = stores::list(&app.state.deps.db)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, ["st_active", "st_recent"]);
}
