//! The newcomer's path through the sandbox over HTTP, as `cargo run --release` serves it (the app
//! with its sandbox on): "The app" opens the installed demo stores instead of installing more,
//! and the restatement form offers a day the app pushed, so restating it changes an order that
//! the program's orders page shows with its update.
use attribution_bridge::flows::status;

use crate::helpers::*;

/// The app with its sandbox on and the sandbox's state in memory.
async fn sandbox_app() -> TestApp {
    spawn_app_with(|env| {
        env.retain(|(k, _)| k != "APP__SANDBOX__ENABLED");
        env.push(("APP__SANDBOX__ENABLED".into(), "true".into()));
        env.push(("APP__SANDBOX__PERSIST".into(), "false".into()));
        env.push((
            "APP__SERVER__PUBLIC_URL".into(),
            "http://127.0.0.1:0".into(),
        ));
    })
    .await
}

/// Where a redirect points, as an absolute URL of the app.
fn location(app: &TestApp, res: &reqwest::Response) -> String {
    assert!(res.status().is_redirection(), "{}", res.status());
    let to = res.headers()["location"].to_str().unwrap();
    if to.starts_with("http") {
        to.to_owned()
    } else {
        app.url(to)
    }
}

/// Follows redirects (keeping `client`'s cookies) until a page answers; returns its URL and body.
async fn follow(
    app: &TestApp,
    client: &reqwest::Client,
    res: reqwest::Response,
) -> (url::Url, String) {
    let mut res = res;
    for _ in 0..10 {
        if !res.status().is_redirection() {
            let at = res.url().clone();
            assert_eq!(res.status(), 200, "{at}");
            return (at, res.text().await.unwrap());
        }
        let to = location(app, &res);
        res = client.get(to).send().await.unwrap();
    }
    panic!("too many redirects");
}

/// Sends a form of `page` (its CSRF token added) to `path` with `client`.
async fn submit(
    app: &TestApp,
    client: &reqwest::Client,
    page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let csrf = csrf_of(page).expect("the page has a form");
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &csrf));
    client.post(app.url(path)).form(&form).send().await.unwrap()
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> String {
    let res = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

#[tokio::test]
async fn the_app_link_opens_the_installed_demo_stores_without_installing_another() {
    let app = sandbox_app().await;
    let c = &app.client;
    let room = page(&app, c, "/sandbox").await;
    assert!(room.contains(r#"<a href="/sandbox/app">The app</a>"#));

    // Nothing installed: the page offers the install, which ends in the new store's app.
    let none = page(&app, c, "/sandbox/app").await;
    assert!(none.contains("id=\"no-demo-store\""), "{none}");
    let res = submit(&app, c, &none, "/sandbox/demo-stores", &[]).await;
    let (at, setup) = follow(&app, c, res).await;
    assert_eq!(at.path(), "/app/stores/st_demo_1");
    assert!(setup.contains("Installed"));

    // Installed: the link lists the store and opens it, in a browser with no session yet,
    // through a signed load link; no other store is installed.
    let browser = browser_client();
    let listed = page(&app, &browser, "/sandbox/app").await;
    assert!(!listed.contains("id=\"no-demo-store\""));
    assert_eq!(listed.matches("class=\"demo-store\"").count(), 1);
    assert!(listed.contains("action=\"/sandbox/demo-stores/st_demo_1/open\""));
    let opened = submit(
        &app,
        &browser,
        &listed,
        "/sandbox/demo-stores/st_demo_1/open",
        &[],
    )
    .await;
    assert!(location(&app, &opened).contains("/app/load?store_id=st_demo_1&"));
    let (at, setup) = follow(&app, &browser, opened).await;
    assert_eq!(at.path(), "/app/stores/st_demo_1");
    assert!(setup.contains("Installed"));
    app.assert_rows("stores", 1).await;

    // Its forms keep the sandbox's CSRF defence.
    let forged = browser_client()
        .post(app.url("/sandbox/demo-stores/st_demo_1/open"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Uninstalled, the store is no longer offered; the control room installs it again.
    let res = submit(
        &app,
        c,
        &room,
        "/sandbox/demo-stores/st_demo_1/uninstall",
        &[],
    )
    .await;
    assert!(res.status().is_redirection(), "{}", res.status());
    let after = page(&app, c, "/sandbox/app").await;
    assert!(after.contains("id=\"no-demo-store\""));
    assert!(after.contains("1 demo store(s) had the app uninstalled"));
}

/// The value of every hidden field of the page's first form.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let name = rest.split('"').next().unwrap().to_owned();
            let value = rest.split("value=\"").nth(1).unwrap();
            let value = value.split('"').next().unwrap().replace("&#38;", "&");
            (name, value)
        })
        .collect()
}

#[tokio::test]
async fn restating_the_offered_day_updates_an_order_the_program_page_shows() {
    let app = sandbox_app().await;
    let c = &app.client;
    let none = page(&app, c, "/sandbox/app").await;
    let res = submit(&app, c, &none, "/sandbox/demo-stores", &[]).await;
    let (_, setup) = follow(&app, c, res).await;
    let store = "/app/stores/st_demo_1";

    // Connect Amazon: the sandbox's consent page, Allow, back to the store.
    let csrf = csrf_of(&setup).unwrap();
    let connect = format!("/app/amazon/connect?region=NA&csrf={csrf}");
    let res = c.get(app.url(&connect)).send().await.unwrap();
    let (at, consent) = follow(&app, c, res).await;
    assert!(at.path().ends_with("/ap/oa"), "{at}");
    let mut form = hidden_fields(&consent);
    form.push(("decision".into(), "allow".into()));
    let res = c
        .post(app.url("/sandbox/amazon/ap/oa/decision"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (at, setup) = follow(&app, c, res).await;
    assert_eq!(at.path(), store);
    assert!(setup.contains("Amazon is connected"), "{setup}");

    // Before any sync, the control room says no day was pushed.
    let room = page(&app, c, "/sandbox").await;
    assert!(room.contains("No day has been pushed yet"));

    // Shoppers click, Sync now: weeks of days are pushed to the program.
    let res = submit(&app, c, &setup, &format!("{store}/sandbox/shoppers"), &[]).await;
    let (_, setup) = follow(&app, c, res).await;
    let res = submit(&app, c, &setup, &format!("{store}/sync"), &[]).await;
    let (_, setup) = follow(&app, c, res).await;
    app.run_due_jobs().await;

    let room = page(&app, c, "/sandbox").await;
    let day = room
        .split("id=\"restate-date\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let st = store_id("st_demo_1");
    let ledger = status::ledger(&app.state.deps.db, &st).await.unwrap();
    let pushed_days: Vec<String> = ledger
        .iter()
        .filter(|e| e.push_state.as_str() == "pushed")
        .map(|e| e.day.to_string())
        .collect();
    assert_eq!(
        pushed_days.iter().max(),
        Some(&day),
        "the form offers the newest pushed day"
    );

    // Restate that day as offered, Sync now: its orders change, and the program shows it.
    let res = submit(
        &app,
        c,
        &room,
        "/sandbox/amazon/restate",
        &[("date", &day), ("direction", "down")],
    )
    .await;
    assert!(res.status().is_redirection(), "{}", res.status());
    let res = submit(&app, c, &setup, &format!("{store}/sync"), &[]).await;
    follow(&app, c, res).await;
    app.run_due_jobs().await;

    let after = status::ledger(&app.state.deps.db, &st).await.unwrap();
    assert!(
        after.iter().any(|e| e.day.to_string() == day
            && e.version > 1
            && e.push_state.as_str() == "pushed"),
        "an order of {day} was updated and pushed"
    );
    let url = app
        .state
        .sandbox
        .as_ref()
        .unwrap()
        .program_orders_url("st_demo_1");
    assert_eq!(url.path(), "/sandbox/program/orders");
    let orders = page(&app, c, &format!("{}?{}", url.path(), url.query().unwrap())).await;
    let updated = orders
        .split("<tr class=\"order\">")
        .skip(1)
        .filter(|row| row.contains(&format!("<td class=\"nowrap day\">{day}</td>")))
        .filter(|row| row.contains("<ul class=\"history\">") && row.contains(" → "))
        .count();
    assert!(updated > 0, "the program's page shows {day}'s update");
}

/// The faults hook takes what the README shows and refuses the rest: a misspelled key was read
/// as "no faults" (200), clearing the pending ones.
#[tokio::test]
async fn the_faults_hook_refuses_what_it_does_not_know() {
    let app = sandbox_app().await;
    let post = |body: serde_json::Value| {
        app.client
            .post(app.url("/sandbox/amazon/faults"))
            .json(&body)
            .send()
    };
    let res =
        post(serde_json::json!({"report": [{"status": 503, "retry_after": 2}, {"status": 429}]}))
            .await
            .unwrap();
    assert_eq!(res.status(), 200);
    let said: serde_json::Value = res.json().await.unwrap();
    assert_eq!(said["pending"]["report"], 2);
    for bad in [
        serde_json::json!({"reprot": [{"status": 503}]}),
        serde_json::json!({"report": [{"status": 503, "retry-after": 2}]}),
        serde_json::json!({"report": [{"status": 200}]}),
    ] {
        assert_eq!(post(bad.clone()).await.unwrap().status(), 400, "{bad}");
    }
    let res = post(serde_json::json!({"report": []})).await.unwrap();
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["pending"]["report"],
        0
    );
}
