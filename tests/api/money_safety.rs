//! Money stays right when Amazon misbehaves (DESIGN §4.3, §5): incomplete rows are never read as
//! zero, a vanished day is zeroed only when its absence is confirmed, one report cannot reverse
//! commissions in bulk, and currencies never mix.
use chrono::Duration;
use serde_json::{Value, json};

use crate::{doubles::*, helpers::*, world::*};

fn amounts(o: &Value) -> (&str, &str, &str) {
    (
        o["total"].as_str().unwrap(),
        o["commission"].as_str().unwrap(),
        o["status"].as_str().unwrap(),
    )
}

/// `row` with every metric replaced by `value` (null, "" …), or removed when `value` is None.
fn with_metrics(mut row: Value, value: Option<Value>) -> Value {
    let keys: Vec<String> = row
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| {
            ![
                "date",
                "campaignId",
                "adGroupId",
                "advertiserName",
                "publisher",
            ]
            .contains(&k.as_str())
        })
        .cloned()
        .collect();
    for k in keys {
        match &value {
            Some(v) => row[&k] = v.clone(),
            None => {
                row.as_object_mut().unwrap().remove(&k);
            }
        }
    }
    row
}

/// A store whose day 2026-11-18 (age 2) was pushed as 50.00 / 5.00 for affiliate 1.
async fn pushed_fifty(share: &str) -> World {
    let w = store_with(1)
        .setting("APP__SYNC__HOLD_DECREASE_SHARE", share)
        .report(vec![report_row("20261118", 1, 20, 1, "50.00")])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(
        amounts(&w.order(1, "20261118")),
        ("50.00", "5.00", "approved")
    );
    w
}

#[tokio::test]
async fn a_day_whose_metrics_all_come_back_null_keeps_its_pushed_commission() {
    let w = pushed_fifty("1").await;
    for metrics in [Some(json!(null)), Some(json!("")), None] {
        w.set_rows(vec![with_metrics(
            report_row("20261118", 1, 20, 1, "50.00"),
            metrics.clone(),
        )]);
        w.sync_now().await;
        assert_eq!(
            amounts(&w.order(1, "20261118")),
            ("50.00", "5.00", "approved"),
            "metrics {metrics:?}"
        );
        assert_eq!(w.orders.patches(), 0, "no PATCH is sent");
    }
    w.app
        .assert_rows("sync_runs WHERE status = 'ok' AND incomplete = 1", 3)
        .await;
    w.assert_setup_page_says("1 incomplete row(s)", "the setup page says so")
        .await;
}

#[tokio::test]
async fn complete_rows_apply_and_incomplete_ones_wait_on_the_same_page() {
    let w = store_with(2)
        .sales("20261117", &[(1, "40.00"), (2, "60.00")])
        .connected()
        .await;
    w.sync_now().await;
    let mut half = report_row("20261117", 2, 10, 1, "99.00");
    half["attributedPurchases14d"] = json!("");
    w.set_rows(vec![report_row("20261117", 1, 10, 2, "80.00"), half]);
    w.sync_now().await;
    assert_eq!(
        w.order(1, "20261117")["commission"],
        "8.00",
        "the complete row applies"
    );
    assert_eq!(
        w.order(2, "20261117")["commission"],
        "6.00",
        "the incomplete one waits"
    );
    // Amazon completes the row later: then it applies.
    w.set_rows(vec![
        report_row("20261117", 1, 10, 2, "80.00"),
        report_row("20261117", 2, 10, 1, "99.00"),
    ]);
    w.sync_now().await;
    assert_eq!(w.order(2, "20261117")["commission"], "9.90");
}

#[tokio::test]
async fn a_vanished_day_is_zeroed_only_when_still_absent_twelve_hours_later() {
    let w = pushed_fifty("1").await;
    w.set_rows(vec![]);
    w.sync_now().await;
    assert_eq!(
        amounts(&w.order(1, "20261118")),
        ("50.00", "5.00", "approved")
    );
    // 11 h 59 min later: still not confirmed.
    w.app
        .clock
        .advance(Duration::hours(12) - Duration::minutes(1));
    w.sync_now().await;
    assert_eq!(w.order(1, "20261118")["commission"], "5.00");
    assert_eq!(w.orders.patches(), 0);
    // 12 h after the first absent reading: Amazon means it.
    w.app.clock.advance(Duration::minutes(1));
    w.sync_now().await;
    assert_eq!(
        amounts(&w.order(1, "20261118")),
        ("0.00", "0.00", "rejected")
    );
}

#[tokio::test]
async fn a_day_that_comes_back_is_no_longer_counted_absent() {
    let w = pushed_fifty("1").await;
    w.set_rows(vec![]);
    w.sync_now().await;
    w.app.clock.advance(Duration::hours(6));
    w.set_rows(vec![report_row("20261118", 1, 20, 1, "50.00")]);
    w.sync_now().await;
    // Gone again, 12 h after the first absence but only 6 h after the second: kept.
    w.app.clock.advance(Duration::hours(7));
    w.set_rows(vec![]);
    w.sync_now().await;
    assert_eq!(w.order(1, "20261118")["commission"], "5.00");
}

#[tokio::test]
async fn numeric_zeros_are_amazons_word_and_apply_at_once() {
    let w = pushed_fifty("1").await;
    w.set_rows(vec![report_row("20261118", 1, 20, 0, "0")]);
    w.sync_now().await;
    assert_eq!(
        amounts(&w.order(1, "20261118")),
        ("0.00", "0.00", "rejected")
    );
}

#[tokio::test]
async fn an_incident_that_nulls_every_ad_group_reverses_nothing() {
    let w = three_pushed("0.3").await;
    // Amazon loses the ad group ids: the rows are there, but no longer the affiliates'.
    let incident: Vec<Value> = (1..=3)
        .map(|a| {
            let mut r = report_row("20261118", a, 10, 1, "100.00");
            r["adGroupId"] = json!(null);
            r
        })
        .collect();
    w.set_rows(incident);
    w.sync_now().await;
    w.app.clock.advance(Duration::hours(13));
    w.sync_now().await;
    for a in 1..=3 {
        assert_eq!(
            w.order(a, "20261118")["commission"],
            "10.00",
            "affiliate {a}"
        );
    }
    assert_eq!(w.orders.patches(), 0);
    // Confirmed absent, the zeroing would cut everything: held for the merchant, who opens the
    // app again (the session of 13 hours ago has expired).
    assert_eq!(w.app.open_store("st_1").await.status(), 303);
    let page = w.app.page("/app/stores/st_1").await;
    assert!(
        page.contains("id=\"held-changes\""),
        "held changes are shown"
    );
    assert_eq!(page.matches("class=\"held-row\"").count(), 3);
    let metrics = w.app.page("/metrics").await;
    assert!(
        metrics.contains("attribution_bridge_held_decreases 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_sync_that_would_cut_too_much_holds_its_decreases_and_lets_increases_through() {
    let w = three_pushed("0.3").await;
    // Affiliate 1 and 2 lose everything (20.00 of 30.00 pushed), affiliate 3 gains.
    w.set_rows(vec![
        report_row("20261118", 1, 10, 0, "0"),
        report_row("20261118", 2, 10, 0, "0"),
        report_row("20261118", 3, 10, 2, "200.00"),
    ]);
    w.sync_now().await;
    assert_eq!(w.order(1, "20261118")["commission"], "10.00", "held");
    assert_eq!(w.order(2, "20261118")["commission"], "10.00", "held");
    assert_eq!(
        w.order(3, "20261118")["commission"],
        "20.00",
        "increases go through"
    );
    w.app.assert_rows("sync_runs WHERE held = 2", 1).await;
    w.app
        .assert_rows("orders WHERE hold_state = 'held'", 2)
        .await;

    // The merchant discards: nothing changes, and the same reading is not held again.
    let page = w.app.page("/app/stores/st_1").await;
    let csrf = csrf_of(&page).unwrap();
    let res = w
        .app
        .post_form("/app/stores/st_1/held/discard", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(res.status(), 303);
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE hold_state = 'held'", 0)
        .await;
    assert_eq!(w.order(1, "20261118")["commission"], "10.00");
    assert_eq!(w.orders.patches(), 1, "only the increase was sent");
}

#[tokio::test]
async fn applying_held_decreases_pushes_them() {
    let w = three_pushed("0.3").await;
    w.set_rows(
        (1..=3)
            .map(|a| report_row("20261118", a, 10, 0, "0"))
            .collect(),
    );
    w.sync_now().await;
    assert_eq!(w.orders.patches(), 0);
    let page = w.app.page("/app/stores/st_1").await;
    let csrf = csrf_of(&page).unwrap();
    // Without the page's token, nothing happens.
    let refused = w
        .app
        .post_form("/app/stores/st_1/held/apply", &[("csrf", "forged")])
        .await;
    assert_eq!(refused.status(), 403);
    let res = w
        .app
        .post_form("/app/stores/st_1/held/apply", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(res.status(), 303);
    w.app.run_due_jobs().await;
    for a in 1..=3 {
        assert_eq!(
            amounts(&w.order(a, "20261118")),
            ("0.00", "0.00", "rejected")
        );
    }
    assert_eq!(w.orders.patches(), 3);
    w.app
        .assert_rows("orders WHERE hold_state IS NOT NULL", 0)
        .await;
}

/// A store connected to a marketplace selling in `currency`, with this default commission.
async fn marketplace(currency: &str, kind: &str, value: &str, sales: &str) -> World {
    let w = store_with(1)
        .report(vec![report_row("20261118", 1, 20, 1, sales)])
        .opened()
        .await;
    w.app.send(&commission_event("st_1", kind, value)).await;
    w.amazon.ads.profiles.lock().unwrap()[0]["currencyCode"] = json!(currency);
    let flash = w.connect_amazon(&[]).await;
    assert!(flash.contains("connected"), "{flash}");
    w.sync_now().await;
    w
}

#[tokio::test]
async fn a_percentage_pays_in_the_marketplaces_currency_and_exponent() {
    // (marketplace, Amazon's sales text, the order's total and commission)
    let cases = [
        ("JPY", "1234.5", "1235", "124"),
        ("KWD", "12.3456", "12.346", "1.235"),
        ("EUR", "19.99", "19.99", "2.00"),
    ];
    let mut last = None;
    for (currency, sales, total, commission) in cases {
        let w = marketplace(currency, "percentage", "10", sales).await;
        let o = w.order(1, "20261118");
        let got =
            [&o["currency"], &o["total"], &o["commission"]].map(|v| v.as_str().unwrap().to_owned());
        assert_eq!(got, [currency, total, commission], "{currency}");
        last = Some(w);
    }
    let w = last.unwrap();
    w.assert_setup_page_says("2.00 EUR", "amounts show their currency")
        .await;
}

#[tokio::test]
async fn a_flat_commission_on_a_marketplace_of_another_currency_is_refused_visibly() {
    let w = marketplace("EUR", "flat", "2.50", "19.99").await;
    assert_eq!(w.orders.count(), 0, "nothing is pushed");
    w.app.assert_rows("orders", 0).await;
    w.assert_setup_page_says("currencies never mix", "the setup page says why")
        .await;
    let run = w.app.cli(&["sync", "--store", "st_1", "--wait", "0"]);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(
        said.contains("currencies never mix"),
        "`sync` says why: {said}"
    );
}

#[tokio::test]
async fn a_discarded_reading_stays_discarded_when_later_increases_shrink_its_share() {
    let w = three_pushed("0.3").await;
    let cut = |a3: &str| {
        vec![
            report_row("20261118", 1, 10, 0, "0"),
            report_row("20261118", 2, 10, 0, "0"),
            report_row("20261118", 3, 10, 1, a3),
        ]
    };
    w.set_rows(cut("100.00"));
    w.sync_now().await;
    let page = w.app.page("/app/stores/st_1").await;
    let csrf = csrf_of(&page).unwrap();
    w.app
        .post_form("/app/stores/st_1/held/discard", &[("csrf", csrf.as_str())])
        .await;
    // Affiliate 3 sells much more: the same cuts are now a small share of what was pushed.
    w.set_rows(cut("1000.00"));
    w.sync_now().await;
    w.sync_now().await;
    assert_eq!(w.order(3, "20261118")["commission"], "100.00");
    for a in 1..=2 {
        assert_eq!(
            w.order(a, "20261118")["commission"],
            "10.00",
            "the merchant discarded this reading for affiliate {a}"
        );
    }
}

#[tokio::test]
async fn the_merchants_own_lower_commission_is_never_held() {
    let w = three_pushed("0.3").await;
    w.app.clock.advance(Duration::minutes(1));
    w.app
        .send(&commission_event("st_1", "percentage", "5"))
        .await;
    w.sync_now().await;
    for a in 1..=3 {
        assert_eq!(
            w.order(a, "20261118")["commission"],
            "5.00",
            "affiliate {a}"
        );
    }
    w.app
        .assert_rows("orders WHERE hold_state IS NOT NULL", 0)
        .await;
}

#[tokio::test]
async fn reconnecting_to_a_marketplace_of_another_currency_updates_no_order() {
    let w = pushed_fifty("1").await;
    w.amazon.ads.profiles.lock().unwrap()[0]["currencyCode"] = json!("JPY");
    let flash = w.connect_amazon(&[]).await;
    assert!(flash.contains("connected"), "{flash}");
    w.set_rows(vec![report_row("20261118", 1, 20, 1, "15000")]);
    w.sync_now().await;
    assert_eq!(
        amounts(&w.order(1, "20261118")),
        ("50.00", "5.00", "approved")
    );
    assert_eq!(w.orders.patches(), 0);
    w.assert_setup_page_says("currencies never mix", "the setup page says why")
        .await;
}

#[tokio::test]
async fn only_the_exact_ad_group_the_app_minted_is_an_affiliates() {
    let w = store_with(1)
        .report(vec![
            report_row("20261118", 1, 20, 1, "50.00"),
            {
                let mut r = report_row("20261117", 1, 20, 1, "900.00");
                r["adGroupId"] = json!("a01");
                r
            },
            {
                let mut r = report_row("20261116", 1, 20, 1, "900.00");
                r["adGroupId"] = json!("a+1");
                r
            },
        ])
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 1, "only a1's day is paid");
    w.app.assert_rows("unmatched_figures", 2).await;
}
