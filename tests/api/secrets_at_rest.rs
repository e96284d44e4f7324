//! The program's access token never appears in plaintext in the database.
use crate::helpers::*;

#[tokio::test]
async fn the_access_tokens_plaintext_is_absent_from_the_database() {
    let app = spawn_app().await;
    let token = "gpat_PLAINTEXT_canary_7f3a9c";
    app.install("st_1", token).await;
    // It is there, sealed, and opens to the right value…
    assert_eq!(app.program_token("st_1").await, token);
    // …but no column of any table holds it,
    assert_eq!(app.columns_containing(token).await, Vec::<String>::new());
    assert_eq!(
        app.columns_containing("PLAINTEXT_canary").await,
        Vec::<String>::new()
    );
    // …and on SQLite, not a byte of the database files (WAL included) spells it.
    if !app.db.is_postgres() {
        for entry in std::fs::read_dir(app.db.dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()));
        }
    }
}

/// A key that does not open the database's secrets (the key file deleted and so created anew,
/// or another `security.encryption_key`) stops the start with an error that says so: running
/// on, every store's tokens would be unreadable. The right key still starts.
#[tokio::test]
async fn a_key_that_does_not_open_the_databases_secrets_stops_the_start() {
    let app = spawn_app().await;
    app.install("st_1", "gpat_sealed").await;
    let other = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=".to_owned();
    // On SQLite an empty key means the key file, which is not there: created anew, it is
    // another key (PostgreSQL requires the key itself).
    let mut keys = vec![other];
    if !app.db.is_postgres() {
        keys.push(String::new());
    }
    for key in keys {
        let run = app.cli_with(
            &["sync", "--store", "st_1", "--wait", "0"],
            vec![("APP__SECURITY__ENCRYPTION_KEY".into(), key.clone())],
        );
        assert_eq!(run.code, Some(1), "{key:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("encryption key does not open"),
            "{key:?}: {}",
            run.stderr
        );
    }
    app.assert_rows("jobs", 0).await;
    // The key file that refused start was not left behind, to be mistaken for the one to keep.
    assert!(!app.db.dir.path().join("key").exists());
    assert!(app.cli(&["sync", "--store", "st_1", "--wait", "0"]).code != Some(1));
}
