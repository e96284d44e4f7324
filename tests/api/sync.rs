//! The daily sync end to end: report → figures → ledger → pushes, against doubles of Amazon's
//! report and the program's orders, with the worker driven step by step and the clock injected.
use attribution_bridge::{domain::ids::StoreId, flows::scheduler, jobs::worker};
use chrono::{Duration, NaiveDate};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::{
    amazon_connect::{callback, start_connect},
    doubles::*,
    helpers::*,
};

pub struct SyncWorld {
    pub app: TestApp,
    /// Held so that the doubles keep serving for the test's lifetime.
    #[allow(dead_code)]
    pub amazon: AmazonDouble,
    pub report: Report,
    #[allow(dead_code)]
    pub program: ProgramDouble,
    pub orders: Orders,
}

pub async fn sync_world(page_size: usize, affiliates: usize, extra: &[(&str, &str)]) -> SyncWorld {
    let (amazon, report) = AmazonDouble::with_report(page_size).await;
    let (program, orders) = ProgramDouble::with_orders("gpat_prog", affiliates).await;
    let mut env = amazon.env();
    env.push(("APP__JOBS__RETRY_SCHEDULE_SECS".into(), "5,300,1800".into()));
    env.push(("APP__AMAZON__REQUEST_TIMEOUT_SECS".into(), "2".into()));
    env.push(("APP__PROGRAM__REQUEST_TIMEOUT_SECS".into(), "2".into()));
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let app = spawn_app_with(move |e| e.extend(env)).await;
    app.send(&install_event_at("st_1", "gpat_prog", &program.api_url()))
        .await;
    app.open_store("st_1").await;
    let consent = start_connect(&app, &app.client).await;
    let code = amazon.allow(&consent["code_challenge"]);
    let flash = callback(
        &app,
        &app.client,
        &[("code", &code), ("state", &consent["state"])],
    )
    .await;
    assert!(flash.contains("connected"), "{flash}");
    SyncWorld {
        app,
        amazon,
        report,
        program,
        orders,
    }
}

pub fn st1() -> StoreId {
    StoreId::parse("st_1").unwrap()
}

/// Runs every due job; returns how many ran.
pub async fn drain(app: &TestApp) -> usize {
    let mut n = 0;
    while app.state.worker.run_next().await.unwrap() == worker::Outcome::Completed {
        n += 1;
        assert!(n < 10_000, "the queue does not drain");
    }
    n
}

/// Runs exactly one due job, which must exist.
pub async fn run_one(app: &TestApp) {
    assert_eq!(
        app.state.worker.run_next().await.unwrap(),
        worker::Outcome::Completed
    );
}

/// "Sync now": the trailing 60 days, then every job that is due.
pub async fn sync_now(w: &SyncWorld) {
    scheduler::enqueue_now(&w.app.state.deps, &st1(), None, "test")
        .await
        .unwrap();
    drain(&w.app).await;
}

fn number(aff: i64, day: &str) -> String {
    format!("AMZ-ab_st_1-a{aff}-{day}")
}

fn set_rows(w: &SyncWorld, rows: Vec<serde_json::Value>) {
    *w.report.rows.lock().unwrap() = rows;
}

#[tokio::test]
async fn a_sync_creates_exactly_the_expected_orders_to_the_cent_and_a_second_changes_nothing() {
    let w = sync_world(0, 3, &[]).await;
    set_rows(
        &w,
        vec![
            report_row("20261115", 1, 30, 3, "191.95999999999998"),
            report_row("20261116", 2, 12, 1, "50"),
            report_row("20261116", 3, 9, 0, "0"),
        ],
    );
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 2, "no order for a day without sales");
    let o = w.orders.current(&number(1, "20261115")).unwrap();
    assert_eq!(o["total"].as_str().unwrap(), "191.96");
    assert_eq!(o["subtotal"].as_str().unwrap(), "191.96");
    assert_eq!(o["commission"].as_str().unwrap(), "19.20");
    assert_eq!(
        (
            o["affiliate_id"].as_i64(),
            o["currency"].as_str(),
            o["date"].as_str()
        ),
        (Some(1), Some("USD"), Some("2026-11-15"))
    );
    assert_eq!(
        (o["status"].as_str(), o["source"].as_str()),
        (Some("approved"), Some("amazon_attribution"))
    );
    assert_eq!(
        o["meta"],
        json!({"clicks": 30, "purchases": 3, "units": 4 - 1})
    );
    assert_eq!(
        w.orders.current(&number(2, "20261116")).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "5.00"
    );
    // The report asked for the trailing 60 days, grouped by ad group.
    let body = w.report.bodies.lock().unwrap()[0].clone();
    assert_eq!(
        (body["startDate"].as_str(), body["endDate"].as_str()),
        (Some("20260921"), Some("20261119"))
    );
    assert_eq!(body["groupBy"], "ADGROUP");

    let writes = *w.orders.writes.lock().unwrap();
    let before = w.app.count("SELECT COUNT(*) FROM figure_changes").await;
    sync_now(&w).await;
    assert_eq!(
        *w.orders.writes.lock().unwrap(),
        writes,
        "a second run sends nothing"
    );
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM figure_changes").await,
        before
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM sync_runs WHERE status = 'ok' AND changes = 0")
            .await,
        1
    );
}

#[tokio::test]
async fn restatements_update_the_order_once_down_up_and_to_zero() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261110", 1, 40, 4, "200.00")]);
    sync_now(&w).await;
    let n = number(1, "20261110");
    assert_eq!(
        w.orders.current(&n).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "20.00"
    );

    // A return: Amazon restates the day down.
    set_rows(&w, vec![report_row("20261110", 1, 40, 3, "150.00")]);
    sync_now(&w).await;
    let o = w.orders.current(&n).unwrap();
    assert_eq!(
        (
            o["total"].as_str().unwrap(),
            o["commission"].as_str().unwrap()
        ),
        ("150.00", "15.00")
    );
    assert_eq!(w.orders.patches(), 1);
    sync_now(&w).await;
    assert_eq!(w.orders.patches(), 1, "patched once");

    // A late conversion raises it.
    set_rows(&w, vec![report_row("20261110", 1, 41, 5, "250.10")]);
    sync_now(&w).await;
    assert_eq!(
        w.orders.current(&n).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "25.01"
    );

    // Everything returned: the order is rejected, not deleted.
    set_rows(&w, vec![report_row("20261110", 1, 41, 0, "0")]);
    sync_now(&w).await;
    let o = w.orders.current(&n).unwrap();
    assert_eq!(
        (o["status"].as_str(), o["commission"].as_str().unwrap()),
        (Some("rejected"), "0.00")
    );
    assert_eq!(w.orders.count(), 1);
    assert_eq!(w.orders.patches(), 3);
    let history = w
        .app
        .count("SELECT COUNT(*) FROM figure_changes WHERE applied")
        .await;
    assert_eq!(history, 3, "every change recorded with from and to");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM order_versions").await, 4);
}

#[tokio::test]
async fn a_change_on_day_61_is_recorded_and_ignored() {
    let w = sync_world(0, 1, &[]).await;
    // 2026-09-21 is 60 days before 2026-11-20: the oldest day still open.
    set_rows(&w, vec![report_row("20260921", 1, 10, 1, "80.00")]);
    sync_now(&w).await;
    let n = number(1, "20260921");
    assert_eq!(
        w.orders.current(&n).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "8.00"
    );

    w.app.clock.advance(Duration::days(1));
    set_rows(&w, vec![report_row("20260921", 1, 10, 0, "0")]);
    // The daily range no longer covers it; an operator's explicit range does, and still changes nothing.
    let day = NaiveDate::from_ymd_opt(2026, 9, 21).unwrap();
    scheduler::enqueue_now(&w.app.state.deps, &st1(), Some((day, day)), "cli")
        .await
        .unwrap();
    drain(&w.app).await;
    assert_eq!(
        w.orders.current(&n).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "8.00"
    );
    assert_eq!(w.orders.patches(), 0);
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM figure_changes WHERE NOT applied")
            .await,
        1
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM daily_figures WHERE sales_minor = 8000")
            .await,
        1
    );
}

#[tokio::test]
async fn a_day_is_first_pushed_at_push_after_days() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261119", 1, 10, 1, "30.00")]);
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 0, "yesterday is not complete yet");
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM orders WHERE push_state = 'waiting'")
            .await,
        1
    );
    w.app.clock.advance(Duration::days(1));
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 1);
}

#[tokio::test]
async fn every_page_of_the_report_is_read() {
    let w = sync_world(2, 5, &[]).await;
    set_rows(
        &w,
        (1..=5)
            .map(|a| report_row("20261101", a, 10, 1, "10.00"))
            .collect(),
    );
    sync_now(&w).await;
    assert_eq!(w.report.bodies.lock().unwrap().len(), 3);
    assert_eq!(w.orders.count(), 5);
}

#[tokio::test]
async fn throttling_and_server_errors_from_amazon_are_retried() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "10.00")]);
    w.report.faults.lock().unwrap().extend([
        ResponseTemplate::new(429).insert_header("Retry-After", "0"),
        ResponseTemplate::new(429),
        ResponseTemplate::new(500),
    ]);
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 1, "retried within the client's bound");

    // Amazon down for longer than that: the job waits for its schedule, then succeeds.
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "12.00")]);
    w.report
        .faults
        .lock()
        .unwrap()
        .extend((0..4).map(|_| ResponseTemplate::new(503)));
    sync_now(&w).await;
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'sync_store' AND status = 'pending'")
            .await,
        1
    );
    w.app.clock.advance(Duration::seconds(10));
    drain(&w.app).await;
    assert_eq!(
        w.orders.current(&number(1, "20261101")).unwrap()["total"]
            .as_str()
            .unwrap(),
        "12.00"
    );
}

#[tokio::test]
async fn program_throttling_and_failures_are_retried_on_schedule() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "10.00")]);
    w.orders.faults.lock().unwrap().extend([
        (
            ResponseTemplate::new(429).insert_header("Retry-After", "7"),
            false,
        ),
        (ResponseTemplate::new(502), false),
    ]);
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 0);
    // 429: at least the 60 s floor, whatever Retry-After said.
    w.app.clock.advance(Duration::seconds(59));
    assert_eq!(drain(&w.app).await, 0);
    w.app.clock.advance(Duration::seconds(2));
    assert_eq!(drain(&w.app).await, 1);
    assert_eq!(w.orders.count(), 0, "the 502");
    w.app.clock.advance(Duration::seconds(400));
    drain(&w.app).await;
    assert_eq!(w.orders.count(), 1);
    let attempts = w
        .app
        .count("SELECT COUNT(*) FROM job_attempts WHERE http_status IN (429, 502)")
        .await;
    assert_eq!(attempts, 2, "every attempt recorded with its status");
}

#[tokio::test]
async fn a_timeout_after_the_program_stored_the_order_is_adopted_not_duplicated() {
    let w = sync_world(0, 1, &[("APP__PROGRAM__REQUEST_TIMEOUT_SECS", "1")]).await;
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "10.00")]);
    // The program stores the order, but the answer never arrives in time.
    let slow = ResponseTemplate::new(201)
        .set_body_json(json!({"order": {"id": 1}}))
        .set_delay(std::time::Duration::from_millis(1500));
    w.orders.faults.lock().unwrap().push_back((slow, true));
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 1);
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM orders WHERE remote_id IS NULL AND create_attempted")
            .await,
        1
    );
    w.app.clock.advance(Duration::seconds(120));
    drain(&w.app).await;
    assert_eq!(w.orders.count(), 1, "looked up by number and adopted");
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM orders WHERE remote_id = '1000' AND push_state = 'pushed'")
            .await,
        1
    );
    // And a later restatement updates the adopted order.
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "20.00")]);
    sync_now(&w).await;
    assert_eq!(
        w.orders.current(&number(1, "20261101")).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "2.00"
    );
}

#[tokio::test]
async fn a_permanent_refusal_goes_to_the_dead_letters_and_can_be_retried() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "10.00")]);
    w.orders.faults.lock().unwrap().push_back((
        ResponseTemplate::new(400).set_body_json(json!({"error": "affiliate not found"})),
        false,
    ));
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 0);
    let dead = attribution_bridge::store::jobs::dead_letters(&w.app.state.deps.db, Some(&st1()))
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("affiliate not found")
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM orders WHERE push_state = 'dead'")
            .await,
        1
    );
    // Not retried by itself, even by the next sync.
    sync_now(&w).await;
    assert_eq!(*w.orders.writes.lock().unwrap(), 1);

    let (_, listing, _) = cli(&w, &["dead-letters"]);
    assert!(
        listing.contains("st_1") && listing.contains("affiliate not found"),
        "{listing}"
    );
    let (ok, _, err) = cli(&w, &["dead-letters", "--retry"]);
    assert!(ok, "{err}");

    drain(&w.app).await;
    assert_eq!(w.orders.count(), 1);
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM orders WHERE push_state = 'pushed'")
            .await,
        1
    );
}

#[tokio::test]
async fn uninstall_during_a_sync_stops_its_pushes() {
    let w = sync_world(0, 2, &[]).await;
    set_rows(
        &w,
        vec![
            report_row("20261101", 1, 10, 1, "10.00"),
            report_row("20261101", 2, 10, 1, "10.00"),
        ],
    );
    scheduler::enqueue_now(&w.app.state.deps, &st1(), None, "test")
        .await
        .unwrap();
    // The sync runs and enqueues the pushes; before they run, the platform uninstalls.
    run_one(&w.app).await;
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'push_order' AND status = 'pending'")
            .await,
        2
    );
    w.app.send(&store_event("app.uninstalled", "st_1")).await;
    drain(&w.app).await;
    assert_eq!(w.orders.count(), 0);
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'push_order' AND status = 'cancelled'")
            .await,
        2
    );
}

#[tokio::test]
async fn a_new_default_commission_applies_to_days_not_yet_final() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261101", 1, 10, 2, "100.00")]);
    sync_now(&w).await;
    w.app
        .send(
            &json!({"type": "program.commission_updated", "data": {"store_id": "st_1",
        "default_commission": {"type": "flat", "value": "2.50"}}}),
        )
        .await;
    sync_now(&w).await;
    assert_eq!(
        w.orders.current(&number(1, "20261101")).unwrap()["commission"]
            .as_str()
            .unwrap(),
        "5.00"
    );
}

fn cli(w: &SyncWorld, args: &[&str]) -> (bool, String, String) {
    let mut env = test_env(&w.app.db, &w.app.secret, &w.app.encryption_key);
    env.extend(w.amazon.env());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(args)
        .envs(env)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_sync_command_runs_to_completion_and_the_ledger_shows_every_order() {
    let w = sync_world(0, 2, &[]).await;
    set_rows(
        &w,
        vec![
            report_row("20261101", 1, 30, 3, "191.95999999999998"),
            report_row("20261102", 2, 5, 1, "9.99"),
        ],
    );
    let (ok, out, err) = cli(&w, &["sync", "--store", "st_1"]);
    assert!(ok, "{err}");
    let status: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (status["orders"].as_u64(), status["orders_pushed"].as_u64()),
        (Some(2), Some(2)),
        "{out}"
    );
    assert_eq!(status["last_sync"]["status"], "ok");
    assert_eq!(w.orders.count(), 2);
    let (ok, _, err) = cli(&w, &["sync", "--store", "st_1"]);
    assert!(ok, "{err}");
    assert_eq!(
        *w.orders.writes.lock().unwrap(),
        2,
        "a second run changes nothing"
    );

    let (ok, out, err) = cli(&w, &["ledger", "--store", "st_1", "--json"]);
    assert!(ok, "{err}");
    let ledger: serde_json::Value = serde_json::from_str(&out).unwrap();
    let first = &ledger[1];
    assert_eq!(first["number"], "AMZ-ab_st_1-a1-20261101");
    assert_eq!(
        (first["total"].as_str(), first["commission"].as_str()),
        (Some("191.96"), Some("19.20"))
    );
    assert_eq!(
        (first["clicks"].as_i64(), first["purchases"].as_i64()),
        (Some(30), Some(3))
    );
    assert_eq!(
        (first["push_state"].as_str(), first["remote_id"].as_str()),
        (Some("pushed"), Some("1000"))
    );
    assert_eq!(first["versions"].as_array().unwrap().len(), 1);
    assert_eq!(first["brand_referral_bonus"], "1.50");
    // A bad range is refused with a message.
    let (ok, _, err) = cli(&w, &["sync", "--store", "st_1", "--from", "2026-11-01"]);
    assert!(!ok && err.contains("--to"), "{err}");
}

#[tokio::test]
async fn a_report_page_that_is_not_a_report_rejects_nothing() {
    let w = sync_world(0, 1, &[]).await;
    set_rows(&w, vec![report_row("20261101", 1, 10, 1, "10.00")]);
    sync_now(&w).await;
    assert_eq!(w.orders.count(), 1);
    // A 200 whose body is an error envelope, not a report.
    w.report.faults.lock().unwrap().push_back(
        ResponseTemplate::new(200).set_body_json(json!({"code": "500", "details": "internal"})),
    );
    sync_now(&w).await;
    assert_eq!(w.orders.patches(), 0, "no order was rejected");
    assert_eq!(
        w.orders.current(&number(1, "20261101")).unwrap()["status"],
        "approved"
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM sync_runs WHERE status = 'failed'")
            .await,
        1
    );
}

#[tokio::test]
async fn the_total_basis_pays_on_promoted_plus_brand_halo_sales() {
    let w = sync_world(0, 1, &[]).await;
    let mut row = report_row("20261101", 1, 10, 1, "100.00");
    row["totalAttributedSales14d"] = json!("150.00");
    row["attributedTotalPurchases14d"] = json!(2);
    set_rows(&w, vec![row]);
    sync_now(&w).await;
    assert_eq!(
        w.orders.current(&number(1, "20261101")).unwrap()["commission"],
        "10.00"
    );
    // The merchant switches the store to the total metrics on the setup page.
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let res = w
        .app
        .client
        .post(w.app.url("/app/stores/st_1/sales-basis"))
        .form(&[("csrf", csrf.as_str()), ("basis", "total")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    sync_now(&w).await;
    let o = w.orders.current(&number(1, "20261101")).unwrap();
    assert_eq!(
        (o["total"].as_str(), o["commission"].as_str()),
        (Some("150.00"), Some("15.00"))
    );
    // Flat commissions count the total purchases then: 2.50 × 2.
    w.app
        .send(
            &json!({"type": "program.commission_updated", "data": {"store_id": "st_1",
        "default_commission": {"type": "flat", "value": "2.50"}}}),
        )
        .await;
    sync_now(&w).await;
    assert_eq!(
        w.orders.current(&number(1, "20261101")).unwrap()["commission"],
        "5.00"
    );
}
