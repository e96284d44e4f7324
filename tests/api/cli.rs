//! The binary as an operator runs it: `stores list --json` against the same database.
use std::process::Command;

use serde_json::Value;

use crate::{helpers::*, world::consent_query};

#[tokio::test]
async fn stores_list_json_shows_installed_stores() {
    let app = app_with_store("st_1001", "gpat_cli", &[(1, "Alice")]).await;
    let run = app.cli(&["stores", "list", "--json"]);
    assert!(run.ok, "{}", run.stderr);
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(list[0]["id"], "st_1001");
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[0]["program_connected"], true);
    assert_eq!(list[0]["affiliates"], 1);
    assert!(!run.stdout.contains("gpat_cli"));
}

#[test]
fn a_bad_configuration_value_names_itself_and_exits_non_zero() {
    for (key, value, named) in [
        ("APP__SERVER__PORT", "eighty", "server.port"),
        ("APP__SYNC__DAILY_AT", "25:00", "sync.daily_at"),
        ("APP__LOG__LEVEL", "loud", "log.level"),
        ("APP__LOG__LEVEL", "info,=debug", "log.level"),
    ] {
        let run = run_cli(&["stores", "list"], [(key, value)]);
        assert_eq!(run.code, Some(2), "{key}");
        assert!(run.stderr.contains(named), "{}", run.stderr);
    }
}

/// SIGTERM or Ctrl-C (SIGINT) while a merchant's request is in flight: it finishes, then the
/// process exits cleanly.
#[tokio::test]
async fn sigterm_and_sigint_let_in_flight_requests_finish() {
    for signal in ["-TERM", "-INT"] {
        stop_with_a_request_in_flight(signal).await;
    }
}

async fn stop_with_a_request_in_flight(signal: &str) {
    use crate::doubles::AmazonDouble;
    let amazon = AmazonDouble::start().await;
    amazon.lwa.0.lock().unwrap().delay_ms = 1500;
    let db = TestDb::new().await;
    let secret = random_secret();
    let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut env = test_env(&db, &secret, key);
    env.retain(|(k, _)| k != "APP__SERVER__PORT");
    env.push(("APP__SERVER__PORT".into(), port.to_string()));
    env.extend(amazon.env());
    let mut server = Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .arg("serve")
        .envs(env)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = browser_client();
    // The process start is the only thing waited for.
    let mut up = false;
    for _ in 0..200 {
        if client.get(format!("{base}/healthz")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(up, "the server started");

    let signer =
        attribution_bridge::webhooks::verify::Verifier::new(&[secret.clone().into()], 300).unwrap();
    let now = chrono::Utc::now().timestamp().to_string();
    let body = serde_json::to_vec(&install_event("st_1", "gpat_t")).unwrap();
    let sig = signer.sign(&[b"msg_1", now.as_bytes(), &body]);
    let res = client
        .post(format!("{base}/webhooks/platform"))
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", &now)
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let link = signed_load_link(&base, &signer, "st_1", &now);
    client.get(link).send().await.unwrap();
    let get = |path: &str| client.get(format!("{base}{path}")).send();
    let page = get("/app/stores/st_1").await.unwrap().text().await.unwrap();
    let csrf = csrf_of(&page).expect("the page has a form");
    let res = get(&format!("/app/amazon/connect?region=NA&csrf={csrf}"))
        .await
        .unwrap();
    let q = consent_query(&res);
    let code = amazon.allow(&q["code_challenge"]);
    let mut callback = url::Url::parse(&format!("{base}/oauth/amazon/callback")).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &q["state"]);
    let in_flight = tokio::spawn({
        let client = client.clone();
        async move { client.get(callback).send().await.unwrap().status() }
    });
    // Once Amazon's (slow) token endpoint has the request, the server is told to stop.
    amazon.wait_for_token_request().await;
    let killed = Command::new("kill")
        .args([signal, &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(
        in_flight.await.unwrap(),
        303,
        "{signal}: the in-flight request finished"
    );
    let exit = tokio::task::spawn_blocking(move || server.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{signal}: clean exit: {exit:?}");
    // And what it did is committed.
    let conn = sea_orm::Database::connect(&db.url).await.unwrap();
    use sea_orm::EntityTrait;
    assert!(
        entity::amazon_connections::Entity::find_by_id("st_1")
            .one(&conn)
            .await
            .unwrap()
            .is_some()
    );
}

/// Runs the binary with its stdout closed by the reader before the first byte is written: what
/// `… | head -1` does to the lines after the first, made certain.
pub fn run_with_stdout_closed(args: &[&str], env: Vec<(String, String)>) -> CliRun {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(args)
        .envs(env)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    CliRun {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn every_command_ends_quietly_when_its_reader_closed_stdout() {
    let w = crate::sync::one_order_sync_world().synced().await;
    w.app.run_due_jobs().await;
    for args in [
        &["ledger", "--store", "st_1"][..],
        &["ledger", "--store", "st_1", "--json"],
        &["stores", "list"],
        &["stores", "list", "--json"],
        &["dead-letters"],
        &["export", "--store", "st_1", "--links"],
        &["sync", "--help"],
    ] {
        let run = run_with_stdout_closed(args, w.app.env());
        assert_eq!(run.code, Some(0), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("Broken pipe"),
            "{args:?}: {}",
            run.stderr
        );
    }
    // The shell's own pipe, as an operator types it.
    let run = Command::new("sh")
        .args([
            "-c",
            &format!(
                "'{}' ledger --store st_1 | head -1",
                env!("CARGO_BIN_EXE_attribution-bridge")
            ),
        ])
        .envs(w.app.env())
        .output()
        .unwrap();
    assert!(run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.starts_with("2026-11-01 USD a1"), "{stdout}");
    assert_eq!(String::from_utf8_lossy(&run.stderr), "");
}

/// `migrate down` reverts the last migration, not every one (which drops every table and its
/// data: that takes `--all`); every `migrate` command prints where the database stands.
#[tokio::test]
async fn migrate_down_reverts_one_and_each_command_says_where_the_database_stands() {
    let app = spawn_app().await;
    let count = |run: &CliRun, status: &str| {
        assert!(run.ok, "{}", run.stderr);
        run.stdout.lines().filter(|l| l.starts_with(status)).count()
    };
    let status = app.cli(&["migrate", "status"]);
    let all = count(&status, "Applied");
    assert!(all >= 6, "{}", status.stdout);
    assert_eq!(count(&status, "Pending"), 0);
    let down = app.cli(&["migrate", "down"]);
    assert_eq!(
        (count(&down, "Applied"), count(&down, "Pending")),
        (all - 1, 1)
    );
    let down = app.cli(&["migrate", "down", "-n", "2"]);
    assert_eq!(count(&down, "Pending"), 3);
    let up = app.cli(&["migrate", "up"]);
    assert_eq!((count(&up, "Applied"), count(&up, "Pending")), (all, 0));
    assert_eq!(app.count("SELECT COUNT(*) FROM stores").await, 0);
}

/// A store id that names no store is an error the same way in every command that takes one
/// (exit 1, "no store …"): an empty ledger or "no dead letters" would read as a store with
/// nothing wrong. A command missing what it must be told is a usage error (exit 2).
#[tokio::test]
async fn a_store_id_that_names_no_store_is_an_error_in_every_command() {
    let app = app_with_store("st_1", "gpat_cli", &[(1, "Alice")]).await;
    for args in [
        &["ledger", "--store", "st_nope"][..],
        &["ledger", "--store", "st_nope", "--json"],
        &["dead-letters", "--store", "st_nope"],
        &["dead-letters", "--store", "st_nope", "--retry"],
        &["export", "--store", "st_nope", "--links"],
        &["sync", "--store", "st_nope", "--wait", "0"],
    ] {
        let run = app.cli(args);
        assert_eq!(run.code, Some(1), "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("no store st_nope"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "{args:?}: {}", run.stdout);
    }
    let run = app.cli(&["export", "--store", "st_1"]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--links"), "{}", run.stderr);
    assert!(app.cli(&["ledger", "--store", "st_1"]).ok);
}
