//! What Amazon and the program send when they misbehave, each case standing for its class: a
//! cursor as a number, a date short of a digit, number text that is no number, half a purchase,
//! the same row twice; a 2xx without a body, an order without an id, an answer without its list.
//! Nothing of it may be paid, lost, or sent twice (DESIGN §4.3, §4.4, §5). The suite runs with
//! every report staged too (`TEST_HELD_ROWS=0`).
use std::sync::{Arc, Mutex};

use chrono::Duration;
use serde_json::{Value, json};
use wiremock::{
    Mock, Request, Respond, ResponseTemplate,
    matchers::{method, path},
};

use crate::{doubles::*, sync::sync_world, world::*};

/// Report pages as given, by cursor: the first request gets page 0, `cursorId` "N" page N.
#[derive(Clone, Default)]
struct Pages(Arc<Mutex<Vec<Value>>>);

impl Respond for Pages {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
        let at = match &body["cursorId"] {
            Value::Null => Some(0),
            Value::String(c) => c.parse().ok(),
            _ => None,
        };
        match at.and_then(|i| self.0.lock().unwrap().get(i).cloned()) {
            Some(page) => ResponseTemplate::new(200).set_body_json(page),
            None => ResponseTemplate::new(400).set_body_json(json!({"details": "Invalid cursor"})),
        }
    }
}

async fn serve_pages(w: &World, pages: Vec<Value>) {
    Mock::given(method("POST"))
        .and(path("/attribution/report"))
        .respond_with(Pages(Arc::new(Mutex::new(pages))))
        .with_priority(1)
        .mount(&w.amazon.server)
        .await;
}

/// A cursor Amazon writes as a number names the next page like its text: the pages after it are
/// read, not taken for "no sales" (which, once the day's hold ran out, would zero them).
#[tokio::test]
async fn a_cursor_written_as_a_number_is_followed() {
    let w = store_with(2).connected().await;
    let row = |a| report_row("20261110", a, 10, 1, "50.00");
    serve_pages(
        &w,
        vec![
            json!({"reports": [row(1)], "cursorId": 1}),
            json!({"reports": [row(2)], "cursorId": null}),
        ],
    )
    .await;
    w.sync_now().await;
    for a in [1, 2] {
        assert_eq!(
            w.order(a, "20261110")["commission"],
            "5.00",
            "affiliate {a}"
        );
    }
}

/// Rows that only look like sales are never paid: the same row twice on one page (a repeat,
/// not more sales), number text with underscores, half a purchase. The affiliate beside them is
/// paid as usual.
#[tokio::test]
async fn rows_that_only_look_like_sales_are_never_paid() {
    let day = "20261110";
    let row = |a, sales: &str| report_row(day, a, 10, 1, sales);
    let mut half = row(3, "50.00");
    half["attributedPurchases14d"] = json!("0.5");
    half["attributedTotalPurchases14d"] = json!(0.5);
    let w = store_with(4)
        .report(vec![
            row(1, "50.00"),
            row(1, "50.00"),
            row(2, "5_0.00"),
            half,
            row(4, "50.00"),
        ])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1, "only affiliate 4 is paid");
    assert_eq!(w.order(4, day)["total"], "50.00");
    // No figures are recorded for the three: not days without sales, days not read.
    w.app
        .assert_rows("daily_figures WHERE affiliate_id IN (1, 2, 3)", 0)
        .await;
}

/// A date short of a digit names no day: chrono alone reads "2026111" as 1 November. The page is
/// refused, the sync fails and says which date, and nothing is paid on another day.
#[tokio::test]
async fn a_date_short_of_a_digit_fails_the_sync_instead_of_paying_another_day() {
    for date in ["2026111", "202611 1", "2026-11-1"] {
        let mut short = report_row("20261101", 1, 10, 1, "50.00");
        short["date"] = json!(date);
        let w = store_with(2).connected().await;
        let other = report_row("20261101", 2, 10, 1, "50.00");
        serve_pages(&w, vec![json!({"reports": [short, other]})]).await;
        w.sync_now().await;
        assert_eq!(w.orders.count(), 0, "{date}");
        let runs = w.app.rows_json("SELECT status, error FROM sync_runs").await;
        assert_eq!(runs[0]["status"], "failed", "{date}");
        assert!(
            runs[0]["error"].as_str().unwrap().contains(date),
            "{date}: {runs:?}"
        );
    }
}

/// Any 2xx to an update is done (DESIGN §4.4): a 204 without a body, or a body that is no JSON,
/// is not sent again (every update e-mails the affiliate).
#[tokio::test]
async fn an_update_answered_2xx_without_json_is_done_once() {
    for answer in [
        ResponseTemplate::new(204),
        ResponseTemplate::new(200).set_body_string("OK"),
    ] {
        let w = sync_world(1)
            .report(vec![report_row("20261110", 1, 10, 1, "50.00")])
            .connected()
            .await;
        w.sync_now().await;
        w.orders.faults.lock().unwrap().push_back((answer, true));
        w.set_rows(vec![report_row("20261110", 1, 10, 1, "80.00")]);
        w.sync_now().await;
        w.app.clock.advance(Duration::hours(1));
        w.app.run_due_jobs().await;
        assert_eq!(*w.orders.patches_sent.lock().unwrap(), 1);
        assert_eq!(w.order(1, "20261110")["commission"], "8.00");
        w.app
            .assert_rows(
                "orders WHERE push_state = 'pushed' AND remote_id = '1000'",
                1,
            )
            .await;
    }
}

/// A create answered 2xx without a usable id (`""`, null, none) is not taken as pushed: an
/// order without an id cannot be updated. The merchant sees it with the dead letters; sent
/// again, the order is looked up by its number and adopted, never created twice.
#[tokio::test]
async fn a_create_answered_without_a_usable_id_is_looked_up_when_retried() {
    for no_id in [
        json!({"order": {"id": ""}}),
        json!({"order": {"id": null}}),
        json!({}),
    ] {
        let w = sync_world(1)
            .report(vec![report_row("20261110", 1, 10, 1, "50.00")])
            .connected()
            .await;
        let answer = ResponseTemplate::new(201).set_body_json(no_id.clone());
        w.orders.faults.lock().unwrap().push_back((answer, true));
        w.sync_now().await;
        w.app
            .assert_rows("orders WHERE push_state = 'dead' AND remote_id IS NULL", 1)
            .await;
        assert_eq!(w.retry_dead_letters().await, 1);
        w.app.run_due_jobs().await;
        assert_eq!(*w.orders.creates_sent.lock().unwrap(), 1, "{no_id}");
        w.app
            .assert_rows(
                "orders WHERE push_state = 'pushed' AND remote_id = '1000'",
                1,
            )
            .await;
    }
}

/// The lookup before a create is sent again (its first answer was lost) must say which orders
/// there are: an answer without the list, or an order of that number without an id, is not
/// "none", which would create the order a second time.
#[tokio::test]
async fn a_lookup_that_says_nothing_never_creates_the_order_twice() {
    for lookup in [
        json!({}),
        json!({"orders": null}),
        json!({"orders": [{"number": "AMZ-ab_st_1-a1-20261110", "id": ""}]}),
    ] {
        let w = sync_world(1)
            .report(vec![report_row("20261110", 1, 10, 1, "50.00")])
            .connected()
            .await;
        let lost = ResponseTemplate::new(502);
        w.orders.faults.lock().unwrap().push_back((lost, true));
        Mock::given(method("GET"))
            .and(path("/v1/admin/orders"))
            .respond_with(ResponseTemplate::new(200).set_body_json(lookup.clone()))
            .with_priority(1)
            .mount(&w.program.server)
            .await;
        w.sync_now().await;
        for _ in 0..3 {
            w.app.clock.advance(Duration::hours(1));
            w.app.run_due_jobs().await;
        }
        assert_eq!(*w.orders.creates_sent.lock().unwrap(), 1, "{lookup}");
        assert_eq!(w.orders.count(), 1);
        w.app
            .assert_rows("orders WHERE push_state = 'dead' AND remote_id IS NULL", 1)
            .await;
    }
}
