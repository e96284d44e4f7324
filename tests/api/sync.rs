//! The daily sync end to end: report → figures → ledger → pushes, against doubles of Amazon's
//! report and the program's orders, with the worker driven step by step and the clock injected.
use attribution_bridge::flows::scheduler;
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

use crate::{doubles::*, helpers::*, world::*};

/// A store with `affiliates` affiliates, set up as the sync tests run it: quick timeouts, and
/// retries after 5 s, 5 min and 30 min.
pub fn sync_world(affiliates: usize) -> WorldBuilder {
    store_with(affiliates)
        .setting("APP__JOBS__RETRY_SCHEDULE_SECS", "5,300,1800")
        .setting("APP__AMAZON__REQUEST_TIMEOUT_SECS", "2")
        .setting("APP__PROGRAM__REQUEST_TIMEOUT_SECS", "2")
}

/// A `sync_world` of one affiliate whose report holds one order: 10 clicks and one purchase of
/// $10.00 on 2026-11-01.
pub fn one_order_sync_world() -> WorldBuilder {
    sync_world(1).sales("20261101", &[(1, "10.00")])
}

#[tokio::test]
async fn a_sync_creates_exactly_the_expected_orders_to_the_cent_and_a_second_changes_nothing() {
    let w = sync_world(3)
        .report(vec![
            report_row("20261115", 1, 30, 3, "191.95999999999998"),
            report_row("20261116", 2, 12, 1, "50"),
            report_row("20261116", 3, 9, 0, "0"),
        ])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 2, "no order for a day without sales");
    let o = w.order(1, "20261115");
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
    assert_eq!(w.order(2, "20261116")["commission"], "5.00");
    // The report asked for the trailing 60 days, grouped by ad group.
    let body = w.report.bodies.lock().unwrap()[0].clone();
    assert_eq!(
        (body["startDate"].as_str(), body["endDate"].as_str()),
        (Some("20260921"), Some("20261119"))
    );
    assert_eq!(body["groupBy"], "ADGROUP");

    let writes = *w.orders.writes.lock().unwrap();
    let before = w.app.count("SELECT COUNT(*) FROM figure_changes").await;
    w.sync_now().await;
    assert_eq!(
        *w.orders.writes.lock().unwrap(),
        writes,
        "a second run sends nothing"
    );
    w.app.assert_rows("figure_changes", before).await;
    w.app
        .assert_rows("sync_runs WHERE status = 'ok' AND changes = 0", 1)
        .await;
}

#[tokio::test]
async fn restatements_update_the_order_once_down_up_and_to_zero() {
    let w = sync_world(1)
        .report(vec![report_row("20261110", 1, 40, 4, "200.00")])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.order(1, "20261110")["commission"], "20.00");

    // A return: Amazon restates the day down.
    w.set_rows(vec![report_row("20261110", 1, 40, 3, "150.00")]);
    w.sync_now().await;
    let o = w.order(1, "20261110");
    assert_eq!(
        (
            o["total"].as_str().unwrap(),
            o["commission"].as_str().unwrap()
        ),
        ("150.00", "15.00")
    );
    assert_eq!(w.orders.patches(), 1);
    w.sync_now().await;
    assert_eq!(w.orders.patches(), 1, "patched once");

    // A late conversion raises it.
    w.set_rows(vec![report_row("20261110", 1, 41, 5, "250.10")]);
    w.sync_now().await;
    assert_eq!(w.order(1, "20261110")["commission"], "25.01");

    // Everything returned: the order is rejected, not deleted.
    w.set_rows(vec![report_row("20261110", 1, 41, 0, "0")]);
    w.sync_now().await;
    let o = w.order(1, "20261110");
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
    w.app.assert_rows("order_versions", 4).await;
}

#[tokio::test]
async fn a_change_on_day_61_is_recorded_and_ignored() {
    // 2026-09-21 is 60 days before 2026-11-20: the oldest day still open.
    let w = sync_world(1)
        .sales("20260921", &[(1, "80.00")])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.order(1, "20260921")["commission"], "8.00");

    w.app.clock.advance(Duration::days(1));
    w.set_rows(vec![report_row("20260921", 1, 10, 0, "0")]);
    // The daily range no longer covers it; an operator's explicit range does, and still changes nothing.
    let day = NaiveDate::from_ymd_opt(2026, 9, 21).unwrap();
    scheduler::enqueue_now(
        &w.app.state.deps,
        &store_id("st_1"),
        Some((day, day)),
        "cli",
    )
    .await
    .unwrap();
    w.app.run_due_jobs().await;
    assert_eq!(w.order(1, "20260921")["commission"], "8.00");
    assert_eq!(w.orders.patches(), 0);
    w.app
        .assert_counts(&[
            ("figure_changes WHERE NOT applied", 1),
            ("daily_figures WHERE sales_minor = 8000", 1),
        ])
        .await;
}

#[tokio::test]
async fn a_day_is_first_pushed_at_push_after_days() {
    let w = sync_world(1)
        .sales("20261119", &[(1, "30.00")])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 0, "yesterday is not complete yet");
    w.app
        .assert_rows("orders WHERE push_state = 'waiting'", 1)
        .await;
    w.app.clock.advance(Duration::days(1));
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1);
}

#[tokio::test]
async fn every_page_of_the_report_is_read() {
    let w = sync_world(5)
        .report_page_size(2)
        .same_sales("20261101", 5, "10.00")
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.report.bodies.lock().unwrap().len(), 3);
    assert_eq!(w.orders.count(), 5);
}

/// Amazon answers 400 ("Invalid cursor") to every report request whose body contains `text`.
async fn refuse_report_requests_with(w: &World, text: &str) {
    Mock::given(method("POST"))
        .and(path("/attribution/report"))
        .and(body_string_contains(text))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": "400", "details": "Invalid cursor"})),
        )
        .with_priority(1)
        .mount(&w.amazon.server)
        .await;
}

/// A key on two pages is a repeat, not more sales (DESIGN §4.3): it reads as incomplete, so the
/// day gets no order and an unmatched row is not stored; a key on one page is read as usual.
#[tokio::test]
async fn a_key_read_on_two_pages_is_a_repeat_not_more_sales() {
    let mut stranger = report_row("20261101", 9, 5, 1, "7.00");
    stranger["adGroupId"] = json!("someone-else");
    let a1 = report_row("20261101", 1, 10, 1, "10.00");
    let a2 = report_row("20261101", 2, 10, 1, "20.00");
    let w = sync_world(2)
        .report_page_size(2)
        .report(vec![a1.clone(), stranger.clone(), a2, a1, stranger])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1, "affiliate 1's day was read twice");
    assert_eq!(w.order(2, "20261101")["total"], "20.00");
    w.app.assert_rows("unmatched_figures", 0).await;
    w.app
        .assert_rows("daily_figures WHERE affiliate_id = 1", 0)
        .await;
}

/// The next page is fetched on a cursor guessed from the page's text while the page is read. A
/// row with a `cursorId` of its own misleads the guess: here to a cursor Amazon answers with an
/// empty last page (a reader that trusted it would stop early), or refuses. The page's reading
/// overrules the guess: every page is read once and the sync succeeds.
#[tokio::test]
async fn a_row_with_a_cursor_of_its_own_does_not_lead_the_paging_astray() {
    let empty_end = json!({"offset": 1000, "version": "V2"}).to_string();
    for guess in [empty_end.as_str(), "refused"] {
        let rows = (1..=5)
            .map(|a| {
                let mut row = report_row("20261101", a, 10, 1, "10.00");
                row["cursorId"] = json!(guess);
                row
            })
            .collect();
        let w = sync_world(5)
            .report_page_size(2)
            .report(rows)
            .connected()
            .await;
        refuse_report_requests_with(&w, "refused").await;
        w.sync_now().await;
        assert_eq!(w.orders.count(), 5, "{guess}");
        for a in 1..=5 {
            // A page read twice would make its keys repeats: incomplete, no order.
            assert_eq!(w.order(a, "20261101")["total"], "10.00", "{guess}");
        }
        w.app
            .assert_rows("sync_runs WHERE status = 'ok' AND rows = 5", 1)
            .await;
    }
}

/// A later page that Amazon refuses for good fails the sync, though it was fetched while the
/// page before it was still being read: nothing of the report is applied.
#[tokio::test]
async fn a_later_page_refused_for_good_fails_the_sync() {
    let w = sync_world(5)
        .report_page_size(2)
        .same_sales("20261101", 5, "10.00")
        .connected()
        .await;
    // Every request with a cursor: the second page on.
    refuse_report_requests_with(&w, "offset").await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 0);
    w.app.assert_rows("daily_figures", 0).await;
    w.app
        .assert_rows("sync_runs WHERE status = 'failed'", 1)
        .await;
}

#[tokio::test]
async fn throttling_and_server_errors_from_amazon_are_retried() {
    let w = one_order_sync_world().connected().await;
    w.report.faults.lock().unwrap().extend([
        ResponseTemplate::new(429).insert_header("Retry-After", "0"),
        ResponseTemplate::new(429),
        ResponseTemplate::new(500),
    ]);
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1, "retried within the client's bound");

    // Amazon down for longer than that: the job waits for its schedule, then succeeds.
    w.set_rows(vec![report_row("20261101", 1, 10, 1, "12.00")]);
    w.report
        .faults
        .lock()
        .unwrap()
        .extend((0..4).map(|_| ResponseTemplate::new(503)));
    w.sync_now().await;
    w.app
        .assert_rows("jobs WHERE kind = 'sync_store' AND status = 'pending'", 1)
        .await;
    w.app.clock.advance(Duration::seconds(10));
    w.app.run_due_jobs().await;
    assert_eq!(w.order(1, "20261101")["total"], "12.00");
}

#[tokio::test]
async fn program_throttling_and_failures_are_retried_on_schedule() {
    let w = one_order_sync_world().connected().await;
    w.orders.faults.lock().unwrap().extend([
        (
            ResponseTemplate::new(429).insert_header("Retry-After", "7"),
            false,
        ),
        (ResponseTemplate::new(502), false),
    ]);
    w.sync_now().await;
    assert_eq!(w.orders.count(), 0);
    // 429 with `Retry-After: 7`: the program's word, not the 60 s floor.
    w.app.clock.advance(Duration::seconds(6));
    assert_eq!(w.app.run_due_jobs().await, 0);
    w.app.clock.advance(Duration::seconds(2));
    assert_eq!(w.app.run_due_jobs().await, 1);
    assert_eq!(w.orders.count(), 0, "the 502");
    w.app.clock.advance(Duration::seconds(400));
    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 1);
    let attempts = w
        .app
        .count("SELECT COUNT(*) FROM job_attempts WHERE http_status IN (429, 502)")
        .await;
    assert_eq!(attempts, 2, "every attempt recorded with its status");
}

#[tokio::test]
async fn a_timeout_after_the_program_stored_the_order_is_adopted_not_duplicated() {
    let w = sync_world(1)
        .setting("APP__PROGRAM__REQUEST_TIMEOUT_SECS", "1")
        .sales("20261101", &[(1, "10.00")])
        .connected()
        .await;
    // The program stores the order, but the answer never arrives in time.
    let slow = ResponseTemplate::new(201)
        .set_body_json(json!({"order": {"id": 1}}))
        .set_delay(std::time::Duration::from_millis(1500));
    w.orders.faults.lock().unwrap().push_back((slow, true));
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1);
    w.app
        .assert_rows("orders WHERE remote_id IS NULL AND create_attempted", 1)
        .await;
    w.app.clock.advance(Duration::seconds(120));
    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 1, "looked up by number and adopted");
    w.app
        .assert_rows(
            "orders WHERE remote_id = '1000' AND push_state = 'pushed'",
            1,
        )
        .await;
    // And a later restatement updates the adopted order.
    w.set_rows(vec![report_row("20261101", 1, 10, 1, "20.00")]);
    w.sync_now().await;
    assert_eq!(w.order(1, "20261101")["commission"], "2.00");
}

#[tokio::test]
async fn a_permanent_refusal_goes_to_the_dead_letters_and_can_be_retried() {
    let w = one_order_sync_world().connected().await;
    w.orders.faults.lock().unwrap().push_back((
        ResponseTemplate::new(400).set_body_json(json!({"error": "affiliate not found"})),
        false,
    ));
    w.sync_now().await;
    assert_eq!(w.orders.count(), 0);
    let dead = attribution_bridge::store::jobs::dead_letters(
        &w.app.state.deps.db,
        Some(&store_id("st_1")),
        None,
    )
    .await
    .unwrap();
    let [letter] = dead.as_slice() else {
        panic!("one dead letter, not {}", dead.len());
    };
    let error = letter.last_error.as_deref().unwrap();
    assert!(error.contains("affiliate not found"), "{error}");
    w.app
        .assert_rows("orders WHERE push_state = 'dead'", 1)
        .await;
    // Not retried by itself, even by the next sync.
    w.sync_now().await;
    assert_eq!(*w.orders.writes.lock().unwrap(), 1);

    let listing = cli(&w, &["dead-letters"]).stdout;
    assert!(
        listing.contains("st_1") && listing.contains("affiliate not found"),
        "{listing}"
    );
    let retry = cli(&w, &["dead-letters", "--retry"]);
    assert!(retry.ok, "{}", retry.stderr);

    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 1);
    w.app
        .assert_rows("orders WHERE push_state = 'pushed'", 1)
        .await;
}

#[tokio::test]
async fn uninstall_during_a_sync_stops_its_pushes() {
    let w = sync_world(2)
        .sales("20261101", &[(1, "10.00"), (2, "10.00")])
        .queued()
        .await;
    // The sync runs and enqueues the pushes; before they run, the platform uninstalls.
    w.app.run_one_job().await;
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'pending'", 2)
        .await;
    w.app.send(&store_event("app.uninstalled", "st_1")).await;
    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 0);
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'cancelled'", 2)
        .await;
}

#[tokio::test]
async fn a_new_default_commission_applies_to_days_not_yet_final() {
    let w = sync_world(1)
        .report(vec![report_row("20261101", 1, 10, 2, "100.00")])
        .connected()
        .await;
    w.sync_now().await;
    w.app.send(&commission_event("st_1", "flat", "2.50")).await;
    w.sync_now().await;
    assert_eq!(w.order(1, "20261101")["commission"], "5.00");
}

/// Runs the binary against the world's database and Amazon.
fn cli(w: &World, args: &[&str]) -> CliRun {
    w.app.cli_with(args, w.amazon.env())
}

/// Runs the binary as `cli`; asserts that it succeeded and returns its stdout.
fn cli_ok(w: &World, args: &[&str]) -> String {
    let run = cli(w, args);
    assert!(run.ok, "{}", run.stderr);
    run.stdout
}

#[tokio::test]
async fn the_sync_command_runs_to_completion_and_the_ledger_shows_every_order() {
    let w = sync_world(2)
        .report(vec![
            report_row("20261101", 1, 30, 3, "191.95999999999998"),
            report_row("20261102", 2, 5, 1, "9.99"),
        ])
        .connected()
        .await;
    let out = cli_ok(&w, &["sync", "--store", "st_1"]);
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (status["orders"].as_u64(), status["orders_pushed"].as_u64()),
        (Some(2), Some(2)),
        "{out}"
    );
    assert_eq!(status["last_sync"]["status"], "ok");
    assert_eq!(w.orders.count(), 2);
    cli_ok(&w, &["sync", "--store", "st_1"]);
    assert_eq!(
        *w.orders.writes.lock().unwrap(),
        2,
        "a second run changes nothing"
    );

    let out = cli_ok(&w, &["ledger", "--store", "st_1", "--json"]);
    let ledger: Value = serde_json::from_str(&out).unwrap();
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
    let bad = cli(&w, &["sync", "--store", "st_1", "--from", "2026-11-01"]);
    assert!(!bad.ok && bad.stderr.contains("--to"), "{}", bad.stderr);
}

#[tokio::test]
async fn a_report_page_that_is_not_a_report_rejects_nothing() {
    let w = one_order_sync_world().connected().await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1);
    // A 200 whose body is an error envelope, not a report.
    w.report.faults.lock().unwrap().push_back(
        ResponseTemplate::new(200).set_body_json(json!({"code": "500", "details": "internal"})),
    );
    w.sync_now().await;
    assert_eq!(w.orders.patches(), 0, "no order was rejected");
    assert_eq!(w.order(1, "20261101")["status"], "approved");
    w.app
        .assert_rows("sync_runs WHERE status = 'failed'", 1)
        .await;
}

#[tokio::test]
async fn the_total_basis_pays_on_promoted_plus_brand_halo_sales() {
    let mut row = report_row("20261101", 1, 10, 1, "100.00");
    row["totalAttributedSales14d"] = json!("150.00");
    row["attributedTotalPurchases14d"] = json!(2);
    let w = sync_world(1).report(vec![row]).connected().await;
    w.sync_now().await;
    assert_eq!(w.order(1, "20261101")["commission"], "10.00");
    // The merchant switches the store to the total metrics on the setup page.
    let csrf = w.app.csrf("/app/stores/st_1").await;
    let res = w
        .app
        .post_form(
            "/app/stores/st_1/sales-basis",
            &[("csrf", csrf.as_str()), ("basis", "total")],
        )
        .await;
    assert_eq!(res.status(), 303);
    w.sync_now().await;
    let o = w.order(1, "20261101");
    assert_eq!(
        (o["total"].as_str(), o["commission"].as_str()),
        (Some("150.00"), Some("15.00"))
    );
    // Flat commissions count the total purchases then: 2.50 × 2.
    w.app.send(&commission_event("st_1", "flat", "2.50")).await;
    w.sync_now().await;
    assert_eq!(w.order(1, "20261101")["commission"], "5.00");
}

#[tokio::test]
async fn a_sync_whose_ingest_fails_midway_writes_nothing_and_its_run_says_it_failed() {
    let w = one_order_sync_world().queued().await;
    // The database refuses the new orders' first versions, the ingest's last writes: a broken
    // schema stands for any database error in the middle of the ingest.
    w.app.execute("DROP TABLE order_versions").await;
    w.app.run_due_jobs().await;
    w.app
        .assert_counts(&[
            ("daily_figures", 0),
            ("orders", 0),
            ("sync_runs WHERE status = 'running'", 0),
            (
                "sync_runs WHERE status = 'failed' AND error LIKE '%order_versions%'",
                1,
            ),
            ("jobs WHERE kind = 'sync_store' AND status = 'pending'", 1),
            // Nothing of the failed run stays staged either.
            ("report_rows", 0),
        ])
        .await;
}
