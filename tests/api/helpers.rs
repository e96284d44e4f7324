use std::sync::Arc;

use attribution_bridge::{
    Application,
    clients::resolve::StaticLookup,
    config::Settings,
    domain::{clock::ManualClock, ids::StoreId},
    jobs::worker,
    state::AppState,
    store::stores::Store,
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
    let mut env = vec![
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
        // The doubles listen on loopback, which program calls may reach only when allowed.
        (
            "APP__PROGRAM__ALLOWED_PRIVATE_HOSTS".into(),
            "127.0.0.1".into(),
        ),
        // The doubles take any pace; the tests of pacing set their own.
        ("APP__PROGRAM__MAX_REQUESTS_PER_SEC".into(), "1000".into()),
    ];
    // `TEST_HELD_ROWS=0` runs the suite with every report staged (a test's own setting wins).
    if let Ok(rows) = std::env::var("TEST_HELD_ROWS") {
        env.push(("APP__SYNC__HELD_ROWS".into(), rows));
    }
    env
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// An app with one more `APP__…` setting (a later one wins).
pub async fn spawn_app_setting(key: &str, value: &str) -> TestApp {
    spawn_app_with(|env| env.push((key.to_owned(), value.to_owned()))).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut Vec<(String, String)>)) -> TestApp {
    spawn_app_resolving(tweak, StaticLookup::default()).await
}

/// As `spawn_app_with`, with the program's host names resolved by `lookup` alone: no test asks
/// a real resolver (a name `lookup` does not know does not resolve).
pub async fn spawn_app_resolving(
    tweak: impl FnOnce(&mut Vec<(String, String)>),
    lookup: StaticLookup,
) -> TestApp {
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
    let app = Application::build_with(settings, clock.clone(), Arc::new(lookup))
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    let client = browser_client();
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

/// A client that keeps cookies and does not follow redirects, as a merchant's browser.
pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        // The app closes a connection idle for 5 s (actix's keep-alive). One idle about that
        // long (a test's sync under a loaded CI) could be reused as the server closed it, and the
        // request fail with `IncompleteMessage`; browsers retry then, reqwest does not.
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .unwrap()
}

/// An app with one installed store and the given (id, name) affiliates on its roster.
pub async fn app_with_store(store_id: &str, token: &str, affiliates: &[(i64, &str)]) -> TestApp {
    let app = spawn_app().await;
    app.install(store_id, token).await;
    for (id, name) in affiliates {
        app.add_affiliate(store_id, *id, name).await;
    }
    app
}

/// The id of a store, parsed.
pub fn store_id(id: &str) -> StoreId {
    StoreId::parse(id).unwrap()
}

/// A load link to `store_id` on the server at `base`, signed with `signer` at timestamp `ts`.
pub fn signed_load_link(base: &str, signer: &Verifier, store_id: &str, ts: &str) -> String {
    let sig = signer.sign(&[store_id.as_bytes(), ts.as_bytes()]);
    let mut url = url::Url::parse(&format!("{base}/app/load")).unwrap();
    url.query_pairs_mut()
        .append_pair("store_id", store_id)
        .append_pair("timestamp", ts)
        .append_pair("signature", &sig);
    url.to_string()
}

/// The CSRF token a page's forms carry, if it has a form.
pub fn csrf_of(html: &str) -> Option<String> {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
}

/// What a run of the binary did: whether it succeeded, its exit code, its stdout and its stderr.
pub struct CliRun {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the binary with these arguments and (on top of the inherited) environment.
pub fn run_cli<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
    args: &[&str],
    env: impl IntoIterator<Item = (K, V)>,
) -> CliRun {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
        .args(args)
        .envs(env)
        .output()
        .unwrap();
    CliRun {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
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

/// A program.commission_updated event: the store's default commission becomes `kind` `value`.
pub fn commission_event(store_id: &str, kind: &str, value: &str) -> Value {
    json!({"type": "program.commission_updated", "data": {"store_id": store_id,
        "default_commission": {"type": kind, "value": value}}})
}

/// An affiliate.deleted event for affiliate `id` of the store.
pub fn affiliate_deleted_event(store_id: &str, id: i64) -> Value {
    json!({"type": "affiliate.deleted", "data": {"store_id": store_id, "affiliate": {"id": id}}})
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn now(&self) -> i64 {
        self.clock_now().timestamp()
    }

    /// Sets the clock to an RFC 3339 instant, such as `2026-11-20T15:00:00Z`.
    pub fn set_clock(&self, rfc3339: &str) {
        let at = DateTime::parse_from_rfc3339(rfc3339).expect("an RFC 3339 instant");
        self.clock.set(at.into());
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

    /// Posts raw bytes with the given id, timestamped now and signed with `signer`.
    pub async fn post_signed_with(
        &self,
        signer: &Verifier,
        id: &str,
        body: Vec<u8>,
    ) -> reqwest::Response {
        let ts = self.now().to_string();
        let sig = signer.sign(&[id.as_bytes(), ts.as_bytes(), &body]);
        self.post_raw(Some(id), Some(&ts), Some(&sig), body).await
    }

    /// Posts raw bytes with the given id, timestamped now and signed with the app's secret.
    pub async fn post_signed(&self, id: &str, body: Vec<u8>) -> reqwest::Response {
        self.post_signed_with(&self.signer, id, body).await
    }

    /// Posts a correctly signed delivery with the given id.
    pub async fn deliver(&self, id: &str, event: &Value) -> reqwest::Response {
        self.post_signed(id, serde_json::to_vec(event).unwrap())
            .await
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

    /// Sends affiliate.created for (`id`, `name`) of the store; returns the receipt status.
    pub async fn add_affiliate(&self, store_id: &str, id: i64, name: &str) -> String {
        self.send(&affiliate_event("affiliate.created", store_id, id, name))
            .await
    }

    /// The store's row; panics if there is none.
    pub async fn store(&self, id: &str) -> Store {
        attribution_bridge::store::stores::find(&self.state.deps.db, &store_id(id))
            .await
            .unwrap()
            .expect("store recorded")
    }

    /// The store's program token, opened; panics if there is none.
    pub async fn program_token(&self, id: &str) -> String {
        use secrecy::ExposeSecret;
        attribution_bridge::flows::lifecycle::program_token(&self.state.deps, &store_id(id))
            .await
            .unwrap()
            .expect("a program token")
            .expose_secret()
            .to_owned()
    }

    pub fn load_link(&self, store_id: &str, at: i64) -> String {
        signed_load_link(&self.address, &self.signer, store_id, &at.to_string())
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
        csrf_of(&self.page(page).await).expect("the page has a form")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// The body of the page at `path`, in the merchant's session.
    pub async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// Posts a form (CSRF token included by the caller) to `path` in the merchant's session.
    pub async fn post_form<T: serde::Serialize + ?Sized>(
        &self,
        path: &str,
        form: &T,
    ) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// The environment the binary needs to run against this app's database and secrets.
    pub fn env(&self) -> Vec<(String, String)> {
        test_env(&self.db, &self.secret, &self.encryption_key)
    }

    /// Runs the binary against this app's database, with `extra` settings on top.
    pub fn cli_with(&self, args: &[&str], extra: Vec<(String, String)>) -> CliRun {
        let mut env = self.env();
        env.extend(extra);
        run_cli(args, env)
    }

    /// Runs the binary against this app's database.
    pub fn cli(&self, args: &[&str]) -> CliRun {
        self.cli_with(args, vec![])
    }

    /// Runs every due job; returns how many ran.
    pub async fn run_due_jobs(&self) -> usize {
        let mut n = 0;
        while self.state.worker.run_next().await.unwrap() == worker::Outcome::Completed {
            n += 1;
            assert!(n < 10_000, "the queue does not drain");
        }
        n
    }

    /// Runs exactly one due job, which must exist.
    pub async fn run_one_job(&self) {
        assert_eq!(
            self.state.worker.run_next().await.unwrap(),
            worker::Outcome::Completed
        );
    }

    /// Runs one SQL statement that returns no rows.
    pub async fn execute(&self, sql: &str) {
        let db = &self.state.deps.db;
        db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap();
    }

    /// The rows a query returns, each as a JSON object (a failing proof prints them).
    pub async fn rows_json(&self, sql: &str) -> Vec<serde_json::Value> {
        use sea_orm::FromQueryResult;
        let db = &self.state.deps.db;
        serde_json::Value::find_by_statement(Statement::from_string(
            db.get_database_backend(),
            sql.to_owned(),
        ))
        .all(db)
        .await
        .unwrap()
    }

    /// Asserts how many rows `from` holds: a table and its condition, as after `SELECT COUNT(*) FROM`.
    pub async fn assert_rows(&self, from: &str, expected: i64) {
        let sql = format!("SELECT COUNT(*) FROM {from}");
        assert_eq!(self.count(&sql).await, expected, "{sql}");
    }

    /// Waits (bounded, 30 s) until `from` holds `expected` rows: for a step of a task running in
    /// the background that no test hook marks, such as a page's progress recorded while the next
    /// page is already asked for. Panics if it never does.
    pub async fn await_rows(&self, from: &str, expected: i64) {
        let sql = format!("SELECT COUNT(*) FROM {from}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.count(&sql).await != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "never {expected}: {sql}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Asserts how many rows each `FROM …` clause counts, one after the other.
    pub async fn assert_counts(&self, expected: &[(&str, i64)]) {
        for (from, n) in expected {
            self.assert_rows(from, *n).await;
        }
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

/// The setting `name` from the environment (a long run's size, a seed), else `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A count as the summary lines print it: 6000 as "6,000".
pub fn thousands(n: impl ToString) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
