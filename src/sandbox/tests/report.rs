use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::super::figures::{is_tiny, raw_clicks};
use super::super::report::HISTORY_DAYS;
use super::{Harness, SEED, ad_groups, keys_of};

fn adgroup_body(start: &str, end: &str, metrics: &str) -> Value {
    json!({"reportType": "PERFORMANCE", "startDate": start, "endDate": end, "groupBy": "ADGROUP",
           "metrics": metrics, "count": 5000, "cursorId": ""})
}

/// ad group → purchases of one day, from an ADGROUP report.
async fn purchases(h: &Harness, token: &str, day: &str) -> BTreeMap<String, u64> {
    let (status, body) = h
        .report(
            token,
            adgroup_body(day, day, "attributedPurchases14d,attributedSales14d"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["adGroupId"].as_str().unwrap().to_owned(),
                r["attributedPurchases14d"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap(),
            )
        })
        .collect()
}

#[actix_web::test]
async fn invalid_report_requests_get_a_maas_error() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let ok = json!({"reportType": "PERFORMANCE", "startDate": "20261101", "endDate": "20261119"});
    let cases = [
        (json!({"reportType": "SALES"}), "reportType"),
        (json!({"startDate": "2026-11-01"}), "startDate"),
        (json!({"endDate": "20261341"}), "endDate"),
        (
            json!({"startDate": "20261119", "endDate": "20261101"}),
            "startDate",
        ),
        (
            json!({"reportType": "PRODUCTS", "groupBy": "ADGROUP"}),
            "groupBy",
        ),
        (json!({"groupBy": "AFFILIATE"}), "groupBy"),
        (json!({"count": 0}), "count"),
        (json!({"count": 5001}), "count"),
        (
            json!({"metrics": "Click-throughs,attributedSales"}),
            "attributedSales",
        ),
        (json!({"metrics": "brb_bonus_amount"}), "brb_bonus_amount"),
        (
            json!({"groupBy": "CREATIVE", "metrics": "Click-throughs,brb_bonus_amount"}),
            "brb_bonus_amount",
        ),
        (
            json!({"reportType": "PRODUCTS", "metrics": "Click-throughs"}),
            "Click-throughs",
        ),
        (json!({"advertiserIds": "42"}), "advertiser"),
        (json!({"cursorId": "not json"}), "cursorId"),
    ];
    for (patch, fragment) in cases {
        let mut body = ok.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, err) = h.report(&access, body.clone()).await;
        assert_eq!((status, err["code"].as_str()), (400, Some("400")), "{body}");
        assert!(
            err["details"].as_str().unwrap().contains(fragment),
            "{body} → {err}"
        );
    }
    let mut with_brb = ok.clone();
    with_brb["groupBy"] = json!("CAMPAIGN");
    with_brb["metrics"] = json!("Click-throughs,brb_bonus_amount");
    assert_eq!(h.report(&access, with_brb).await.0, 200);
}

#[actix_web::test]
async fn rows_carry_string_metrics_from_45_days_before_the_first_click_until_yesterday() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    h.click_links(&access, "c1", &ad_groups(1)).await;
    let body = json!({"startDate": "20260901", "endDate": "20261130", "metrics": "Click-throughs,attributedSales14d"});
    let (status, report) = h.report(&access, body).await;
    assert_eq!(status, 200, "{report}");
    let rows = report["reports"].as_array().unwrap();
    assert_eq!(
        rows.len() as i64,
        HISTORY_DAYS,
        "one row per day, creative level by default"
    );
    assert_eq!(rows[0]["date"], "20261006");
    assert_eq!(
        rows.last().unwrap()["date"],
        "20261119",
        "today and the future have no rows"
    );
    let keys = keys_of(&rows[0]);
    let mut expected = vec![
        "Click-throughs",
        "adGroupId",
        "advertiserName",
        "attributedSales14d",
        "campaignId",
        "creativeId",
        "date",
        "publisher",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(
        (
            rows[0]["publisher"].as_str(),
            rows[0]["creativeId"].as_str()
        ),
        (Some("Email - Other"), Some("home"))
    );
    assert!(
        rows.iter()
            .all(|r| r["Click-throughs"].is_string() && r["attributedSales14d"].is_string())
    );
    let clicks: Vec<u64> = rows
        .iter()
        .map(|r| r["Click-throughs"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(clicks.iter().all(|c| *c <= 40));
    assert_eq!(report["size"], 45);
    assert_eq!(report["cursorId"], "");
}

#[actix_web::test]
async fn pages_follow_a_json_string_cursor_until_it_is_empty() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    h.click_links(&access, "c1", &ad_groups(2)).await;
    let mut body = adgroup_body("20261117", "20261119", "Click-throughs");
    body["count"] = json!(2);
    let mut pages = Vec::new();
    loop {
        let (status, page) = h.report(&access, body.clone()).await;
        assert_eq!(status, 200, "{page}");
        let cursor = page["cursorId"].as_str().unwrap().to_owned();
        assert_eq!(page["size"], page["reports"].as_array().unwrap().len());
        pages.push(page);
        if cursor.is_empty() {
            break;
        }
        let parsed: Value = serde_json::from_str(&cursor).expect("the cursor is itself JSON");
        assert!(parsed.is_object());
        body["cursorId"] = json!(cursor);
        assert!(pages.len() < 10);
    }
    assert_eq!(pages.len(), 3);
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["reports"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![2, 2, 2]);
    let paged: Vec<Value> = pages
        .iter()
        .flat_map(|p| p["reports"].as_array().unwrap().clone())
        .collect();
    let (_, whole) = h
        .report(
            &access,
            adgroup_body("20261117", "20261119", "Click-throughs"),
        )
        .await;
    assert_eq!(
        &paged,
        whole["reports"].as_array().unwrap(),
        "pages add up to the whole"
    );
    let keys: Vec<(String, String)> = paged
        .iter()
        .map(|r| {
            (
                r["date"].as_str().unwrap().into(),
                r["adGroupId"].as_str().unwrap().into(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys, sorted, "ordered by date, no duplicates");
}

#[actix_web::test]
async fn rows_of_links_under_ten_lifetime_clicks_are_zeros() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    h.click_links(&access, "c1", &ad_groups(40)).await;
    let yesterday = NaiveDate::from_ymd_opt(2026, 11, 19).unwrap();
    let clicks = h.sandbox.read(|s| s.clicks.clone());
    let days = |c: &super::super::world::Click| {
        let first = c.first_day - Duration::days(HISTORY_DAYS);
        first
            .iter_days()
            .take_while(|d| *d <= yesterday)
            .collect::<Vec<_>>()
    };
    let tiny = clicks
        .iter()
        .find(|c| {
            is_tiny(SEED, c)
                && (1..10).contains(&days(c).iter().map(|d| raw_clicks(SEED, c, *d)).sum::<u64>())
        })
        .expect("seed 42 has a tiny link among 40");
    let clicked_day = days(tiny)
        .into_iter()
        .find(|d| raw_clicks(SEED, tiny, *d) > 0)
        .unwrap();
    let day = clicked_day.format("%Y%m%d").to_string();
    let (_, report) = h
        .report(
            &access,
            adgroup_body(
                &day,
                &day,
                "Click-throughs,attributedSales14d,brb_bonus_amount",
            ),
        )
        .await;
    let rows = report["reports"].as_array().unwrap();
    let masked = rows
        .iter()
        .find(|r| r["adGroupId"] == tiny.ad_group_id.as_str())
        .unwrap();
    assert_eq!(
        masked["Click-throughs"], "0",
        "it had a click that day, but is masked"
    );
    assert_eq!(
        (
            masked["attributedSales14d"].as_str(),
            masked["brb_bonus_amount"].as_str()
        ),
        (Some("0"), Some("0"))
    );
    let busy = clicks.iter().find(|c| !is_tiny(SEED, c)).unwrap();
    let (_, report) = h
        .report(
            &access,
            adgroup_body("20261101", "20261119", "Click-throughs"),
        )
        .await;
    let busy_clicks: u64 = report["reports"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["adGroupId"] == busy.ad_group_id.as_str())
        .map(|r| {
            r["Click-throughs"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    assert!(busy_clicks >= 10);
}

#[actix_web::test]
async fn a_manual_restatement_moves_one_day_for_every_link() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    h.click_links(&access, "c1", &ad_groups(12)).await;
    let before = purchases(&h, &access, "20261110").await;
    let other_day = purchases(&h, &access, "20261109").await;
    assert!(before.values().any(|p| *p > 0), "{before:?}");
    assert_eq!(
        purchases(&h, &access, "20261110").await,
        before,
        "deterministic"
    );

    assert_eq!(h.restate("2026-11-10", "down").await.status(), 303);
    let lowered = purchases(&h, &access, "20261110").await;
    for (group, p) in &before {
        assert_eq!(lowered[group], p.saturating_sub(1), "{group}");
    }
    assert_eq!(
        purchases(&h, &access, "20261109").await,
        other_day,
        "other days are untouched"
    );
    h.restate("2026-11-10", "up").await;
    let raised = purchases(&h, &access, "20261110").await;
    for (group, p) in &before {
        assert_eq!(raised[group], (*p).max(1), "{group}");
    }
    let future = h.restate("2026-11-20", "up").await;
    assert_eq!(future.status(), 400);
    let bad = h.restate("2026-11-10", "sideways").await;
    assert_eq!(bad.status(), 400);
    assert!(
        bad.text().await.unwrap().contains("sandbox-banner"),
        "a page, not plain text"
    );
}

#[actix_web::test]
async fn figures_rise_with_late_conversions_and_fall_with_returns_as_days_age() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let groups = ad_groups(24);
    h.click_links(&access, "c1", &groups).await;
    let busy: Vec<String> = h.sandbox.read(|s| {
        s.clicks
            .iter()
            .filter(|c| !is_tiny(SEED, c))
            .map(|c| c.ad_group_id.clone())
            .collect()
    });
    // 19 Nov is 1 day old and 14 Nov 6 days; two days later they are 3 and 8 days old.
    let (young, old) = (
        purchases(&h, &access, "20261119").await,
        purchases(&h, &access, "20261114").await,
    );
    h.clock.advance(Duration::days(2));
    let (access, _) = h.tokens().await; // the old access token expired meanwhile
    let (aged_young, aged_old) = (
        purchases(&h, &access, "20261119").await,
        purchases(&h, &access, "20261114").await,
    );
    assert!(
        busy.iter().all(|g| aged_young[g] >= young[g])
            && busy.iter().any(|g| aged_young[g] > young[g]),
        "late conversions: {young:?} → {aged_young:?}"
    );
    assert!(
        busy.iter().all(|g| aged_old[g] <= old[g]) && busy.iter().any(|g| aged_old[g] < old[g]),
        "returns: {old:?} → {aged_old:?}"
    );
    h.clock.advance(Duration::days(-2));
    assert_eq!(
        purchases(&h, &access, "20261119").await,
        young,
        "the same day and age give the same figures"
    );
}

#[actix_web::test]
async fn injected_faults_answer_report_calls_in_order() {
    let h = Harness::start().await;
    let (access, _) = h.tokens().await;
    let faults =
        json!({"report": [{"status": 429, "retry_after": 2}, {"status": 429}, {"status": 500}]});
    let resp = h.post_json("/sandbox/amazon/faults", &faults).await;
    assert_eq!(resp.status(), 200);
    let body = json!({"startDate": "20261101", "endDate": "20261119"});
    let call = || h.report_request(&access, &body);
    let first = call().await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers().get("retry-after").unwrap(), "2");
    let second = call().await;
    assert_eq!(second.status(), 429);
    assert!(second.headers().get("retry-after").is_none());
    let third = call().await;
    assert_eq!(third.status(), 500);
    assert_eq!(third.json::<Value>().await.unwrap()["code"], "500");
    assert_eq!(call().await.status(), 200, "faults are used up");
}
