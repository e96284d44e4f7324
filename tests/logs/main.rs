//! No token or secret reaches a log line: the whole story (install, connect Amazon, sync, push,
//! refused webhooks) runs with every log level on, and the captured output is searched.
//! A binary of its own, because the log subscriber is process-wide.
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

#[allow(dead_code)]
#[path = "../api/doubles.rs"]
mod doubles;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

use doubles::*;
use helpers::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_env_filter("trace,hyper=info,h2=info,wiremock=info")
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let (amazon, report) = AmazonDouble::with_report(0).await;
    let (program, orders) = ProgramDouble::with_orders("gpat_CANARY_program_token", 1).await;
    let env = amazon.env();
    let app = spawn_app_with(move |e| e.extend(env)).await;
    app.send(&install_event_at(
        "st_1",
        "gpat_CANARY_program_token",
        &program.api_url(),
    ))
    .await;
    // A forged delivery and a bad load link, refused with warnings.
    let body = serde_json::to_vec(&install_event("st_x", "gpat_CANARY_forged")).unwrap();
    app.post_raw(
        Some("msg_forged"),
        Some(&app.now().to_string()),
        Some("v1,Zm9yZ2Vk"),
        body,
    )
    .await;
    app.client
        .get(app.url("/app/load?store_id=st_1&timestamp=1&signature=v1,AAAA"))
        .send()
        .await
        .unwrap();

    // Connect Amazon through the page, as a merchant does.
    app.open_store("st_1").await;
    let csrf = app.csrf("/app/stores/st_1").await;
    let res = app
        .get(&format!("/app/amazon/connect?region=NA&csrf={csrf}"))
        .await;
    let consent = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> = consent.query_pairs().into_owned().collect();
    let code = amazon.allow(&q["code_challenge"]);
    let mut callback = url::Url::parse(&app.url("/oauth/amazon/callback")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    app.client.get(callback).send().await.unwrap();

    // A sync with a refresh of the access token, a push, and a failing push.
    *report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "10.00")];
    app.clock.advance(chrono::Duration::hours(2));
    attribution_bridge::flows::scheduler::enqueue_now(
        &app.state.deps,
        &attribution_bridge::domain::ids::StoreId::parse("st_1").unwrap(),
        None,
        "test",
    )
    .await
    .unwrap();
    app.state.worker.drain().await.unwrap();
    assert_eq!(orders.count(), 1, "the story ran");
    assert!(
        amazon.lwa.0.lock().unwrap().refreshes >= 1,
        "a refresh happened"
    );

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(text.contains("webhook refused"), "the logs were captured");
    for secret in [
        "gpat_CANARY",
        "Atza|",
        "Atzr|",
        CLIENT_SECRET,
        app.secret.trim_start_matches("whsec_"),
        &app.encryption_key,
        code.as_str(),
        q["state"].as_str(),
    ] {
        assert!(!text.contains(secret), "{secret:?} appears in the logs");
    }
}
