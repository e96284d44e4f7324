//! Paced pushes (issue 11): every request to a program host waits for that host's turn, the pace
//! drops on a 429 and is the host's own; a push throttled with a short `Retry-After` is tried
//! again within its job run. The pace's rule and its limiter are unit-tested on a fake clock
//! (`src/clients/pace.rs`); nothing here measures wall-clock time.
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use attribution_bridge::{
    clients::program::{ProgramApp, orders::NewOrder},
    config::Settings,
};
use secrecy::SecretString;
use serde_json::json;
use wiremock::{MockServer, Request, Respond, ResponseTemplate};

use crate::{observability::sample, observability::scrape, sync::one_order_sync_world};

fn throttled(retry_after: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("Retry-After", retry_after)
        .set_body_json(json!({"code": "429", "details": "Too Many Requests"}))
}

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
        .push_back((throttled("1"), false));
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
    // The 429 halved the program host's pace (10/s by default).
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

/// Answers from a script, in order, then `then` for good.
#[derive(Clone)]
struct Script(Arc<Mutex<VecDeque<ResponseTemplate>>>, ResponseTemplate);

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let next = self.0.lock().unwrap().pop_front();
        next.unwrap_or_else(|| self.1.clone())
    }
}

async fn program(answers: Vec<ResponseTemplate>) -> MockServer {
    let server = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(Script(
            Arc::new(Mutex::new(answers.into())),
            ResponseTemplate::new(201).set_body_json(json!({"order": {"id": 1}})),
        ))
        .mount(&server)
        .await;
    server
}

fn new_order(number: &str) -> NewOrder {
    use attribution_bridge::clients::program::orders::{OrderMeta, amount};
    NewOrder {
        number: number.to_owned(),
        affiliate_id: 1,
        total: amount(1000, 2),
        subtotal: amount(1000, 2),
        commission: amount(100, 2),
        currency: "USD".into(),
        date: "2026-11-01".into(),
        status: "approved".into(),
        source: "amazon_attribution",
        meta: OrderMeta {
            clicks: 1,
            purchases: 1,
            units: 1,
        },
    }
}

#[tokio::test]
async fn pushes_to_two_hosts_do_not_share_a_pace() {
    let env: Vec<(String, String)> = [
        ("APP__SANDBOX__ENABLED", "false"),
        (
            "APP__PLATFORM__WEBHOOK_SECRETS",
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        ),
        ("APP__AMAZON__CLIENT_SECRET", "secret"),
        ("APP__PROGRAM__RETRY_BASE_MS", "1"),
        ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "127.0.0.1"),
        ("APP__PROGRAM__MAX_REQUESTS_PER_SEC", "40"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let settings = Settings::from_sources(None, env).unwrap();
    let app = ProgramApp::from_settings(&settings.program).unwrap();
    let throttling = program(vec![throttled("0")]).await;
    let calm = program(vec![]).await;
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
