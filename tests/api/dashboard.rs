//! The Overview, Affiliates, affiliate, Figures and Settings pages over HTTP: every number equal to
//! the ledger's, with its currency; sorting, search and CSV; each page only for its store.
use attribution_bridge::flows::status::{self, LedgerEntry};
use chrono::{Duration, NaiveDate};

use crate::{doubles::*, helpers::*, world::*};

fn day(age: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 20).unwrap() - Duration::days(age)
}

/// `"12.34"` (USD) in cents.
fn cents(amount: &str) -> i64 {
    let (major, minor) = amount.split_once('.').expect("two decimals");
    major.parse::<i64>().unwrap() * 100 + minor.parse::<i64>().unwrap()
}

fn usd(cents: i64) -> String {
    format!("{}.{:02} USD", cents / 100, cents % 100)
}

/// Three affiliates with sales on each of 40 days (ages 2 to 41): some days fall outside the
/// last 30 days, all of them inside the 60-day window. Synced and pushed.
async fn forty_days() -> (World, Vec<LedgerEntry>) {
    let rows = (1..=3)
        .flat_map(|a| {
            (2..=41).map(move |age| {
                let sales = format!("{}.{:02}", 10 * a + age, (7 * a + 3 * age) % 100);
                report_row(&day(age).format("%Y%m%d").to_string(), a, 20, 2, &sales)
            })
        })
        .collect();
    let w = store_with(3).report(rows).connected().await;
    w.sync_now().await;
    let ledger = status::ledger(&w.app.state.deps.db, &store_id("st_1"))
        .await
        .unwrap();
    assert_eq!(ledger.len(), 120);
    (w, ledger)
}

/// Sales and commission (cents) of the entries that `keep` lets through.
fn sums(ledger: &[LedgerEntry], keep: impl Fn(&LedgerEntry) -> bool) -> (i64, i64) {
    ledger.iter().filter(|e| keep(e)).fold((0, 0), |(s, c), e| {
        (s + cents(&e.total), c + cents(&e.commission))
    })
}

/// The text of the element with id `id`.
fn text_of(page: &str, id: &str) -> String {
    let at = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id}"));
    let rest = &page[at..];
    rest[rest.find('>').unwrap() + 1..]
        .split('<')
        .next()
        .unwrap()
        .to_owned()
}

/// The affiliate ids of the Affiliates page's rows, in page order.
fn row_ids(page: &str) -> Vec<i64> {
    page.split("data-affiliate=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn the_overview_adds_up_the_last_30_days_of_the_ledger() {
    let (w, ledger) = forty_days().await;
    let page = w.app.page("/app/stores/st_1").await;
    // Yesterday back to 30 days ago: ages 1 to 30, of which 2 to 30 have sales.
    let recent = |e: &LedgerEntry| (day(30)..=day(1)).contains(&e.day);
    let (sales, commission) = sums(&ledger, recent);
    assert_eq!(text_of(&page, "n-sales"), usd(sales));
    assert_eq!(text_of(&page, "n-commission"), usd(commission));
    assert_eq!(text_of(&page, "n-clicks"), (29 * 3 * 20).to_string());
    assert_eq!(text_of(&page, "n-purchases"), (29 * 3 * 2).to_string());
    assert!(
        page.contains("<svg"),
        "a chart of the 30 days is drawn on the page"
    );
    assert!(page.contains(r#"role="img" aria-label="Bar chart of daily sales"#));
    // Nothing needs attention: no dead letters, no holds.
    assert!(text_of(&page, "dead-letters").contains("Refused by the program: 0"));
    assert!(!page.contains(r#"id="held""#));
}

#[tokio::test]
async fn the_affiliates_page_lists_each_affiliate_with_its_30_days_sortable_and_searchable() {
    let (w, ledger) = forty_days().await;
    let page = w.app.page("/app/stores/st_1/affiliates").await;
    assert_eq!(row_ids(&page), vec![1, 2, 3], "by id at first");
    for a in 1..=3 {
        let row = page
            .split(&format!("data-affiliate=\"{a}\""))
            .nth(1)
            .unwrap()
            .split("</tr>")
            .next()
            .unwrap();
        let (sales, commission) = sums(&ledger, |e| e.affiliate_id == a && e.day >= day(30));
        assert!(row.contains(&usd(sales)), "affiliate {a}'s sales: {row}");
        assert!(row.contains(&usd(commission)), "affiliate {a}'s commission");
        assert!(row.contains(&format!("Affiliate {a}")));
        assert!(
            row.contains(r#"class="link" readonly value="https://"#),
            "its link"
        );
        assert!(row.contains(r#"data-copy="#), "a Copy button");
    }
    let by_commission = w
        .app
        .page("/app/stores/st_1/affiliates?sort=commission&dir=desc")
        .await;
    assert_eq!(row_ids(&by_commission), vec![3, 2, 1]);
    assert!(
        by_commission.contains(
            r#"aria-sort="descending"><a href="?sort=commission&#38;dir=asc&#38;page=1""#
        ),
        "a second click on the sorted column turns the order round"
    );
    let found = w
        .app
        .page("/app/stores/st_1/affiliates?q=affiliate+2")
        .await;
    assert_eq!(row_ids(&found), vec![2]);
    assert_eq!(text_of(&found, "affiliate-matching"), "1");
    let by_code = w.app.page("/app/stores/st_1/affiliates?q=AFF3").await;
    assert_eq!(row_ids(&by_code), vec![3], "the referral code, any case");
    let none = w.app.page("/app/stores/st_1/affiliates?q=nobody").await;
    assert!(none.contains("No affiliate matches."));
    assert_eq!(
        w.app
            .get("/app/stores/st_1/affiliates?page=0")
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn an_affiliates_page_shows_its_60_days_and_links_each_days_order() {
    let (w, ledger) = forty_days().await;
    let page = w.app.page("/app/stores/st_1/affiliates/2").await;
    assert!(page.contains("<h1>Affiliate 2</h1>"));
    assert_eq!(page.matches(r#"class="day-row""#).count(), 60);
    let mine: Vec<_> = ledger.iter().filter(|e| e.affiliate_id == 2).collect();
    let (sales, commission) = sums(&ledger, |e| e.affiliate_id == 2);
    let total = text_of(&page, "affiliate-total");
    assert!(total.starts_with(&format!("{} clicks", 40 * 20)), "{total}");
    assert!(page.contains(&usd(sales)) && page.contains(&usd(commission)));
    for e in &mine {
        assert!(
            page.contains(&format!(
                r#"href="/app/stores/st_1/ledger/{}">{}</a>"#,
                e.number, e.number
            )),
            "{} is linked",
            e.number
        );
    }
    assert!(page.contains("<svg"), "its daily chart");
    for path in [
        "/app/stores/st_1/affiliates/9",
        "/app/stores/st_1/affiliates/x",
        "/app/stores/st_1/affiliates/-1",
    ] {
        assert_eq!(w.app.get(path).await.status(), 404, "{path}");
    }
}

#[tokio::test]
async fn the_figures_page_and_its_csv_hold_every_day_of_the_window() {
    let (w, ledger) = forty_days().await;
    let page = w.app.page("/app/stores/st_1/figures").await;
    assert_eq!(page.matches(r#"class="figure-row""#).count(), 60);
    assert_eq!(page.matches("<svg").count(), 5, "five charts");
    let (sales, commission) = sums(&ledger, |_| true);
    let total = text_of(&page, "figures-total");
    assert!(total.contains(&format!("{} clicks", 120 * 20)), "{total}");
    assert!(page.contains(&usd(sales)) && page.contains(&usd(commission)));
    // The notes of Amazon's rules stand on the page; the youngest day is marked as settling.
    assert!(page.contains("fewer than 10 clicks"));
    assert!(page.contains("within 48 hours"));
    let newest = page
        .split(&format!("data-day=\"{}\"", day(1)))
        .nth(1)
        .unwrap();
    assert!(newest.split("</tr>").next().unwrap().contains("settling"));

    let res = w.app.get("/app/stores/st_1/figures.csv").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let csv = res.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "day,clicks,purchases,sales,commission,brand_referral_bonus,orders,currency"
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 60);
    assert_eq!(rows[0][0], day(60).to_string(), "oldest first");
    let column = |i: usize| rows.iter().map(|r| cents(r[i])).sum::<i64>();
    assert_eq!((column(3), column(4)), (sales, commission));
    assert!(rows.iter().all(|r| r[7] == "USD"));
    let orders: i64 = rows.iter().map(|r| r[6].parse::<i64>().unwrap()).sum();
    assert_eq!(orders, 120);
}

#[tokio::test]
async fn the_settings_page_explains_each_setting_and_saves_the_basis() {
    let w = store_with(1).connected().await;
    let page = w.app.page("/app/stores/st_1/settings").await;
    assert!(page.contains(r#"id="nav-settings" aria-current="page""#));
    assert!(text_of(&page, "amazon-state").starts_with("Connected"));
    assert!(
        page.contains(r#"id="main-landing""#),
        "landing pages are set here"
    );
    assert!(text_of(&page, "push-after").starts_with("when a day is 2 day(s) old"));
    assert!(text_of(&page, "basis-warning").contains("e-mails its affiliate"));
    assert!(text_of(&page, "hold-advice").contains("at least 60 days"));
    let csrf = csrf_of(&page).unwrap();
    let res = w
        .app
        .post_form(
            "/app/stores/st_1/sales-basis",
            &[("csrf", csrf.as_str()), ("basis", "total")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "/app/stores/st_1/settings",
        "back to the page the form was on"
    );
    let page = w.app.page("/app/stores/st_1/settings").await;
    assert!(page.contains(r#"<option value="total" selected>"#));
    assert!(text_of(&page, "flash").contains("recomputes"));
}
