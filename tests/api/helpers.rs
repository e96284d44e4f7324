use std::sync::Arc;

use attribution_bridge::{
    Application, config::Settings, domain::clock::ManualClock, state::AppState,
    webhooks::verify::Verifier,
};
use base64::{Engine, engine::general_purpose::STANDARD as B64};
use chrono::{DateTime, TimeZone, Utc};
use rand::RngCore;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use secrecy::SecretString;
use serde_json::{Value, json};

pub fn random_secret() -> String {
    let mut key = [0u8; 24];
    rand::rng().fill_bytes(&mut key);
    format!("whsec_{}", B64.encode(key))
}

/// A database of its own for one test: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database (dropped at the end) when TEST_DATABASE_URL is set.
pub struct TestDb {
    pub url: String,
    pub dir: tempfile::TempDir,
    pg: Option<(String, String)>,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => {
                let name = format!("ab_test_{}", uuid::Uuid::new_v4().simple());
                let admin = Database::connect(&admin_url)
                    .await
                    .expect("TEST_DATABASE_URL reachable");
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                admin.close().await.ok();
                let mut url = url::Url::parse(&admin_url).expect("TEST_DATABASE_URL is a URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    dir,
                    pg: Some((admin_url, name)),
                }
            }
            None => {
                let url = format!("sqlite://{}/test.db?mode=rwc", dir.path().display());
                Self { url, dir, pg: None }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg.take() {
            // Drop runs outside any runtime we may block; use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(&admin_url).await {
                        let _ = admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub secret: String,
    pub signer: Verifier,
    pub client: reqwest::Client,
    pub encryption_key: String,
    pub db: TestDb,
}

pub fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap()
}

/// The environment a test deployment runs with, as `APP__…` pairs.
pub fn test_env(db: &TestDb, secret: &str, key: &str) -> Vec<(String, String)> {
    vec![
        ("APP__SERVER__PORT".into(), "0".into()),
        ("APP__DATABASE__URL".into(), db.url.clone()),
        ("APP__SECURITY__ENCRYPTION_KEY".into(), key.into()),
        (
            "APP__SECURITY__KEY_FILE".into(),
            db.dir.path().join("key").display().to_string(),
        ),
        ("APP__PLATFORM__WEBHOOK_SECRETS".into(), secret.into()),
        ("APP__WORKERS__ENABLED".into(), "false".into()),
        ("APP__SANDBOX__ENABLED".into(), "false".into()),
    ]
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Vec<(String, String)>)) -> TestApp {
    let db = TestDb::new().await;
    let secret = random_secret();
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let encryption_key = B64.encode(key);
    let mut env = test_env(&db, &secret, &encryption_key);
    tweak(&mut env);
    let settings = Settings::from_sources(None, env).expect("test settings are valid");
    // TEST_LOG=1 shows the application's logs (zero2prod's switch).
    if std::env::var_os("TEST_LOG").is_some() {
        attribution_bridge::telemetry::init(&settings.log);
    }
    let clock = Arc::new(ManualClock::new(start_time()));
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let signer = Verifier::new(&[SecretString::from(secret.clone())], 300).unwrap();
    TestApp {
        address,
        state,
        clock,
        secret,
        signer,
        client,
        encryption_key,
        db,
    }
}

pub fn install_event(store_id: &str, token: &str) -> Value {
    json!({"type":"app.installed","timestamp":"2026-11-20T10:00:00Z","data":{
        "store":{"id":store_id,"name":format!("Store {store_id}"),"url":"https://acme.example","currency":"USD"},
        "program":{"access_token":token,"default_commission":{"type":"percentage","value":"10"}}}})
}

pub fn store_event(event_type: &str, store_id: &str) -> Value {
    json!({"type":event_type,"timestamp":"2026-11-20T10:00:00Z","data":{"store":{"id":store_id}}})
}

pub fn affiliate_event(event_type: &str, store_id: &str, id: i64, name: &str) -> Value {
    json!({"type":event_type,"timestamp":"2026-11-20T10:00:00Z","data":{"store_id":store_id,
        "affiliate":{"id":id,"name":name,"ref_code":name.to_lowercase(),"status":"approved"}}})
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn now(&self) -> i64 {
        self.clock_now().timestamp()
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use attribution_bridge::domain::clock::Clock;
        self.clock.now()
    }

    pub fn sign(&self, id: &str, ts: &str, body: &[u8]) -> String {
        self.signer.sign(&[id.as_bytes(), ts.as_bytes(), body])
    }

    /// Posts raw bytes with the given headers (None leaves a header out).
    pub async fn post_raw(
        &self,
        id: Option<&str>,
        ts: Option<&str>,
        sig: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(self.url("/webhooks/platform"))
            .header("content-type", "application/json");
        if let Some(id) = id {
            req = req.header("webhook-id", id);
        }
        if let Some(ts) = ts {
            req = req.header("webhook-timestamp", ts);
        }
        if let Some(sig) = sig {
            req = req.header("webhook-signature", sig);
        }
        req.body(body).send().await.expect("request sent")
    }

    /// Posts a correctly signed delivery with the given id.
    pub async fn deliver(&self, id: &str, event: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(event).unwrap();
        let ts = self.now().to_string();
        let sig = self.sign(id, &ts, &body);
        self.post_raw(Some(id), Some(&ts), Some(&sig), body).await
    }

    /// Posts a signed delivery with a fresh id; asserts 200 and returns the receipt status.
    pub async fn send(&self, event: &Value) -> String {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let res = self.deliver(&id, event).await;
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        res.json::<Value>().await.unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn install(&self, store_id: &str, token: &str) {
        assert_eq!(
            self.send(&install_event(store_id, token)).await,
            "processed"
        );
    }

    pub fn load_link(&self, store_id: &str, at: i64) -> String {
        let ts = at.to_string();
        let sig = self.signer.sign(&[store_id.as_bytes(), ts.as_bytes()]);
        let mut url = url::Url::parse(&self.url("/app/load")).unwrap();
        url.query_pairs_mut()
            .append_pair("store_id", store_id)
            .append_pair("timestamp", &ts)
            .append_pair("signature", &sig);
        url.to_string()
    }

    /// Follows a fresh load link; returns the redirect response (the session cookie is kept).
    pub async fn open_store(&self, store_id: &str) -> reqwest::Response {
        self.client
            .get(self.load_link(store_id, self.now()))
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token the page's forms carry.
    pub async fn csrf(&self, page: &str) -> String {
        let html = self.get(page).await.text().await.unwrap();
        html.split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the page has a form")
            .to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let backend = self.state.deps.db.get_database_backend();
        let row = self
            .state
            .deps
            .db
            .query_one_raw(Statement::from_string(backend, sql.to_owned()))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    }

    /// Every (table, column) whose value contains `needle`, in any table of the database.
    pub async fn columns_containing(&self, needle: &str) -> Vec<String> {
        let db = &self.state.deps.db;
        let backend = db.get_database_backend();
        let columns: Vec<(String, String, String)> = match backend {
            DbBackend::Sqlite => {
                let tables = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                    ))
                    .await
                    .unwrap();
                let mut out = vec![];
                for t in tables {
                    let table: String = t.try_get_by_index(0).unwrap();
                    let cols = db
                        .query_all_raw(Statement::from_string(backend, format!("PRAGMA table_info(\"{table}\")")))
                        .await
                        .unwrap();
                    for c in cols {
                        out.push((table.clone(), c.try_get::<String>("", "name").unwrap(), String::new()));
                    }
                }
                out
            }
            _ => db
                .query_all_raw(Statement::from_string(
                    backend,
                    "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = 'public'",
                ))
                .await
                .unwrap()
                .into_iter()
                .map(|r| {
                    (
                        r.try_get_by_index(0).unwrap(),
                        r.try_get_by_index(1).unwrap(),
                        r.try_get_by_index(2).unwrap(),
                    )
                })
                .collect(),
        };
        let mut hits = vec![];
        for (table, column, data_type) in columns {
            let sql = match backend {
                DbBackend::Sqlite => format!(
                    "SELECT COUNT(*) FROM \"{table}\" WHERE instr(CAST(\"{column}\" AS BLOB), CAST(? AS BLOB)) > 0"
                ),
                _ if data_type == "bytea" => format!(
                    "SELECT COUNT(*) FROM \"{table}\" WHERE position(convert_to($1, 'UTF8') in \"{column}\") > 0"
                ),
                _ => format!(
                    "SELECT COUNT(*) FROM \"{table}\" WHERE strpos(CAST(\"{column}\" AS TEXT), $1) > 0"
                ),
            };
            let row = db
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    [needle.into()],
                ))
                .await
                .unwrap()
                .unwrap();
            if row.try_get_by_index::<i64>(0).unwrap() > 0 {
                hits.push(format!("{table}.{column}"));
            }
        }
        hits
    }
}

/// An install whose program admin API is the given double.
pub fn install_event_at(store_id: &str, token: &str, api_url: &str) -> Value {
    let mut event = install_event(store_id, token);
    event["data"]["program"]["api_url"] = api_url.into();
    event
}

/// The text of the page's flash message, if any.
pub fn flash_of(html: &str) -> Option<String> {
    let start = html.find("id=\"flash\" role=\"status\">")? + "id=\"flash\" role=\"status\">".len();
    let end = html[start..].find("</p>")? + start;
    Some(html[start..end].to_owned())
}
