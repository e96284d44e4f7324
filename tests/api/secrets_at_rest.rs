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
