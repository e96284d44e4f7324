//! Database connection and migrations. SQLite (embedded default) or PostgreSQL, chosen by URL.
//!
//! The pool is built here from sqlx's own connect options rather than through sea-orm's
//! `Database::connect`, whose trace span records the whole `ConnectOptions`, URL and password
//! included: the password reaches no log line at any level, and no error quotes the URL (DESIGN §7).
use std::{str::FromStr, time::Duration};

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    DatabaseConnection, DbErr, SqlxPostgresConnector, SqlxSqliteConnector,
    sqlx::{
        self, ConnectOptions as _,
        pool::PoolOptions,
        postgres::PgConnectOptions,
        sqlite::{SqliteConnectOptions, SqliteJournalMode},
    },
};
use secrecy::ExposeSecret;

use crate::config::{DatabaseSettings, redact_credentials};

/// How long a query waits for a free connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the database could not be opened. No variant carries the database URL.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// `database.url` is not a URL sqlx can read (the URL itself is not repeated).
    #[error("`database.url` cannot be read: {0}")]
    Url(String),
    /// The server or file could not be reached or opened.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// sqlx's message, with any credentials in a quoted URL masked.
fn message(e: &sqlx::Error) -> String {
    redact_credentials(&e.to_string())
}

/// Connects; for SQLite, creates the file's directory, turns on WAL and uses one connection so
/// writers never contend inside the process (other processes wait on the busy timeout).
/// Statements are not logged by sqlx.
pub async fn connect(settings: &DatabaseSettings) -> Result<DatabaseConnection, DbSetupError> {
    let url = settings.url.expose_secret();
    if settings.is_sqlite() {
        let dir = sqlite_path(url).and_then(|p| p.parent().map(std::path::Path::to_path_buf));
        if let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(&dir).map_err(|source| DbSetupError::Folder {
                path: dir.clone(),
                source,
            })?;
        }
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| DbSetupError::Url(message(&e)))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            .disable_statement_logging();
        let pool = PoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| DbSetupError::Connect(message(&e)))?;
        Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(pool))
    } else {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| DbSetupError::Url(message(&e)))?
            .disable_statement_logging();
        let pool = PoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| DbSetupError::Connect(message(&e)))?;
        Ok(SqlxPostgresConnector::from_sqlx_postgres_pool(pool))
    }
}

/// The file of a `sqlite:` URL, if it names one (not `:memory:`).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then(|| path.into())
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

pub async fn connect_and_migrate(
    settings: &DatabaseSettings,
) -> Result<DatabaseConnection, DbSetupError> {
    let db = connect(settings).await?;
    migrate(&db).await?;
    Ok(db)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_path("sqlite://data/a.db?mode=rwc"),
            Some("data/a.db".into())
        );
        assert_eq!(sqlite_path("sqlite:///tmp/a.db"), Some("/tmp/a.db".into()));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
    }

    fn postgres(url: &str) -> DatabaseSettings {
        DatabaseSettings {
            url: url.to_owned().into(),
            max_connections: 1,
        }
    }

    #[tokio::test]
    async fn a_bad_or_unreachable_database_url_is_reported_without_its_password() {
        // A "server" on loopback that hangs up on every connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                drop(stream);
            }
        });
        for url in [
            "postgres://app:s3cr3t-pw@127.0.0.1:port/db".to_owned(),
            format!("postgres://app:s3cr3t-pw@127.0.0.1:{port}/db"),
        ] {
            let err = connect(&postgres(&url)).await.expect_err("refused");
            let text = format!("{err} {err:?}");
            assert!(!text.contains("s3cr3t-pw"), "{text}");
            assert!(text.contains("database"), "{text}");
        }
    }
}
