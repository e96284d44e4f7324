//! `serve` over the real binary: once it listens, it prints on stdout the address it really
//! listens on (port 0 included), and the sandbox's when the sandbox is on.
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::helpers::*;

const KEY: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/// The server process, killed if the test ends early.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The environment of a first run: the sandbox on, port 0 (whatever port is free).
fn sandbox_env(db: &TestDb) -> Vec<(String, String)> {
    let mut env = test_env(db, &random_secret(), KEY);
    env.retain(|(k, _)| k != "APP__SANDBOX__ENABLED");
    env.extend([
        ("APP__SANDBOX__ENABLED".to_owned(), "true".to_owned()),
        ("APP__SANDBOX__PERSIST".to_owned(), "false".to_owned()),
        (
            "APP__SERVER__PUBLIC_URL".to_owned(),
            "http://127.0.0.1:0".to_owned(),
        ),
    ]);
    env
}

#[tokio::test]
async fn serve_prints_the_address_it_listens_on_and_the_sandbox_then_answers_there() {
    let db = TestDb::new().await;
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
            .arg("serve")
            .envs(sandbox_env(&db))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = server.0.stdout.take().unwrap();
    // The first line is printed once the server listens: it is what is waited for (a server
    // that never says it fails the test instead of hanging it).
    let read = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), read)
        .await
        .expect("serve printed a line within a minute")
        .unwrap();
    let (app_url, sandbox_url) = line
        .strip_prefix("Open ")
        .and_then(|rest| rest.strip_suffix(")\n"))
        .and_then(|rest| rest.split_once(" in a browser (sandbox: "))
        .unwrap_or_else(|| panic!("{line:?}"));
    let url = url::Url::parse(app_url).unwrap();
    assert_eq!(url.host_str(), Some("127.0.0.1"));
    assert!(url.port().is_some_and(|p| p != 0), "{line}");
    assert_eq!(sandbox_url, format!("{app_url}sandbox"));

    let home = reqwest::get(app_url).await.unwrap();
    assert_eq!(home.status(), 200);
    let sandbox = reqwest::get(sandbox_url).await.unwrap();
    assert_eq!(sandbox.status(), 200);
    assert!(
        sandbox
            .text()
            .await
            .unwrap()
            .contains("Sandbox control room")
    );
}

#[test]
fn serve_on_a_taken_port_says_so_and_prints_no_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let db = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(TestDb::new());
    let mut env = sandbox_env(&db);
    env.push(("APP__SERVER__PORT".into(), port.clone()));
    let run = run_cli(&["serve"], env);
    assert!(!run.ok);
    assert!(
        run.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "no address is claimed");
}
