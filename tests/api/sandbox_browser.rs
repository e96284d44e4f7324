//! The sandbox walk-through of the README, in a real headless browser: install a demo store, open
//! it, connect Amazon, see one link per affiliate.
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
    c.find(Locator::Css("#install-demo"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .for_element(Locator::Css("#install-state"))
        .await
        .unwrap();
    // The sandbox sent the signed install webhook and opened the store through its load link.
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/app/stores/st_demo_")
    );
    assert_eq!(browser.text("#install-state").await, "Installed");
    assert_eq!(browser.text("#amazon-state").await, "Not connected");

    c.find(Locator::Css("#connect"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Amazon's (sandbox) consent page.
    c.wait().for_element(Locator::Css("#allow")).await.unwrap();
    let at = c.current_url().await.unwrap();
    assert!(
        at.path().ends_with("/ap/oa"),
        "{at}: {}",
        c.source().await.unwrap()
    );
    assert!(c.source().await.unwrap().contains("Sandbox"));
    c.find(Locator::Css("#allow"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait().for_element(Locator::Css("#flash")).await.unwrap();

    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/app/stores/st_demo_")
    );
    assert_eq!(
        browser.text("#flash").await,
        "Amazon is connected. Every affiliate now has a link."
    );
    assert!(browser.text("#amazon-state").await.starts_with("Connected"));
    let affiliates: usize = browser.text("#affiliate-count").await.parse().unwrap();
    assert!(affiliates > 0);
    let rows = c.find_all(Locator::Css(".link-row")).await.unwrap();
    assert_eq!(rows.len(), affiliates, "one link per affiliate");
    let first = rows[0]
        .find(Locator::Css("input"))
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
    browser.client.clone().close().await.unwrap();
}
