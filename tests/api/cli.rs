//! The binary as an operator runs it: `stores list --json` against the same database.
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn stores_list_json_shows_installed_stores() {
    let app = spawn_app().await;
    app.install("st_1001", "gpat_cli").await;
    app.send(&affiliate_event("affiliate.created", "st_1001", 1, "Alice"))
        .await;
    let env = test_env(&app.db, &app.secret, &app.encryption_key);
    let out = Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(["stores", "list", "--json"])
        .envs(env)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], "st_1001");
    assert_eq!(list[0]["status"], "active");
    assert_eq!(list[0]["program_connected"], true);
    assert_eq!(list[0]["affiliates"], 1);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("gpat_cli"));
}

#[test]
fn a_bad_configuration_value_names_itself_and_exits_non_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(["stores", "list"])
        .env("APP__SERVER__PORT", "eighty")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.port"));
    let out = Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(["stores", "list"])
        .env("APP__SYNC__DAILY_AT", "25:00")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sync.daily_at"));
}
