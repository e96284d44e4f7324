//! "Sync now" on the setup page: repeated clicks do not pile up work. While a sync of the store
//! waits or runs, a click queues nothing and says so; once it ran, the next click queues one.
use attribution_bridge::flows::scheduler;
use chrono::Duration;

use crate::{
    helpers::*,
    sync::{one_order_sync_world, sync_world},
    world::World,
};

/// Clicks "Sync now" with the page's CSRF token; returns the flash of the page it leads to.
async fn click_sync_now(w: &World, csrf: &str) -> String {
    let res = w
        .app
        .post_form("/app/stores/st_1/sync", &[("csrf", csrf)])
        .await;
    assert_eq!(res.status(), 303);
    flash_of(&w.app.page("/app/stores/st_1").await).unwrap_or_default()
}

async fn sync_jobs(w: &World) -> i64 {
    w.app
        .count("SELECT COUNT(*) FROM jobs WHERE kind = 'sync_store'")
        .await
}

#[tokio::test]
async fn fifty_clicks_at_once_queue_one_sync_and_a_click_after_it_ran_queues_the_next() {
    let w = one_order_sync_world().connected().await;
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let mut clicks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (client, url, csrf) = (
            w.app.client.clone(),
            w.app.url("/app/stores/st_1/sync"),
            csrf.clone(),
        );
        clicks.spawn(async move {
            let res = client.post(url).form(&[("csrf", csrf)]).send().await;
            res.unwrap().status()
        });
    }
    while let Some(status) = clicks.join_next().await {
        assert_eq!(status.unwrap(), 303);
    }
    assert_eq!(sync_jobs(&w).await, 1, "exactly one sync queued");

    // One more click while it waits: nothing new, and the merchant is told why.
    let flash = click_sync_now(&w, &csrf).await;
    assert!(flash.contains("already queued or running"), "{flash}");
    assert_eq!(sync_jobs(&w).await, 1);

    w.app.run_due_jobs().await;
    assert_eq!(
        w.orders.count(),
        1,
        "the one sync read and pushed the order"
    );
    let flash = click_sync_now(&w, &csrf).await;
    assert!(flash.starts_with("Sync queued"), "{flash}");
    w.app
        .assert_rows("jobs WHERE kind = 'sync_store' AND status = 'pending'", 1)
        .await;
}

#[tokio::test]
async fn a_click_while_the_daily_sync_waits_for_a_retry_adds_nothing_and_says_when_it_runs() {
    let w = sync_world(1).connected().await;
    // 07:00 in Los Angeles, past the 06:00 default: the daily sync is queued…
    w.app.set_clock("2026-11-20T15:00:00Z");
    let queued = scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now())
        .await
        .unwrap();
    assert_eq!(queued, 1);
    // …and Amazon is down when it runs: it waits for its next try (5 s ± 20 %).
    for _ in 0..5 {
        w.report
            .faults
            .lock()
            .unwrap()
            .push_back(wiremock::ResponseTemplate::new(503));
    }
    w.app.run_one_job().await;
    w.report.faults.lock().unwrap().clear();
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let flash = click_sync_now(&w, &csrf).await;
    assert!(flash.contains("already queued or running"), "{flash}");
    assert!(
        flash.contains("next try is at 2026-11-20 15:00 UTC"),
        "{flash}"
    );
    assert_eq!(sync_jobs(&w).await, 1, "the daily sync reads the same days");

    w.app.clock.advance(Duration::seconds(7));
    w.app.run_due_jobs().await;
    w.app
        .assert_rows("jobs WHERE kind = 'sync_store' AND status = 'done'", 1)
        .await;
    let flash = click_sync_now(&w, &csrf).await;
    assert!(flash.starts_with("Sync queued"), "{flash}");
}
