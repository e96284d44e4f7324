//! The sandbox walk-through of the README, in a real headless browser: install a demo store, open
//! it, connect Amazon, see one link per affiliate.
use std::collections::{BTreeSet, HashMap};

use attribution_bridge::{domain::ids::StoreId, domain::money::to_minor, flows::status};
use fantoccini::Locator;

use crate::{browser::Browser, helpers::*};

#[tokio::test]
async fn a_newcomer_installs_a_demo_store_connects_amazon_and_sees_the_links() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app_with(|env| {
        env.retain(|(k, _)| k != "APP__SANDBOX__ENABLED");
        env.push(("APP__SANDBOX__ENABLED".into(), "true".into()));
        env.push(("APP__SANDBOX__PERSIST".into(), "false".into()));
        env.push((
            "APP__SERVER__PUBLIC_URL".into(),
            "http://127.0.0.1:0".into(),
        ));
    })
    .await;
    // The sandbox plays the platform with real time; the app's clock must agree.
    app.clock.set(chrono::Utc::now());
    let c = &browser.client;

    c.goto(&app.url("/")).await.unwrap();
    assert!(browser.text("#sandbox-banner").await.contains("Sandbox"));
    browser.click("#install-demo").await;
    c.wait()
        .for_element(Locator::Css("#install-state"))
        .await
        .unwrap();
    // The sandbox sent the signed install webhook and opened the store through its load link.
    assert!(browser.path().await.starts_with("/app/stores/st_demo_"));
    assert_eq!(browser.text("#install-state").await, "Installed");
    assert!(
        browser
            .text("#amazon-state")
            .await
            .starts_with("Not connected")
    );

    browser.click("#connect").await;
    // Amazon's (sandbox) consent page.
    c.wait().for_element(Locator::Css("#allow")).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert!(
        at.path().ends_with("/ap/oa"),
        "{at}: {}",
        c.source().await.unwrap()
    );
    assert!(c.source().await.unwrap().contains("Sandbox"));
    browser.click("#allow").await;
    c.wait().for_element(Locator::Css("#flash")).await.unwrap();

    assert!(browser.path().await.starts_with("/app/stores/st_demo_"));
    assert_eq!(
        browser.text("#flash").await,
        "Amazon is connected. Every affiliate now has a link."
    );
    assert!(browser.text("#amazon-state").await.starts_with("Connected"));
    let affiliates: usize = browser.text("#affiliate-count").await.parse().unwrap();
    assert!(affiliates > 0);
    browser.click("#nav-affiliates").await;
    let rows = c.find_all(Locator::Css(".affiliate-row")).await.unwrap();
    assert_eq!(rows.len(), affiliates, "one link per affiliate");
    let first = rows[0]
        .find(Locator::Css("input.link"))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(
        first.starts_with("https://www.amazon.com/?maas=maas_adg_api_"),
        "{first}"
    );
    assert!(
        first.contains("&aa_campaignid=ab_st_demo_") && first.contains("&aa_creativeid=home"),
        "{first}"
    );

    // Shoppers click every link; "Sync now" reads Amazon's figures and pushes the orders.
    browser.click("#nav-overview").await;
    browser.click("#simulate-shoppers").await;
    browser.wait_text("#flash", "links were clicked").await;
    browser.click("#sync-now").await;
    browser.wait_text("#flash", "Sync queued").await;
    app.run_due_jobs().await;
    c.refresh().await.unwrap();
    let last = browser.text("#last-sync").await;
    let orders_page = browser
        .element("#program-orders")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(
        orders_page.contains("/sandbox/program/orders?store=st_demo_"),
        "the Overview links the sandbox program's orders: {orders_page}"
    );

    assert!(last.contains(": ok,"), "{last}");

    let store_path = browser.path().await;
    let store = StoreId::parse(store_path.rsplit('/').next().unwrap()).unwrap();
    let ledger = status::ledger(&app.state.deps.db, &store).await.unwrap();
    let days: BTreeSet<_> = ledger.iter().map(|e| e.day).collect();
    assert!(days.len() > 20, "weeks of history: {} days", days.len());
    // One order per affiliate per day in the sandbox program, each with 10 % of its total to the cent.
    let program = sandbox_orders(&app, &store).await;
    let (pushed, waiting): (Vec<_>, Vec<_>) = ledger
        .iter()
        .partition(|e| e.push_state.as_str() == "pushed");
    assert_eq!(program.len(), pushed.len());
    let newest = *days.iter().next_back().unwrap();
    assert!(
        waiting
            .iter()
            .all(|e| e.push_state.as_str() == "waiting" && e.day == newest),
        "only yesterday waits"
    );
    let keys: BTreeSet<_> = ledger.iter().map(|e| (e.affiliate_id, e.day)).collect();
    assert_eq!(
        keys.len(),
        ledger.len(),
        "never two orders for one affiliate and day"
    );
    for entry in &pushed {
        let o = &program[&entry.number];

        assert_eq!(
            to_minor(&o["total"].to_string(), 2),
            to_minor(&entry.total, 2),
            "{}",
            entry.number
        );
        let total = to_minor(&entry.total, 2).unwrap();
        let expected = (total * 10 + 50) / 100;
        assert_eq!(
            to_minor(&o["commission"].to_string(), 2).unwrap(),
            expected,
            "{}",
            entry.number
        );
    }

    // The sandbox restates a day (returns); the next sync updates that day's orders, once.
    let day = *days.iter().rev().nth(5).unwrap();
    // The control room's form, with the token its page carries (bound to this client's cookie).
    let csrf =
        csrf_of(&app.page("/sandbox").await).expect("the control room's forms carry a token");
    let res = app
        .client
        .post(app.url("/sandbox/amazon/restate"))
        .form(&[
            ("date", day.to_string()),
            ("direction", "down".into()),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    c.refresh().await.unwrap();
    browser.click("#sync-now").await;
    browser.wait_text("#flash", "Sync queued").await;
    app.run_due_jobs().await;
    let after = status::ledger(&app.state.deps.db, &store).await.unwrap();
    let changed: Vec<_> = after
        .iter()
        .filter(|e| e.day == day && e.version > 1)
        .collect();
    assert!(
        !changed.is_empty(),
        "the restated day's orders were updated"
    );
    assert!(
        after
            .iter()
            .filter(|e| e.day != day)
            .all(|e| e.version == 1),
        "other days untouched"
    );
    let program = sandbox_orders(&app, &store).await;
    for e in &changed {
        assert_eq!(
            to_minor(&program[&e.number]["total"].to_string(), 2),
            to_minor(&e.total, 2)
        );

        assert_eq!(e.push_state.as_str(), "pushed");
    }

    // Through the store's navigation, as the merchant would: every page fits a phone.
    // (SCREENSHOT_DIR=docs/screenshots cargo test --test api sandbox_browser renews the README's.)
    c.refresh().await.unwrap();
    browser.looks_right("overview").await;
    browser.follow("#nav-figures", "#chart-sales svg").await;
    browser.looks_right("figures").await;
    browser.follow("#nav-affiliates", ".affiliate-row").await;
    browser.looks_right("affiliates").await;
    // The affiliate whose order of the restated day changed, then that order's history.
    let order = changed[0];
    browser
        .follow(
            &format!(
                ".affiliate-row[data-affiliate=\"{}\"] a.affiliate-name",
                order.affiliate_id
            ),
            "#affiliate-chart svg",
        )
        .await;
    browser.looks_right("affiliate").await;
    browser
        .follow(
            &format!("a[href$=\"/ledger/{}\"]", order.number),
            "#versions",
        )
        .await;
    assert_eq!(browser.text("#order-number").await, order.number);
    let versions = c
        .find_all(Locator::Css("#versions tbody tr"))
        .await
        .unwrap();
    assert_eq!(
        versions.len(),
        order.version as usize,
        "every version listed"
    );
    let history = browser.text("#versions").await;
    assert!(
        history.contains(&format!("{} USD", order.total)),
        "{history}"
    );
    browser.looks_right("order").await;
    browser.follow("#nav-ledger", "#orders").await;
    browser.looks_right("ledger").await;
    browser.follow("#nav-activity", "#sync-runs").await;
    assert!(browser.text("#sync-runs").await.contains("manual"));
    browser.looks_right("activity").await;
    browser.follow("#nav-settings", "#basis-form").await;
    browser.looks_right("settings").await;
    browser.client.clone().close().await.unwrap();
}

/// Every order the sandbox program holds for the store, by number (read through its admin API).
async fn sandbox_orders(app: &TestApp, store: &StoreId) -> HashMap<String, serde_json::Value> {
    let token = app.program_token(store.as_str()).await;
    let mut all = HashMap::new();
    for page in 0.. {
        let offset = (page * 250).to_string();
        let body: serde_json::Value = reqwest::Client::new()
            .get(app.url("/sandbox/program/v1/admin/orders"))
            .query(&[
                ("fields", "id,number,total,commission,status"),
                ("limit", "250"),
                ("offset", offset.as_str()),
            ])
            .header("x-goaffpro-access-token", token.as_str())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let orders = body["orders"].as_array().unwrap().clone();
        let n = orders.len();
        for o in orders {
            all.insert(o["number"].as_str().unwrap().to_owned(), o);
        }
        if n < 250 {
            break;
        }
    }
    all
}
