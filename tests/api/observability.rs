//! What the operator sees: `/metrics` after real syncs and pushes (requests by route pattern,
//! upstream calls by host and outcome, report rows read, orders created, updated, held and dead,
//! and no store data in any of it), the log line of every report page (over the real `sync`
//! binary), and a running sync's
//! progress on the merchant's Activity page.
use std::sync::{Mutex, mpsc};

use chrono::Duration;
use serde_json::Value;
use wiremock::{
    Mock, Request, Respond, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

use crate::{doubles::*, helpers::*, sync::sync_world, world::*};

/// The value of one series (`name{labels}` exactly as encoded, or a bare name) in `/metrics`.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("a number"))
}

/// `/metrics` as the operator's scraper reads it.
pub async fn scrape(app: &TestApp) -> String {
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

fn upstream(host: &str, outcome: &str) -> String {
    format!("attribution_bridge_upstream_calls_total{{host=\"{host}\",outcome=\"{outcome}\"}}")
}

fn orders(outcome: &str) -> String {
    format!("attribution_bridge_orders_total{{outcome=\"{outcome}\"}}")
}

#[tokio::test]
async fn metrics_count_routes_upstream_calls_rows_and_orders_without_store_data() {
    // Three sales in two report pages; Amazon throttles once and fails once, the program fails
    // the first write once.
    let w = sync_world(3)
        .same_sales("20261101", 3, "100.00")
        .report_page_size(2)
        .connected()
        .await;
    w.report.faults.lock().unwrap().extend([
        ResponseTemplate::new(429).insert_header("Retry-After", "0"),
        ResponseTemplate::new(503),
    ]);
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((ResponseTemplate::new(502), false));
    w.sync_now().await;
    assert_eq!(w.orders.count(), 2, "one create waits for its retry");
    w.app.clock.advance(Duration::seconds(10));
    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 3);
    // A restatement: affiliate 1's sale doubles.
    let mut rows: Vec<Value> = (2..=3)
        .map(|a| report_row("20261101", a, 10, 1, "100.00"))
        .collect();
    rows.push(report_row("20261101", 1, 10, 1, "200.00"));
    w.set_rows(rows);
    w.sync_now().await;
    assert_eq!(w.orders.patches(), 1);

    // The merchant opens the ledger; someone probes a path no route has.
    assert!(w.app.page("/app/stores/st_1/ledger").await.contains("AMZ-"));
    assert_eq!(w.app.get("/nowhere/st_1/AMZ-ab_st_1").await.status(), 404);

    let text = scrape(&w.app).await;
    let requests = |route: &str, status: &str| {
        sample(
            &text,
            &format!(
                "attribution_bridge_http_request_duration_seconds_count{{route=\"{route}\",method=\"GET\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(requests("/app/stores/{store_id}/ledger", "2xx"), Some(1.0));
    assert_eq!(requests("unmatched", "4xx"), Some(1.0));
    assert_eq!(
        sample(
            &text,
            r#"attribution_bridge_http_request_duration_seconds_bucket{le="+Inf",route="/app/stores/{store_id}/ledger",method="GET",status="2xx"}"#
        ),
        Some(1.0),
        "a histogram, with buckets"
    );
    for private in ["st_1", "AMZ-", "gpat_", "Atza"] {
        assert!(!text.contains(private), "{private:?} is in /metrics");
    }

    let amazon = w.amazon.server.address().to_string();
    let program = w.program.server.address().to_string();
    assert_eq!(sample(&text, &upstream(&amazon, "throttled")), Some(1.0));
    assert_eq!(sample(&text, &upstream(&amazon, "server_error")), Some(1.0));
    let report_pages = w.report.bodies.lock().unwrap().len() as f64;
    assert!(
        sample(&text, &upstream(&amazon, "ok")).unwrap() >= report_pages,
        "every page answered is an ok call"
    );
    assert_eq!(
        sample(&text, &upstream(&program, "server_error")),
        Some(1.0)
    );
    // Three creates and one update, at the least (roster reads are calls too).
    assert!(sample(&text, &upstream(&program, "ok")).unwrap() >= 4.0);
    assert_eq!(sample(&text, &upstream(&program, "throttled")), None);

    // Two syncs, each served the three rows.
    assert_eq!(
        sample(&text, "attribution_bridge_report_rows_read_total"),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, &orders("created")),
        Some(w.orders.count() as f64)
    );
    assert_eq!(sample(&text, &orders("updated")), Some(1.0));
    assert_eq!(sample(&text, &orders("held")), None);
}

#[tokio::test]
async fn held_decreases_and_dead_orders_are_counted_once() {
    let w = three_pushed("0.3").await;
    // Affiliates 1 and 2 lose everything: held. Affiliate 3 gains: pushed.
    let restated = vec![
        report_row("20261118", 1, 10, 0, "0"),
        report_row("20261118", 2, 10, 0, "0"),
        report_row("20261118", 3, 10, 2, "200.00"),
    ];
    w.set_rows(restated.clone());
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE hold_state = 'held'", 2)
        .await;
    // The same reading again, with a new sale the program refuses for good.
    let mut more = restated;
    more.push(report_row("20261117", 1, 10, 1, "50.00"));
    w.set_rows(more);
    w.orders.faults.lock().unwrap().push_back((
        ResponseTemplate::new(400).set_body_json(serde_json::json!({"error": "no"})),
        false,
    ));
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE push_state = 'dead'", 1)
        .await;

    let text = scrape(&w.app).await;
    assert_eq!(sample(&text, &orders("held")), Some(2.0), "held once each");
    assert_eq!(sample(&text, &orders("dead")), Some(1.0));
    assert_eq!(sample(&text, &orders("created")), Some(3.0));
    assert_eq!(sample(&text, &orders("updated")), Some(1.0));
    assert_eq!(
        sample(&text, "attribution_bridge_held_decreases"),
        Some(2.0)
    );
    let program = w.program.server.address().to_string();
    assert_eq!(
        sample(&text, &upstream(&program, "client_error")),
        Some(1.0)
    );
}

#[tokio::test]
async fn every_report_page_is_logged_with_the_rows_read_so_far() {
    let w = store_with(5)
        .same_sales("20261101", 5, "10.00")
        .report_page_size(2)
        .connected()
        .await;
    // The operator's `sync`, over the real binary, logging JSON lines to stderr.
    let mut env = w.amazon.env();
    env.push(("APP__LOG__FORMAT".into(), "json".into()));
    let run = w.app.cli_with(
        &[
            "sync",
            "--store",
            "st_1",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-01",
        ],
        env,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let pages: Vec<(u64, u64, u64, String)> = run
        .stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "report page read")
        .map(|l| {
            let f = &l["fields"];
            (
                f["page"].as_u64().unwrap(),
                f["rows"].as_u64().unwrap(),
                f["rows_so_far"].as_u64().unwrap(),
                f["store_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let st = || "st_1".to_owned();
    assert_eq!(
        pages,
        [(1, 2, 2, st()), (2, 2, 4, st()), (3, 1, 5, st())],
        "{}",
        run.stderr
    );
    assert_eq!(w.orders.count(), 5);
}

/// Holds every report page asked with a cursor (the second and later) until the test lets it go,
/// and says when one is waiting.
struct Gate {
    report: Report,
    asked: tokio::sync::mpsc::UnboundedSender<()>,
    go: Mutex<mpsc::Receiver<()>>,
}

impl Respond for Gate {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let _ = self.asked.send(());
        // A dropped sender (the test ended) lets it go too. Only this double's thread waits.
        let _ = self.go.lock().unwrap().recv();
        self.report.respond(req)
    }
}

#[tokio::test]
async fn a_running_sync_shows_its_progress_on_the_activity_page() {
    let w = store_with(3)
        .same_sales("20261101", 3, "10.00")
        .report_page_size(2)
        .connected()
        .await;
    let (asked, mut waiting) = tokio::sync::mpsc::unbounded_channel();
    let (go, gate) = mpsc::channel();
    Mock::given(method("POST"))
        .and(path("/attribution/report"))
        .and(body_string_contains("cursorId"))
        .respond_with(Gate {
            report: w.report.clone(),
            asked,
            go: Mutex::new(gate),
        })
        .with_priority(1)
        .mount(&w.amazon.server)
        .await;
    w.queue_sync(None).await;
    let worker = w.app.state.worker.clone();
    let sync = tokio::spawn(async move { worker.run_next().await.unwrap() });

    // The first page is read; the second is asked for and held.
    tokio::time::timeout(std::time::Duration::from_secs(30), waiting.recv())
        .await
        .expect("the second page is asked for")
        .unwrap();
    // The second page is asked for while the first is taken in (staged, on a large report), so
    // its progress may come a moment later.
    w.app
        .await_rows("sync_runs WHERE status = 'running' AND rows = 2", 1)
        .await;
    let page = w.app.page("/app/stores/st_1/activity").await;
    assert!(page.contains("running · 2 rows so far"), "{page}");
    assert!(page.contains(r#"<td class="run-rows">2</td>"#), "{page}");

    go.send(()).unwrap();
    sync.await.unwrap();
    let page = w.app.page("/app/stores/st_1/activity").await;
    assert!(!page.contains("rows so far"), "{page}");
    assert!(page.contains(r#"<td class="run-rows">3</td>"#), "{page}");
    assert!(page.contains(r#"<td class="run-status">ok</td>"#), "{page}");
}
