//! The merchant's pages over HTTP: the store's navigation, the ledger (filters, paging, totals per
//! currency), one order's history, and the activity; each answers only to its store's session.
use std::collections::BTreeSet;

use attribution_bridge::flows::status::{self, LedgerEntry};
use chrono::{Duration, NaiveDate};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::{doubles::*, helpers::*, world::*};

/// The ledger as the app keeps it: the truth every page is checked against.
async fn truth(w: &World) -> Vec<LedgerEntry> {
    status::ledger(&w.app.state.deps.db, &store_id("st_1"))
        .await
        .unwrap()
}

/// `"12.34"` (USD) in cents.
fn cents(amount: &str) -> i64 {
    let (major, minor) = amount.split_once('.').expect("two decimals");
    major.parse::<i64>().unwrap() * 100 + minor.parse::<i64>().unwrap()
}

/// Cents as the pages show them, with the currency.
fn shown(cents: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, cents % 100)
}

/// The (sales, commission) totals of `entries`, as the pages show them.
fn totals<'a>(entries: impl Iterator<Item = &'a LedgerEntry>, currency: &str) -> (String, String) {
    let (sales, commission) = entries.fold((0, 0), |(s, c), e| {
        (s + cents(&e.total), c + cents(&e.commission))
    });
    (shown(sales, currency), shown(commission, currency))
}

/// The order numbers a ledger page links to, in page order.
fn numbers(page: &str) -> Vec<String> {
    page.split("href=\"/app/stores/st_1/ledger/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

/// The text of the totals row of `currency`: its sales and commission cells.
fn total_row(page: &str, currency: &str) -> (String, String) {
    let row = page
        .split(&format!("data-currency=\"{currency}\""))
        .nth(1)
        .unwrap_or_else(|| panic!("a total in {currency}: {page}"));
    let cell = |class: &str| {
        row.split(&format!("class=\"{class}\">"))
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_owned()
    };
    (cell("total-sales"), cell("total-commission"))
}

/// The part of `page` from the element with id `from` up to the one with id `to`.
fn section<'a>(page: &'a str, from: &str, to: &str) -> &'a str {
    let start = page.find(&format!("id=\"{from}\"")).expect(from);
    let rest = &page[start..];
    &rest[..rest.find(&format!("id=\"{to}\"")).unwrap_or(rest.len())]
}

fn day(age: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap() - Duration::days(age)
}

/// Three affiliates with sales on each of 30 days (ages 2 to 31), all synced and pushed.
async fn ninety_orders() -> World {
    let rows = (1..=3)
        .flat_map(|a| {
            (2..=31).map(move |age| {
                let sales = format!("{}.{:02}", 10 * a + age, (7 * a + 3 * age) % 100);
                report_row(&day(age).format("%Y%m%d").to_string(), a, 20, 2, &sales)
            })
        })
        .collect();
    let w = store_with(3).report(rows).connected().await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 90);
    w
}

#[tokio::test]
async fn the_ledger_pages_through_every_order_with_totals_equal_to_the_ledger() {
    let w = ninety_orders().await;
    let ledger = truth(&w).await;
    assert_eq!(ledger.len(), 90);

    let first = w.app.page("/app/stores/st_1/ledger").await;
    assert!(
        first.contains(r#"id="nav-ledger" aria-current="page""#),
        "the navigation marks the ledger"
    );
    assert!(!first.contains(r#"id="nav-overview" aria-current"#));
    assert_eq!(first.matches("class=\"order-row\"").count(), 50);
    assert!(first.contains(r#"id="page">1<"#) && first.contains(r#"id="pages">2<"#));
    assert!(first.contains(r#"id="matching">90<"#));
    assert!(first.contains(r#"href="?page=2""#), "a link to page 2");
    // The totals are those of the whole filter (every order), not of the page, in USD.
    assert_eq!(total_row(&first, "USD"), totals(ledger.iter(), "USD"));
    // Each row shows its amounts with the currency, and its number never wraps.
    let e = &ledger[0];
    assert!(first.contains(&format!("{} USD", e.total)));
    assert!(first.contains(&format!("{} USD", e.commission)));
    assert!(first.contains("<td class=\"order-number\">"));
    let css = w.app.page("/static/app.css").await;
    assert!(css.contains(".order-number, .nowrap, .money { white-space: nowrap; }"));

    let beyond = w.app.page("/app/stores/st_1/ledger?page=999").await;
    assert!(
        beyond.contains(r#"id="page">2</span> of <span id="pages">2<"#),
        "a page past the end shows the last one"
    );
    assert_eq!(beyond.matches("class=\"order-row\"").count(), 40);

    let second = w.app.page("/app/stores/st_1/ledger?page=2").await;
    assert_eq!(second.matches("class=\"order-row\"").count(), 40);
    assert!(
        second.contains(r#"href="?page=1""#),
        "a link back to page 1"
    );
    let mut shown_numbers = numbers(&first);
    shown_numbers.extend(numbers(&second));
    let expected: Vec<String> = ledger.iter().map(|e| e.number.clone()).collect();
    assert_eq!(
        shown_numbers, expected,
        "both pages together: every order once, newest day first"
    );
}

#[tokio::test]
async fn the_ledger_filters_by_affiliate_days_and_push_state_with_totals_per_currency() {
    let w = ninety_orders().await;
    let ledger = truth(&w).await;

    // One affiliate: its 30 orders on one page, with its totals.
    let page = w.app.page("/app/stores/st_1/ledger?affiliate=2").await;
    let nums = numbers(&page);
    assert_eq!(nums.len(), 30);
    assert!(nums.iter().all(|n| n.contains("-a2-")), "{nums:?}");
    assert!(page.contains(r#"id="pages">1<"#));
    assert!(page.contains(r#"value="2""#), "the form shows the filter");
    let of_two = ledger.iter().filter(|e| e.affiliate_id == 2);
    assert_eq!(total_row(&page, "USD"), totals(of_two, "USD"));

    // A day range and an affiliate, on page 2 of a range that spans two pages.
    let (from, to) = (day(25), day(6));
    let in_range = |e: &&LedgerEntry| e.day >= from && e.day <= to;
    let all_days = w
        .app
        .page(&format!(
            "/app/stores/st_1/ledger?from={from}&to={to}&page=2"
        ))
        .await;
    assert_eq!(ledger.iter().filter(in_range).count(), 60);
    assert_eq!(numbers(&all_days).len(), 10);
    assert!(
        all_days.contains(&format!(r#"href="?from={from}&#38;to={to}&#38;page=1""#)),
        "{}",
        section(&all_days, "ledger-orders", "none")
    );
    assert_eq!(
        total_row(&all_days, "USD"),
        totals(ledger.iter().filter(in_range), "USD")
    );
    let one = w
        .app
        .page(&format!(
            "/app/stores/st_1/ledger?affiliate=3&from={from}&to={to}"
        ))
        .await;
    let expected: Vec<String> = ledger
        .iter()
        .filter(in_range)
        .filter(|e| e.affiliate_id == 3)
        .map(|e| e.number.clone())
        .collect();
    assert_eq!(numbers(&one), expected);

    // Push states: everything is in the program; nothing is dead.
    let pushed = w.app.page("/app/stores/st_1/ledger?state=pushed").await;
    assert!(pushed.contains(r#"id="matching">90<"#));
    assert!(pushed.contains(r#"<option value="pushed" selected>"#));
    let dead = w.app.page("/app/stores/st_1/ledger?state=dead").await;
    assert!(dead.contains(r#"id="matching">0<"#) && dead.contains(r#"id="no-orders""#));
    // Blank fields (a form sent as it is) mean "any"; a value that is not one is refused.
    let blank = w
        .app
        .page("/app/stores/st_1/ledger?affiliate=&from=&to=&state=")
        .await;
    assert!(blank.contains(r#"id="matching">90<"#));
    for bad in ["from=2026-13-01", "state=lost", "affiliate=x", "page=0"] {
        let res = w.app.get(&format!("/app/stores/st_1/ledger?{bad}")).await;
        assert_eq!(res.status(), 400, "{bad}");
    }
    // Every filter control has its label.
    for id in ["f-affiliate", "f-from", "f-to", "f-state"] {
        assert!(page.contains(&format!(r#"<label for="{id}">"#)), "{id}");
    }

    // Currencies never mix: one total per currency.
    w.app
        .execute("UPDATE orders SET currency = 'EUR' WHERE affiliate_id = 3")
        .await;
    let page = w.app.page("/app/stores/st_1/ledger").await;
    assert_eq!(
        total_row(&page, "USD"),
        totals(ledger.iter().filter(|e| e.affiliate_id != 3), "USD")
    );
    assert_eq!(
        total_row(&page, "EUR"),
        totals(ledger.iter().filter(|e| e.affiliate_id == 3), "EUR")
    );
}

#[tokio::test]
async fn an_order_history_shows_each_restatement_what_was_pushed_and_when_it_is_final() {
    let w = store_with(1)
        .report(vec![report_row("20261110", 1, 40, 4, "200.00")])
        .connected()
        .await;
    w.sync_now().await;
    w.set_rows(vec![report_row("20261110", 1, 40, 3, "150.00")]);
    w.sync_now().await;
    let number = "AMZ-ab_st_1-a1-20261110";
    let entry = truth(&w).await.remove(0);
    assert_eq!((entry.version, entry.pushed_version), (2, 2));

    let path = format!("/app/stores/st_1/ledger/{number}");
    let ledger = w.app.page("/app/stores/st_1/ledger").await;
    assert!(
        ledger.contains(&format!(r#"href="{path}""#)),
        "the number links to its history"
    );
    let page = w.app.page(&path).await;
    assert!(page.contains(r#"id="nav-ledger" aria-current="page""#));
    assert_eq!(page.matches("class=\"version-row\"").count(), 2);
    assert!(
        page.contains(">200.00 USD</td>"),
        "the first version: {page}"
    );
    assert!(page.contains("200.00 USD → 150.00 USD"), "{page}");
    assert!(page.contains("20.00 USD → 15.00 USD"), "{page}");
    let remote = entry.remote_id.expect("pushed");
    assert!(page.contains(&format!(r#"<dd id="remote-id">{remote}</dd>"#)));
    assert!(page.contains(r#"<dd id="pushed-version">2</dd>"#), "{page}");
    assert!(page.contains(r#"<dd id="push-state">pushed</dd>"#));
    let pushed_at = entry.pushed_at.unwrap().format("%Y-%m-%d %H:%M:%S UTC");
    assert!(page.contains(&pushed_at.to_string()));
    assert!(page.contains("150.00 USD in sales · 15.00 USD commission"));
    assert!(page.contains(r#"id="order-final">Open"#));

    // 61 days after the sale the day is final. The session of two months ago has expired.
    w.app.clock.advance(Duration::days(60));
    assert_eq!(w.app.get(&path).await.status(), 401);
    assert_eq!(w.app.open_store("st_1").await.status(), 303);
    let page = w.app.page(&path).await;
    assert!(
        page.contains(r#"id="order-final"><strong>Final</strong>"#),
        "{page}"
    );
    assert_eq!(
        w.app
            .get("/app/stores/st_1/ledger/AMZ-ab_st_1-a1-20261111")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_held_decrease_shows_as_held_on_its_order() {
    let w = store_with(1)
        .setting("APP__SYNC__HOLD_DECREASE_SHARE", "0.3")
        .sales("20261118", &[(1, "100.00")])
        .connected()
        .await;
    w.sync_now().await;
    w.set_rows(vec![report_row("20261118", 1, 10, 0, "0")]);
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE hold_state = 'held'", 1)
        .await;
    let page = w
        .app
        .page("/app/stores/st_1/ledger/AMZ-ab_st_1-a1-20261118")
        .await;
    let held = section(&page, "order-held", "order-push");
    assert!(held.contains("Held"), "{held}");
    assert!(
        held.contains("0.00 USD in sales · 0.00 USD commission · rejected"),
        "{held}"
    );
    assert!(page.contains("100.00 USD in sales · 10.00 USD commission"));
    let ledger = w.app.page("/app/stores/st_1/ledger").await;
    assert!(ledger.contains("decrease held"));
}

#[tokio::test]
async fn the_activity_page_lists_the_runs_the_waiting_pushes_and_the_dead_letters() {
    let w = store_with(2)
        .sales("20261101", &[(1, "10.00"), (2, "20.00")])
        .connected()
        .await;
    // The first push is refused for good, the second fails for now.
    w.orders.faults.lock().unwrap().extend([
        (
            ResponseTemplate::new(400).set_body_json(json!({"error": "affiliate not found"})),
            false,
        ),
        (ResponseTemplate::new(503), false),
    ]);
    w.sync_now().await;
    let page = w.app.page("/app/stores/st_1/activity").await;
    assert!(page.contains(r#"id="nav-activity" aria-current="page""#));
    let runs = section(&page, "sync-runs", "waiting-work");
    assert_eq!(runs.matches("class=\"run-row\"").count(), 1);
    let run = attribution_bridge::store::runs::last(&w.app.state.deps.db, &store_id("st_1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((run.rows, run.pushes), (2, 2));
    for (class, n) in [
        ("run-rows", run.rows),
        ("run-changes", run.changes),
        ("run-pushes", run.pushes),
    ] {
        assert!(
            runs.contains(&format!(r#"<td class="{class}">{n}</td>"#)),
            "{class}: {runs}"
        );
    }
    assert!(runs.contains(r#"<td class="run-status">ok</td>"#));
    assert!(runs.contains("2026-09-21 to 2026-11-19"));
    assert!(runs.contains("0 ms"), "the clock stood still: {runs}");

    let work = status::work_left(&w.app.state.deps.db, &store_id("st_1"))
        .await
        .unwrap();
    let [waiting] = work.waiting.as_slice() else {
        panic!("one waiting push: {work:?}");
    };
    let waiting_html = section(&page, "waiting-work", "dead-letter-list");
    assert!(waiting_html.contains(r#"id="waiting-count">1<"#));
    assert!(
        waiting_html.contains(&waiting.what.replace('\'', "&#39;")),
        "{waiting_html}"
    );
    assert!(
        waiting_html.contains(&waiting.until.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        "its next run"
    );
    assert!(
        waiting_html.contains("503"),
        "its last error: {waiting_html}"
    );
    let dead = section(&page, "dead-letter-list", "none");
    assert!(dead.contains(r#"id="dead-count">1<"#));
    assert!(dead.contains("affiliate not found"), "{dead}");

    // "send them again" queues the dead letter once more.
    let csrf = csrf_of(dead).expect("the retry form");
    let res = w
        .app
        .post_form(
            "/app/stores/st_1/dead-letters/retry",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(res.status(), 303);
    let page = w.app.page("/app/stores/st_1/activity").await;
    assert!(page.contains(r#"id="dead-count">0<"#));
    assert!(page.contains(r#"id="waiting-count">2<"#));
}

#[tokio::test]
async fn every_page_answers_only_to_the_session_of_its_store() {
    let w = store_with(1)
        .report(vec![report_row("20261110", 1, 40, 4, "200.00")])
        .connected()
        .await;
    w.sync_now().await;
    // Another store with an order of its own.
    w.app.install("st_2", "gpat_two").await;
    w.app
        .execute(
            "INSERT INTO orders (store_id, affiliate_id, day, number, currency, clicks, purchases, \
             units, sales_minor, commission_minor, status, version, basis, computed_at, push_state, \
             pushed_version, pushed_sales_minor, pushed_commission_minor, pushed_status, remote_id, \
             create_attempted, last_push_error, pushed_at, created_at, updated_at, held, \
             hold_state, held_at) \
             SELECT 'st_2', affiliate_id, day, REPLACE(number, 'ab_st_1', 'ab_st_2'), currency, \
             clicks, purchases, units, sales_minor, commission_minor, status, version, basis, \
             computed_at, push_state, pushed_version, pushed_sales_minor, pushed_commission_minor, \
             pushed_status, remote_id, create_attempted, last_push_error, pushed_at, created_at, \
             updated_at, held, hold_state, held_at FROM orders WHERE store_id = 'st_1'",
        )
        .await;
    w.app.assert_rows("orders WHERE store_id = 'st_2'", 1).await;
    let mine = "AMZ-ab_st_1-a1-20261110";
    let theirs = "AMZ-ab_st_2-a1-20261110";

    let own = [
        "/app/stores/st_1".to_owned(),
        "/app/stores/st_1/affiliates".to_owned(),
        "/app/stores/st_1/affiliates/1".to_owned(),
        "/app/stores/st_1/figures".to_owned(),
        "/app/stores/st_1/figures.csv".to_owned(),
        "/app/stores/st_1/ledger".to_owned(),
        format!("/app/stores/st_1/ledger/{mine}"),
        "/app/stores/st_1/activity".to_owned(),
        "/app/stores/st_1/settings".to_owned(),
    ];
    for path in &own {
        assert_eq!(w.app.get(path).await.status(), 200, "{path}");
    }
    for path in [
        "/app/stores/st_2/ledger".to_owned(),
        format!("/app/stores/st_2/ledger/{theirs}"),
        format!("/app/stores/st_2/ledger/{mine}"),
        "/app/stores/st_2/activity".to_owned(),
        "/app/stores/st_2".to_owned(),
        "/app/stores/st_2/affiliates".to_owned(),
        "/app/stores/st_2/affiliates/1".to_owned(),
        "/app/stores/st_2/figures".to_owned(),
        "/app/stores/st_2/figures.csv".to_owned(),
        "/app/stores/st_2/settings".to_owned(),
        // Another store's order under this store's path is no order of this store.
        format!("/app/stores/st_1/ledger/{theirs}"),
        // A page without the session's store in its path.
        "/app/ledger".to_owned(),
        "/app/activity".to_owned(),
        format!("/app/ledger/{mine}"),
        "/app/stores/nope/ledger".to_owned(),
    ] {
        let res = w.app.get(&path).await;
        assert_eq!(res.status(), 404, "{path}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("200.00"), "{path} shows nothing of an order");
    }
    // Without a session: 401, and nothing shown.
    let stranger = browser_client();
    for path in &own {
        let res = stranger.get(w.app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        assert!(!res.text().await.unwrap().contains("200.00"));
    }
}

#[tokio::test]
async fn every_store_page_has_the_navigation_and_a_skip_link() {
    let w = store_with(1).connected().await;
    let pages = [
        ("/app/stores/st_1", "nav-overview"),
        ("/app/stores/st_1/affiliates", "nav-affiliates"),
        ("/app/stores/st_1/figures", "nav-figures"),
        ("/app/stores/st_1/ledger", "nav-ledger"),
        ("/app/stores/st_1/activity", "nav-activity"),
        ("/app/stores/st_1/settings", "nav-settings"),
    ];
    for (path, current) in pages {
        let page = w.app.page(path).await;
        let body = page.split("<body>").nth(1).unwrap().trim_start();
        assert!(
            body.starts_with(r##"<a class="skip-link" href="#content">Skip to content</a>"##),
            "{path}: the skip link comes first"
        );
        assert!(page.contains(r#"<main id="content""#), "{path}");
        let marked: BTreeSet<&str> = pages
            .iter()
            .map(|(_, id)| *id)
            .filter(|id| page.contains(&format!(r#"id="{id}" aria-current="page""#)))
            .collect();
        assert_eq!(marked, BTreeSet::from([current]), "{path}");
        for (link, _) in pages {
            assert!(
                page.contains(&format!(r#"href="{link}""#)),
                "{path} links {link}"
            );
        }
    }
}

#[tokio::test]
async fn a_form_is_judged_by_who_sends_it_before_what_it_says() {
    let app = app_with_store("st_1", "gpat_1", &[]).await;
    app.install("st_2", "gpat_2").await;
    // No session: 401, whatever the form.
    let stranger = browser_client();
    for body in ["", "csrf=x", "garbage=%ZZ"] {
        let res = stranger
            .post(app.url("/app/stores/st_1/sync"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "no session, body {body:?}");
    }
    // The session of st_1 posting to st_2: 404, even with no token at all.
    assert_eq!(app.open_store("st_1").await.status(), 303);
    let res = app.post_form("/app/stores/st_2/sync", &[("x", "y")]).await;
    assert_eq!(res.status(), 404);
    // Its own store with a form that lacks the token: a 400 page a person can read.
    let res = app.post_form("/app/stores/st_1/sync", &[("x", "y")]).await;
    assert_eq!(res.status(), 400);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}
