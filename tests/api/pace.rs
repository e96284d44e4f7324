//! Paced pushes (issue 11): every request to a program host waits for that host's turn, the pace
//! drops on a 429 and is the host's own; a push throttled with a short `Retry-After` is tried
//! again within its job run. The pace's rule and its limiter are unit-tested on a fake clock
//! (`src/clients/pace.rs`); nothing here measures wall-clock time.
use attribution_bridge::clients::program::ProgramApp;
use secrecy::SecretString;
use wiremock::{MockServer, ResponseTemplate};

use crate::{
    observability::{sample, scrape},
    retry_after::{Script, created, new_order, serve, settings, throttled_until},
    sync::one_order_sync_world,
};

fn pace_gauge(host: &str) -> String {
    format!("attribution_bridge_program_pace_per_second{{host=\"{host}\"}}")
}

#[tokio::test]
async fn a_push_throttled_once_with_a_short_retry_after_is_pushed_in_the_same_job_run() {
    let w = one_order_sync_world()
        // A Retry-After of 1 s is within the inline cap.
        .setting("APP__PROGRAM__RETRY_CAP_MS", "5000")
        .setting("APP__PROGRAM__MAX_REQUESTS_PER_SEC", "10")
        .connected()
        .await;
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((throttled_until("1"), false));
    w.sync_now().await;

    assert_eq!(w.orders.count(), 1, "created in the same run");
    w.app
        .assert_rows(
            "orders WHERE push_state = 'pushed' AND remote_id IS NOT NULL",
            1,
        )
        .await;
    w.app
        .assert_rows(
            "job_attempts WHERE job_id IN (SELECT id FROM jobs WHERE kind = 'push_order')",
            1,
        )
        .await;
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'done'", 1)
        .await;
    // The 429 halved the program host's pace (its few requests never made 10/s known good).
    let host = w.program.server.address().to_string();
    let text = scrape(&w.app).await;
    assert_eq!(sample(&text, &pace_gauge(&host)), Some(5.0), "{text}");
}

#[tokio::test]
async fn a_push_that_times_out_or_fails_is_left_to_the_schedule_not_tried_again_inline() {
    let w = one_order_sync_world()
        .setting("APP__PROGRAM__RETRY_CAP_MS", "5000")
        .connected()
        .await;
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((ResponseTemplate::new(503), false));
    w.sync_now().await;
    assert_eq!(w.orders.count(), 0);
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'pending'", 1)
        .await;
    assert_eq!(
        w.orders.faults.lock().unwrap().len(),
        0,
        "the 503 was answered"
    );
}

#[tokio::test]
async fn pushes_to_two_hosts_do_not_share_a_pace() {
    let settings = settings(&[("APP__PROGRAM__MAX_REQUESTS_PER_SEC", "40")]);
    let app = ProgramApp::from_settings(&settings.program).unwrap();
    let throttling = serve(&Script::new(vec![throttled_until("0")], created())).await;
    let calm = serve(&Script::new(vec![], created())).await;
    let client = |server: &MockServer| {
        app.client_once(
            Some(&format!("{}/v1", server.uri())),
            SecretString::from("gpat_a".to_owned()),
        )
        .unwrap()
    };
    let (a, b) = (client(&throttling), client(&calm));
    let orders = [new_order("AMZ-1"), new_order("AMZ-2")];
    let (one, two) = tokio::join!(a.create_order(&orders[0], 2), b.create_order(&orders[1], 2),);
    one.expect("tried again after the 429");
    two.unwrap();
    let pacer = app.pacer();
    let host = |server: &MockServer| server.address().to_string();
    assert_eq!(
        pacer.per_second(&host(&throttling)),
        20,
        "halved by its 429"
    );
    assert_eq!(pacer.per_second(&host(&calm)), 40, "the other host's pace");
    assert_eq!(throttling.received_requests().await.unwrap().len(), 2);
    assert_eq!(calm.received_requests().await.unwrap().len(), 1);
}
