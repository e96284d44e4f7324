//! The report is staged page by page and ingested a span of affiliates at a time (issue 11):
//! what a sync decides stays the whole report's, and nothing staged outlives its run.
use attribution_bridge::flows::sync;

use crate::{doubles::report_row, helpers::start_time, world::*};

/// 200 affiliates pushed at 5.00 each (1,000.00 in all) on 2026-11-18. The report comes in pages
/// of 50 rows and outgrows the 120 rows a sync may hold on its third page, which is staged with
/// the two held before it; the ingest takes the staged report in three spans (about 5,000 rows
/// each: 83 affiliates' 60 days).
async fn two_hundred_pushed(share: &str) -> World {
    let w = store_with(200)
        .setting("APP__SYNC__HOLD_DECREASE_SHARE", share)
        .setting("APP__SYNC__HELD_ROWS", "120")
        .report_page_size(50)
        .same_sales("20261118", 200, "50.00")
        .connected()
        .await;
    w.sync_now().await;
    assert_eq!(w.orders.count(), 200);
    w.app.assert_rows("report_rows", 0).await;
    w
}

/// The report with affiliates `zeroed` selling nothing and the others as before.
fn with_zeroed(zeroed: &[i64]) -> Vec<serde_json::Value> {
    (1..=200)
        .map(|a| {
            if zeroed.contains(&a) {
                report_row("20261118", a, 10, 0, "0")
            } else {
                report_row("20261118", a, 10, 1, "50.00")
            }
        })
        .collect()
}

#[tokio::test]
async fn the_hold_rule_weighs_the_whole_report_not_one_span_of_it() {
    // 81 decreases, 405.00 of the 1,000.00 pushed (over 30 %): all are held, the one in
    // another span (affiliate 150, alone 1 % of its span) too.
    let w = two_hundred_pushed("0.3").await;
    let mut zeroed: Vec<i64> = (1..=80).collect();
    zeroed.push(150);
    w.set_rows(with_zeroed(&zeroed));
    let (from, to) = sync::daily_range(start_time().date_naive());
    assert!(
        w.run_sync(from, to).await.staged,
        "the report outgrew the rows held"
    );
    w.app.run_due_jobs().await;
    w.app
        .assert_rows("orders WHERE hold_state = 'held'", 81)
        .await;
    assert_eq!(w.order(150, "20261118")["commission"], "5.00", "held");
    assert_eq!(w.order(1, "20261118")["commission"], "5.00", "held");
    assert_eq!(w.orders.patches(), 0);
    w.app.assert_rows("sync_runs WHERE held = 81", 1).await;
    w.app.assert_rows("report_rows", 0).await;

    // 30 decreases, 150.00 of the 1,000.00 (under 30 %, though 36 % of their own span's): all
    // go through.
    let w = two_hundred_pushed("0.3").await;
    let zeroed: Vec<i64> = (1..=30).collect();
    w.set_rows(with_zeroed(&zeroed));
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE hold_state IS NOT NULL", 0)
        .await;
    assert_eq!(w.order(30, "20261118")["commission"], "0.00");
    assert_eq!(w.order(31, "20261118")["commission"], "5.00");
    assert_eq!(w.orders.patches(), 30);
}

#[tokio::test]
async fn rows_left_staged_by_a_run_that_ended_or_was_abandoned_are_swept() {
    let w = store_with(1)
        .setting("APP__SYNC__HELD_ROWS", "0")
        .same_sales("20261118", 1, "50.00")
        .connected()
        .await;
    // Runs that died mid-sync left rows: one ended since (marked failed), one started two days
    // ago and never ended (abandoned), one started an hour ago by no job (perhaps a sync of
    // before runs named their jobs, going); and three started by jobs: one gone, one claimed
    // again since with the same attempt number (a dead letter sent again counts anew), one whose
    // claim still runs.
    let t = |hm: &str| format!("2026-11-20T{hm}:00+00:00");
    for (id, updated) in [(991, t("09:30")), (992, t("09:00"))] {
        w.app
            .execute(&format!(
                "INSERT INTO jobs (id, kind, store_id, payload, status, attempts, run_at, \
                 lease_until, created_at, updated_at) VALUES ({id}, 'inert', 'st_1', '{{}}', \
                 'running', 1, '{updated}', '2026-11-21T00:00:00+00:00', '{updated}', '{updated}')"
            ))
            .await;
    }
    let runs = [
        (
            901,
            "failed",
            "2026-11-19T00:00:00+00:00".to_owned(),
            "NULL",
        ),
        (
            902,
            "running",
            "2026-11-18T10:00:00+00:00".to_owned(),
            "NULL",
        ),
        (903, "running", t("09:00"), "NULL"),
        (904, "running", t("09:00"), "990"),
        (905, "running", t("09:00"), "991"),
        (906, "running", t("09:30"), "992"),
    ];
    for (id, status, started, job) in runs {
        w.app
            .execute(&format!(
                "INSERT INTO sync_runs (id, store_id, \"trigger\", from_day, to_day, started_at, \
                 rows, changes, pushes, ignored_final, unmatched, incomplete, held, status, \
                 job_id, job_attempt) \
                 VALUES ({id}, 'st_1', 'test', '2026-09-20', '2026-11-18', '{started}', \
                 0, 0, 0, 0, 0, 0, 0, '{status}', {job}, 1)"
            ))
            .await;
        w.app
            .execute(&format!(
                "INSERT INTO report_rows VALUES ({id}, 'st_1', true, 1, '2026-11-18', 'ab_st_1', \
                 'a1', true, 1, 0, 0, 1, 1, 99900, 1, 1, 99900, 0)"
            ))
            .await;
    }
    w.sync_now().await;
    // The sync read its own report, not the leftovers (999.00 would pay 99.90).
    assert_eq!(w.order(1, "20261118")["commission"], "5.00");
    w.app
        .assert_counts(&[
            ("report_rows WHERE run_id IN (901, 902, 904, 905)", 0),
            ("report_rows WHERE run_id IN (903, 906)", 2),
            ("report_rows", 2),
            (
                "sync_runs WHERE id IN (902, 904, 905) AND status = 'failed' \
                 AND error LIKE 'abandoned%'",
                3,
            ),
            ("sync_runs WHERE id IN (903, 906) AND status = 'running'", 2),
        ])
        .await;
}

mod pages {
    //! A report held page by page, staged page by page, or held and then staged reads as the
    //! report merged page by page (`report::merge`, the reader's rule): the same rows, a key on
    //! two pages incomplete, the same count.
    use std::collections::BTreeMap;

    use attribution_bridge::{
        clients::amazon::report::{self, Figures, Reading, Rows},
        db,
        domain::{ids::StoreId, links::affiliate_of_ad_group},
        flows::sync::report::{Held, Report, stage, stage_held},
        store::{ledger::Span, report_rows},
    };
    use chrono::NaiveDate;
    use proptest::prelude::*;

    use crate::helpers::TestDb;

    /// A page: rows of (campaign: the store's or another; ad group: `a1`–`a3`, `a01` (no
    /// affiliate's spelling) or `x`; day offset, 3 being outside the range; clicks; complete).
    fn page() -> impl Strategy<Value = Vec<(bool, usize, i64, i64, bool)>> {
        prop::collection::vec(
            (any::<bool>(), 0usize..5, 0i64..4, 0i64..3, any::<bool>()),
            0..8,
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn staged_pages_read_as_their_merged_report(pages in prop::collection::vec(page(), 0..4)) {
            let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
            let range = (today - chrono::Duration::days(2), today);
            let pages: Vec<Rows> = pages
                .into_iter()
                .map(|rows| {
                    let mut page = Rows::new();
                    for (ours, group, age, clicks, complete) in rows {
                        let campaign = if ours { "ab_st_p" } else { "other" };
                        let ad_group = ["a1", "a2", "a3", "a01", "x"][group];
                        let reading = if complete {
                            Reading::Complete(Figures { clicks, ..Default::default() })
                        } else {
                            Reading::Incomplete
                        };
                        // Within a page a key is given once: the reader sums a split row.
                        let day = today - chrono::Duration::days(age);
                        page.insert((campaign.to_owned(), ad_group.to_owned(), day), reading);
                    }
                    page
                })
                .collect();
            let mut merged = Rows::new();
            for page in pages.clone() {
                report::merge(page, &mut merged);
            }
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let test_db = TestDb::new().await;
                let settings = attribution_bridge::config::DatabaseSettings {
                    url: test_db.url.clone().into(),
                    max_connections: 2,
                };
                let conn = db::connect_and_migrate(&settings).await.unwrap();
                let store = StoreId::parse("st_p").unwrap();
                let mut held = Held::default();
                for page in &pages {
                    stage(&conn, (&store, 7), "ab_st_p", page).await.unwrap();
                    held.add("ab_st_p", page.clone());
                }
                // Another run's rows, and another store's, are not this run's.
                let other = StoreId::parse("st_q").unwrap();
                for page in &pages {
                    stage(&conn, (&other, 8), "ab_st_p", page).await.unwrap();
                }
                // Rows held, then staged at once with the pages after them, as a sync whose
                // report outgrows `sync.held_rows` stages them.
                let (first, rest) = pages.split_first().map_or((None, &[][..]), |(f, r)| (Some(f), r));
                let mut early = Held::default();
                if let Some(first) = first {
                    early.add("ab_st_p", first.clone());
                }
                stage_held(&conn, (&store, 9), &early).await.unwrap();
                for page in rest {
                    stage(&conn, (&store, 9), "ab_st_p", page).await.unwrap();
                }
                let figures = |r: &Reading| match r {
                    Reading::Complete(f) => Some(f.clone()),
                    Reading::Incomplete => None,
                };
                let mut ours: BTreeMap<(i64, NaiveDate), Option<Figures>> = BTreeMap::new();
                let mut others = BTreeMap::new();
                for ((campaign, ad_group, day), reading) in &merged {
                    if *day < range.0 || *day > range.1 {
                        continue;
                    }
                    match affiliate_of_ad_group(ad_group).filter(|_| campaign == "ab_st_p") {
                        Some(id) => {
                            ours.insert((id, *day), figures(reading));
                        }
                        None => {
                            others.insert((campaign.clone(), ad_group.clone(), *day), figures(reading));
                        }
                    }
                }
                for mut report in [Report::Held(held), Report::Staged(7), Report::Staged(9)] {
                    let read = report.take_ours(&conn, &store, Span::days(range)).await.unwrap();
                    assert_eq!(read, ours, "{report:?}");
                    let mut read = BTreeMap::new();
                    let mut after = None;
                    loop {
                        let chunk = report.take_others(&conn, &store, range, after.as_ref()).await.unwrap();
                        let Some((last, _)) = chunk.last() else { break };
                        after = Some(last.clone());
                        read.extend(chunk);
                    }
                    assert_eq!(read, others, "{report:?}");
                    let count = report.count(&conn, &store).await.unwrap();
                    assert_eq!(count, u64::try_from(merged.len()).unwrap(), "{report:?}");
                }
                // The staged other rows read two at a time, each chunk after the last key of
                // the one before, are every one of them once.
                let mut read = BTreeMap::new();
                let mut after = None;
                loop {
                    let chunk = report_rows::others_in(&conn, &store, 7, range, after.as_ref(), 2)
                        .await
                        .unwrap();
                    let Some((last, _)) = chunk.last() else { break };
                    assert!(chunk.len() <= 2);
                    after = Some(last.clone());
                    for (key, staged) in chunk {
                        assert!(read.insert(key, staged).is_none(), "read twice");
                    }
                }
                assert_eq!(read, others);
                conn.close().await.unwrap();
            });
        }
    }
}

#[tokio::test]
async fn a_staged_reports_other_rows_are_kept_as_unmatched_and_read_again_change_nothing() {
    // An affiliate's sale, two rows of another campaign of the advertiser, an ad group `a99` of
    // no affiliate of the store, and an incomplete row of the other campaign.
    let mut other = report_row("20261118", 1, 7, 1, "30.00");
    other["campaignId"] = "their_campaign".into();
    let mut other_two = other.clone();
    other_two["adGroupId"] = "summer".into();
    let mut incomplete = other.clone();
    incomplete["adGroupId"] = "winter".into();
    incomplete["attributedSales14d"] = serde_json::Value::Null;
    let rows = vec![
        report_row("20261118", 1, 10, 1, "50.00"),
        other,
        other_two,
        report_row("20261118", 99, 3, 1, "20.00"),
        incomplete,
    ];
    let w = store_with(1)
        .setting("APP__SYNC__HELD_ROWS", "0")
        .report(rows.clone())
        .connected()
        .await;
    let (from, to) = sync::daily_range(start_time().date_naive());
    let first = w.run_sync(from, to).await;
    assert!(first.staged);
    assert_eq!((first.rows, first.unmatched, first.changes), (5, 3, 1));
    w.app
        .assert_counts(&[
            ("unmatched_figures", 3),
            (
                "unmatched_figures WHERE ad_group_id = 'a99' AND sales_minor = 2000",
                1,
            ),
            ("unmatched_figures WHERE ad_group_id = 'winter'", 0),
            ("report_rows", 0),
        ])
        .await;
    // The same report again changes nothing; a restated unmatched row is updated in place.
    let mut restated = rows;
    restated[2]["Click-throughs"] = "9".into();
    w.set_rows(restated);
    let again = w.run_sync(from, to).await;
    assert_eq!((again.unmatched, again.changes), (3, 0));
    w.app
        .assert_counts(&[
            ("unmatched_figures", 3),
            (
                "unmatched_figures WHERE ad_group_id = 'summer' AND clicks = 9",
                1,
            ),
        ])
        .await;
}
