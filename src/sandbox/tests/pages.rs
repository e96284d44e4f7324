//! The sandbox's pages a newcomer reads: the program's orders (newest day first, paged) and the
//! control room's restatement form (a day the app pushed).
use chrono::{Duration, NaiveDate};
use serde_json::json;

use super::Harness;
use super::program::install;

/// Creates an order of `day` for the store's first affiliate through the program API, as the
/// app's push does.
async fn push(h: &Harness, token: &str, api: &str, number: &str, day: NaiveDate) {
    let (_, roster) = h
        .program_get(&format!("{api}/admin/affiliates?fields=id"), token)
        .await;
    let affiliate = roster["affiliates"][0]["id"].as_i64().unwrap();
    let order = json!({"number": number, "affiliate_id": affiliate, "total": 50, "commission": 5,
                       "currency": "USD", "date": day.to_string(), "status": "approved"});
    let (status, body) = h
        .program_post(&format!("{api}/admin/orders"), token, order)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// The text of every element `<… class="{class}">TEXT<` in the page, in order.
fn texts(html: &str, class: &str) -> Vec<String> {
    html.split(&format!("class=\"{class}\">"))
        .skip(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned())
        .collect()
}

/// The link marked `rel="{rel}"` (the pager's previous or next page), unescaped.
fn rel_link(html: &str, rel: &str) -> Option<String> {
    html.split("<a href=\"")
        .skip(1)
        .find(|rest| {
            rest.split('>')
                .next()
                .unwrap()
                .contains(&format!("rel=\"{rel}\""))
        })
        // Askama writes `&` as `&#38;`.
        .map(|rest| rest.split('"').next().unwrap().replace("&#38;", "&"))
}

/// "page N of M" as the page says it.
fn page_of(html: &str) -> (String, String) {
    let id = |name: &str| {
        let rest = html.split(&format!("id=\"{name}\">")).nth(1).unwrap();
        rest.split('<').next().unwrap().to_owned()
    };
    (id("page"), id("pages"))
}

#[actix_web::test]
async fn the_program_orders_page_lists_the_newest_day_first_fifty_a_page() {
    let h = Harness::start().await;
    let (store, token, api) = install(&h).await;
    let (other, other_token, other_api) = install(&h).await;
    // 101 days, pushed in a scrambled order (37 steps modulo 101 visit every day once).
    let first = NaiveDate::from_ymd_opt(2026, 8, 1).unwrap();
    for i in 0..101 {
        let day = first + Duration::days((i * 37) % 101);
        push(&h, &token, &api, &format!("AMZ-{day}"), day).await;
    }
    let newest = NaiveDate::from_ymd_opt(2026, 11, 18).unwrap();
    push(&h, &other_token, &other_api, "AMZ-other", newest).await;

    let url = h.sandbox.program_orders_url(&store);
    assert_eq!(
        url.as_str(),
        h.url(&format!("/sandbox/program/orders?store={store}"))
    );
    let mut next = Some(format!("{}?{}", url.path(), url.query().unwrap()));
    let (mut days, mut seen) = (Vec::new(), Vec::new());
    while let Some(path) = next.take() {
        assert!(seen.len() < 3, "the pages end: {seen:?}");
        let page = h.get(&path).await;
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let on_page = texts(&html, "nowrap day");
        seen.push((
            page_of(&html),
            on_page.len(),
            rel_link(&html, "prev").is_some(),
        ));
        days.extend(on_page);
        next = rel_link(&html, "next");
    }
    let s = |a: &str, b: &str| (a.to_owned(), b.to_owned());
    assert_eq!(
        seen,
        vec![
            (s("1", "3"), 50, false),
            (s("2", "3"), 50, true),
            (s("3", "3"), 1, true)
        ]
    );
    let expected: Vec<String> = (0..101)
        .rev()
        .map(|n| (first + Duration::days(n)).to_string())
        .collect();
    assert_eq!(
        days, expected,
        "every order of the store once, newest day first"
    );

    // Past the last page: the last page, at its own address; not a page that is not there.
    let past = h
        .get(&format!("/sandbox/program/orders?store={store}&page=999"))
        .await;
    assert_eq!(past.status(), 303);
    assert_eq!(
        past.headers()["location"],
        h.url(&format!("/sandbox/program/orders?store={store}&page=3"))
            .as_str()
    );
    for bad in ["0", "-1", "two"] {
        let res = h.get(&format!("/sandbox/program/orders?page={bad}")).await;
        assert_eq!(res.status(), 400, "page={bad}");
    }
    let unknown = h.get("/sandbox/program/orders?store=st_nope").await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("st_nope"));

    // Every store: the other store's newer order comes first, named with its store.
    let all = h.get("/sandbox/program/orders").await.text().await.unwrap();
    assert_eq!(page_of(&all), s("1", "3"));
    assert_eq!(texts(&all, "nowrap day")[0], newest.to_string());
    assert!(all.contains(&format!("<td>Demo Outdoors 2 ({other})</td>")));
}

/// The value the control room's restatement form offers for the day.
fn restate_day(html: &str) -> String {
    let rest = html.split("id=\"restate-date\" value=\"").nth(1).unwrap();
    rest.split('"').next().unwrap().to_owned()
}

#[actix_web::test]
async fn the_restate_form_offers_the_newest_day_the_app_pushed() {
    let h = Harness::start().await;
    let (_, token, api) = install(&h).await;
    let room = h.get("/sandbox").await.text().await.unwrap();
    assert!(room.contains("No day has been pushed yet"), "{room}");
    assert_eq!(restate_day(&room), "2026-11-19", "yesterday until then");

    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    push(&h, &token, &api, "AMZ-12", day(12)).await;
    push(&h, &token, &api, "AMZ-15", day(15)).await;
    push(&h, &token, &api, "AMZ-3", day(3)).await;
    let room = h.get("/sandbox").await.text().await.unwrap();
    assert!(!room.contains("No day has been pushed yet"));
    assert_eq!(restate_day(&room), "2026-11-15");
    assert!(room.contains("2026-11-15, the newest day the program has orders for"));

    // The form as offered restates that day.
    assert_eq!(h.restate(&restate_day(&room), "down").await.status(), 303);
    assert_eq!(
        h.sandbox.read(|s| s.restatements.last().map(|r| r.date)),
        Some(day(15))
    );
}
