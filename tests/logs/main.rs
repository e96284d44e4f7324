//! No token or secret reaches a log line: the whole story (install, connect Amazon, sync, push,
//! refused webhooks) runs with every log level on, and the captured output is searched. The
//! database URL carries a password (on PostgreSQL, the story's own; on SQLite, a connection
//! attempt). Outside text with control characters (an OAuth `error_description`, names) cannot
//! forge a line of the `pretty` format. A binary of its own: the log subscriber is process-wide.
use std::{
    io::Write,
    sync::{Arc, Mutex},
};

#[allow(dead_code)]
#[path = "../api/chaos.rs"]
mod chaos;
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

/// The database password the URLs carry (PostgreSQL's trust authentication accepts any).
const DB_PASSWORD: &str = "s3cr3t-pw";
/// Outside text that, written raw, would start a fake line and turn the terminal red.
const FORGED: &str = "Eve\n2026-11-30T00:00:00Z  INFO forged\x1b[31m";

/// `url` with the password [`DB_PASSWORD`].
fn with_password(url: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_password(Some(DB_PASSWORD)).unwrap();
    url.to_string()
}

/// A PostgreSQL "server" on loopback that hangs up on every connection; returns its URL.
fn hanging_up_postgres() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    format!("postgres://app@127.0.0.1:{port}/ab")
}

#[tokio::test]
async fn no_secret_reaches_the_logs_and_no_line_can_be_forged() {
    use attribution_bridge::{config::LogFormat, telemetry};
    use tracing_subscriber::{EnvFilter, util::SubscriberInitExt};
    let logs = Captured::default();
    let sink = logs.clone();
    telemetry::subscriber(
        LogFormat::Pretty,
        EnvFilter::new("trace,hyper=info,h2=info,wiremock=info"),
        false,
        move || sink.clone(),
    )
    .init();

    // A database that cannot be opened: its URL's password is in neither a log line nor the error.
    let refused = attribution_bridge::db::connect(&attribution_bridge::config::DatabaseSettings {
        url: with_password(&hanging_up_postgres()).into(),
        max_connections: 1,
    })
    .await
    .expect_err("the server hangs up");
    assert!(!refused.to_string().contains(DB_PASSWORD), "{refused}");

    let (amazon, report) = AmazonDouble::with_report(0).await;
    let (program, orders) = ProgramDouble::with_orders("gpat_CANARY_program_token", 1).await;
    let env = amazon.env();
    let app = spawn_app_with(move |e| {
        e.extend(env);
        // On PostgreSQL the whole story runs on a URL with a password.
        for (k, v) in e.iter_mut() {
            if k == "APP__DATABASE__URL" && v.starts_with("postgres") {
                *v = with_password(v);
            }
        }
    })
    .await;
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

    // An affiliate with the forged name, and a refused consent with it as its description.
    assert_eq!(app.add_affiliate("st_1", 2, FORGED).await, "processed");
    app.open_store("st_1").await;
    let csrf = app.csrf("/app/stores/st_1").await;
    let res = app
        .get(&format!("/app/amazon/connect?region=NA&csrf={csrf}"))
        .await;
    let consent = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    let refused_state = consent
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let mut callback = url::Url::parse(&app.url("/oauth/amazon/callback")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", FORGED)
        .append_pair("state", &refused_state);
    app.client.get(callback).send().await.unwrap();

    // Connect Amazon through the page, as a merchant does.
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
    assert!(
        text.contains("Eve\\n2026-11-30T00:00:00Z  INFO forged\\u{1b}[31m"),
        "the forged description was logged, escaped"
    );
    let raw: Vec<&str> = text
        .lines()
        .filter(|l| l.chars().any(char::is_control))
        .collect();
    assert!(raw.is_empty(), "raw control characters: {raw:?}");
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("2026-11-30T00:00:00Z  INFO forged")),
        "a forged line"
    );
    for secret in [
        "gpat_CANARY",
        "Atza|",
        "Atzr|",
        CLIENT_SECRET,
        app.secret.trim_start_matches("whsec_"),
        &app.encryption_key,
        code.as_str(),
        q["state"].as_str(),
        DB_PASSWORD,
    ] {
        assert!(!text.contains(secret), "{secret:?} appears in the logs");
    }
}
