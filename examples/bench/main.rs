//! Benchmarks: `cargo run --release --example bench` (add BENCH_POSTGRES=postgres://… for the
//! PostgreSQL column). Prints figures side by side, each beside its ceiling measured in the same
//! run; nothing here is asserted.
//!
//! - webhook intake: signed ~1 KB `affiliate.updated` deliveries through the real HTTP server from
//!   8 and 32 connections (`load`), the median of 3 runs, beside a bare actix-web handler doing the
//!   same verified durable insert one transaction each and in groups (`ceiling`); and the latency
//!   at 5,000 deliveries/s;
//! - the daily sync of one store, 1,000 affiliates × 60 days (60,000 report rows in 12 pages)
//!   served by an Amazon double, run by the app's `sync` command in a child process: first read,
//!   then the same report again (no write), rows/s and peak RSS, beside `serde_json` parsing the
//!   same pages (`sync`);
//! - the merchant's pages of that store (goal: under 200 ms each), beside the time of the static
//!   stylesheet through the same server, which is the floor of any request.
mod ceiling;
mod footprint;
mod load;
mod pushes;
mod sync;

use std::{
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use attribution_bridge::{
    Application, config::Settings, db, domain::clock::SystemClock, domain::ids::StoreId,
    webhooks::verify::Verifier,
};
use chrono::{Duration, Utc};
use sea_orm::{ConnectionTrait, Database};
use secrecy::SecretString;
use serde_json::json;

const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
/// Client connections of the intake runs.
const CONNECTIONS: [usize; 2] = [8, 32];
/// Runs per intake figure (the median is shown), and each run's length.
const INTAKE_RUNS: usize = 3;
const INTAKE_SECS: u64 = 3;
/// The rate the intake's latency goal is set at.
const PACED_RATE: f64 = 5_000.0;
const AFFILIATES: i64 = 1_000;
/// The other store sizes of section 5 (affiliates, each with `DAYS` days).
const GROWTH: [i64; 2] = [250, 4_000];
/// The hour the daily syncs of every store must fit in, for section 5's crossover.
const SYNC_WINDOW_SECS: f64 = 3_600.0;
const DAYS: i64 = 60;

/// Requests per page; the median and the slowest are reported.
const PAGE_RUNS: usize = 15;
/// The merchant's pages, as (name, path under `/app/stores/st_bench`).
const PAGES: [(&str, &str); 12] = [
    ("Overview", ""),
    ("Affiliates", "/affiliates"),
    (
        "Affiliates, by commission",
        "/affiliates?sort=commission&dir=desc",
    ),
    ("one affiliate", "/affiliates/500"),
    ("Figures", "/figures"),
    ("Figures CSV", "/figures.csv"),
    ("Ledger", "/ledger"),
    ("Ledger, page 500", "/ledger?page=500"),
    ("Ledger, one affiliate", "/ledger?affiliate=500"),
    ("an order's history", "/ledger/AMZ-ab_st_bench-a500-{day}"),
    ("Activity", "/activity"),
    ("Settings", "/settings"),
];

/// One intake figure per connection count: the app, the ceiling one transaction each, and the
/// ceiling in groups.
struct Intake {
    app: Vec<load::Load>,
    each: Vec<load::Load>,
    grouped: Vec<load::Load>,
    /// The app at `PACED_RATE` from 32 connections.
    paced: load::Load,
    /// The app from 32 connections once the store is connected to Amazon (each affiliate's
    /// change refreshes its links).
    connected: load::Load,
    /// Deliveries per group commit over the app's runs, on average.
    mean_batch: f64,
    /// Deliveries the app answered `processed`, and any other way (none expected).
    processed: f64,
    not_processed: f64,
}

/// Section 2: the sync's two runs and the parser's ceiling.
struct SyncFigures {
    rows: i64,
    first: sync::Run,
    again: sync::Run,
    /// Whether the unchanged re-read wrote to the ledger (it must not).
    writes_again: bool,
    /// Seconds `serde_json` takes to parse the same pages.
    ceiling_secs: f64,
}

struct Figures3 {
    intake: Option<Intake>,
    sync: SyncFigures,
    /// (median, slowest) in ms, in the order of `PAGES`.
    pages: Vec<(f64, f64)>,
    /// The stylesheet's median, in ms.
    floor_ms: f64,
}

/// The median and the slowest of `PAGE_RUNS` GETs of `url`, in ms.
async fn time_get(client: &reqwest::Client, url: &str) -> (f64, f64) {
    let mut ms = Vec::with_capacity(PAGE_RUNS);
    for _ in 0..PAGE_RUNS {
        let started = Instant::now();
        let res = client.get(url).send().await.expect("server reachable");
        assert!(res.status().is_success(), "{url}: {}", res.status());
        res.bytes().await.expect("a body");
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (ms[PAGE_RUNS / 2], ms[PAGE_RUNS - 1])
}

/// The store connected to Amazon (as if the merchant had, with an access token good for a day),
/// so that the sync can run and every page shows its figures.
async fn connect_amazon(conn: &impl ConnectionTrait, settings: &Settings) -> Option<()> {
    use attribution_bridge::{crypto, flows::tokens};
    use entity::amazon_connections::ActiveModel;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
    let store = StoreId::parse("st_bench").ok()?;
    let found = entity::amazon_connections::Entity::find_by_id("st_bench")
        .one(conn)
        .await
        .ok()?;
    if found.is_some() {
        return Some(());
    }
    let cipher = crypto::TokenCipher::new(crypto::load_key(settings).ok()?.bytes);
    let seal = |aad: String| Some(cipher.seal(&SecretString::from("Atza|bench"), &aad));
    let now = Utc::now();
    ActiveModel {
        store_id: Set("st_bench".into()),
        region: Set("NA".into()),
        status: Set(entity::states::ConnectionStatus::Connected),
        refresh_token: Set(seal(tokens::refresh_aad(&store))),
        access_token: Set(seal(tokens::access_aad(&store))),
        access_expires_at: Set(Some(now + Duration::days(1))),
        profile_id: Set(Some(1)),
        advertiser_id: Set(Some("ad_bench".into())),
        advertiser_name: Set(Some("Bench Brand".into())),
        country_code: Set(Some("US".into())),
        currency_code: Set(Some("USD".into())),
        timezone: Set(Some("UTC".into())),
        marketplace_id: Set(None),
        // Links are minted from it: an affiliate's change refreshes its links.
        template_tag: Set(Some(
            "?maas=maas_adg_api_bench&ref_=aa_maas&tag=maas&aa_campaignid={insertCampaign}\
             &aa_adgroupid={insertAdGroupId}&aa_creativeid={insertCreativeId}"
                .into(),
        )),
        choices: Set(None),
        problem: Set(None),
        connected_at: Set(now),
        updated_at: Set(now),
    }
    .insert(conn)
    .await
    .ok()
    .map(|_| ())
}

/// What the ledger holds, in a few numbers: any write to it changes one.
async fn ledger_fingerprint(conn: &impl ConnectionTrait) -> Option<Vec<String>> {
    let mut out = vec![];
    for table in [
        "daily_figures",
        "figure_changes",
        "orders",
        "order_versions",
        "unmatched_figures",
        "jobs",
    ] {
        let sql = if table == "jobs" {
            // The sync's own job is no write to the ledger; a push queued would be.
            "SELECT CAST(COUNT(*) AS TEXT) AS f FROM jobs WHERE kind = 'push_order'".to_owned()
        } else if table == "figure_changes" || table == "order_versions" {
            format!("SELECT CAST(COUNT(*) AS TEXT) AS f FROM {table}")
        } else {
            format!(
                "SELECT CAST(COUNT(*) AS TEXT) || ' ' || COALESCE(CAST(MAX(updated_at) AS TEXT), '') AS f FROM {table}"
            )
        };
        let row = conn
            .query_one_raw(sea_orm::Statement::from_string(
                conn.get_database_backend(),
                sql,
            ))
            .await
            .ok()??;
        out.push(row.try_get::<String>("", "f").ok()?);
    }
    Some(out)
}

/// The seconds of the store's last two sync runs, as the app recorded them.
async fn run_secs(conn: &impl ConnectionTrait) -> Option<(f64, f64)> {
    use sea_orm::{EntityTrait, QueryOrder};
    let runs = entity::sync_runs::Entity::find()
        .order_by_asc(entity::sync_runs::Column::Id)
        .all(conn)
        .await
        .ok()?;
    let secs = |r: &entity::sync_runs::Model| {
        r.finished_at
            .map_or(f64::NAN, |f| (f - r.started_at).as_seconds_f64())
    };
    match runs.as_slice() {
        [.., a, b] => Some((secs(a), secs(b))),
        _ => None,
    }
}

async fn fresh_db(kind: &str, dir: &std::path::Path) -> Option<(String, Option<(String, String)>)> {
    match kind {
        "sqlite" => Some((
            format!("sqlite://{}/bench.db?mode=rwc", dir.display()),
            None,
        )),
        _ => {
            let admin = std::env::var("BENCH_POSTGRES").ok()?;
            let name = format!("ab_bench_{}", uuid::Uuid::new_v4().simple());
            let conn = Database::connect(&admin).await.ok()?;
            conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .ok()?;
            let mut url = url::Url::parse(&admin).ok()?;
            url.set_path(&name);
            Some((url.to_string(), Some((admin, name))))
        }
    }
}

/// The settings the app gets for database `url` (the ceiling opens its database with them too).
fn settings_for(url: &str) -> Option<Settings> {
    Settings::from_sources(None, env_for(url)).ok()
}

/// The environment of those settings.
fn env_for(url: &str) -> Vec<(String, String)> {
    vec![
        ("APP__SERVER__PORT".to_owned(), "0".to_owned()),
        ("APP__DATABASE__URL".to_owned(), url.to_owned()),
        (
            "APP__SECURITY__ENCRYPTION_KEY".to_owned(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned(),
        ),
        (
            "APP__PLATFORM__WEBHOOK_SECRETS".to_owned(),
            SECRET.to_owned(),
        ),
        ("APP__WORKERS__ENABLED".to_owned(), "false".to_owned()),
        ("APP__SANDBOX__ENABLED".to_owned(), "false".to_owned()),
        ("APP__DATABASE__MAX_CONNECTIONS".to_owned(), "16".to_owned()),
        ("APP__LOG__LEVEL".to_owned(), "warn".to_owned()),
    ]
}

/// The medians of `INTAKE_RUNS` runs at each of `CONNECTIONS` against `url`.
fn loads(url: &str, signer: &Arc<Verifier>, name: &str) -> Vec<load::Load> {
    CONNECTIONS
        .iter()
        .map(|&c| {
            let runs = (0..INTAKE_RUNS)
                .map(|r| {
                    let time = StdDuration::from_secs(INTAKE_SECS);
                    load::run(
                        url,
                        signer.clone(),
                        c,
                        time,
                        None,
                        &format!("{name}{c}r{r}"),
                    )
                })
                .collect();
            load::median(runs)
        })
        .collect()
}

/// The app's intake at `address`, then the two ceilings, each on a fresh database of `kind`.
async fn intake(kind: &str, s: &Seeded, address: &str) -> Option<Intake> {
    let (dir, signer) = (s._dir.path(), &s.signer);
    let app = loads(address, signer, "app");
    let at_32 = |rate, name: &str| {
        let time = StdDuration::from_secs(INTAKE_SECS);
        load::run(address, signer.clone(), 32, time, rate, name)
    };
    let paced = at_32(Some(PACED_RATE), "paced");
    let metrics_url = address.replace("/webhooks/platform", "/metrics");
    let scrape = || async { reqwest::get(&metrics_url).await.ok()?.text().await.ok() };
    let sample = |metrics: &str, name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let metrics = scrape().await?;
    let mean_batch = sample(&metrics, "attribution_bridge_webhook_batch_size_sum ")
        / sample(&metrics, "attribution_bridge_webhook_batch_size_count ");
    // The same store, now connected to Amazon: its affiliates' first changes mint their links,
    // which the merchant's pages measured later show.
    let conn = db::connect(&s.settings.database).await.ok()?;
    connect_amazon(&conn, &s.settings).await?;
    conn.close().await.ok()?;
    let connected = load::median(
        (0..INTAKE_RUNS)
            .map(|r| at_32(None, &format!("connected{r}")))
            .collect(),
    );
    let metrics = scrape().await?;
    let outcome = |o: &str| {
        sample(
            &metrics,
            &format!("attribution_bridge_webhooks_total{{outcome=\"{o}\"}} "),
        )
    };
    let processed = outcome("processed");
    let not_processed: f64 = [
        "ignored",
        "duplicate",
        "unauthorized",
        "malformed",
        "unavailable",
    ]
    .iter()
    .map(|o| outcome(o))
    .filter(|n| !n.is_nan())
    .fold(0.0, |sum, n| sum + n);
    let mut ceilings = vec![];
    for grouped in [false, true] {
        let sub = dir.join(if grouped { "grouped" } else { "each" });
        std::fs::create_dir_all(&sub).ok()?;
        let (url, cleanup) = fresh_db(kind, &sub).await?;
        let url = ceiling::start(&settings_for(&url)?.database, SECRET, grouped).await;
        ceilings.push(loads(&url, signer, "ceiling"));
        drop_db(cleanup).await;
    }
    let grouped = ceilings.pop()?;
    let each = ceilings.pop()?;
    Some(Intake {
        app,
        each,
        grouped,
        paced,
        connected,
        mean_batch,
        processed,
        not_processed,
    })
}

/// Drops a PostgreSQL database the bench created.
async fn drop_db(cleanup: Option<(String, String)>) {
    if let Some((admin, name)) = cleanup
        && let Ok(admin) = Database::connect(&admin).await
    {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }
}

/// A fresh database of one kind, the app serving on it, and the store `st_bench` installed with
/// its roster (sent as webhooks, 16 at a time).
struct Seeded {
    _dir: tempfile::TempDir,
    url: String,
    cleanup: Option<(String, String)>,
    settings: Settings,
    base: String,
    signer: Arc<Verifier>,
}

async fn seed(kind: &str, affiliates: i64) -> Option<Seeded> {
    let dir = tempfile::tempdir().ok()?;
    let (url, cleanup) = fresh_db(kind, dir.path()).await?;
    let settings = settings_for(&url)?;
    let app = Application::build_with_clock(settings.clone(), Arc::new(SystemClock))
        .await
        .ok()?;
    let base = format!("http://127.0.0.1:{}", app.port());
    let address = format!("{base}/webhooks/platform");
    tokio::spawn(app.run_until_stopped());
    let signer = Arc::new(Verifier::new(&[SecretString::from(SECRET)], 300).ok()?);
    let client = reqwest::Client::new();
    let install = json!({"type": "app.installed", "data": {
        "store": {"id": "st_bench", "name": "Bench", "url": "https://bench.example", "currency": "USD"},
        "program": {"access_token": "gpat_bench", "default_commission": {"type": "percentage", "value": "10"}}}});
    send(&client, &signer, &address, "msg_install", &install).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let (client, signer, address) = (client.clone(), signer.clone(), address.clone());
        tasks.spawn(async move {
            for id in (1 + t..=affiliates).step_by(16) {
                let event = json!({"type": "affiliate.created", "data": {"store_id": "st_bench",
                    "affiliate": {"id": id, "name": format!("Affiliate {id}"), "ref_code": format!("a{id}"), "status": "approved"}}});
                send(&client, &signer, &address, &format!("msg_{id}"), &event).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    Some(Seeded {
        _dir: dir,
        url,
        cleanup,
        settings,
        base,
        signer,
    })
}

/// Sections 2 and 5: the store's daily sync of `affiliates` × `DAYS`, through the app's own
/// command against an Amazon double, first read and the same report again.
async fn sync_runs(
    s: &Seeded,
    conn: &impl ConnectionTrait,
    affiliates: i64,
) -> Option<SyncFigures> {
    let today = Utc::now().date_naive();
    connect_amazon(conn, &s.settings).await?;
    let pages = sync::pages("ab_st_bench", affiliates, DAYS, today);
    let ceiling_secs = sync::parse_ceiling(&pages);
    let double = sync::double(pages);
    let mut env = env_for(&s.url);
    env.extend(
        [
            ("APP__AMAZON__API_URL", double.as_str()),
            ("APP__PROGRAM__API_URL", double.as_str()),
            ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "127.0.0.1"),
            // Only the oldest day's orders are due, pushed unpaced after the sync has finished:
            // the pushes stay out of the sync's figures (section 3 measures them).
            ("APP__SYNC__PUSH_AFTER_DAYS", "60"),
            ("APP__PROGRAM__MAX_REQUESTS_PER_SEC", "1000"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let first_mb = sync::run_child("st_bench", &env);
    let before = ledger_fingerprint(conn).await?;
    let again_mb = sync::run_child("st_bench", &env);
    let writes_again = ledger_fingerprint(conn).await? != before;
    let runs = run_secs(conn).await?;
    Some(SyncFigures {
        rows: affiliates * DAYS,
        first: sync::Run {
            secs: runs.0,
            peak_mb: first_mb,
        },
        again: sync::Run {
            secs: runs.1,
            peak_mb: again_mb,
        },
        writes_again,
        ceiling_secs,
    })
}

/// Section 1 alone, on a database of its own.
async fn intake_alone(kind: &str) -> Option<Intake> {
    let s = seed(kind, AFFILIATES).await?;
    let address = format!("{}/webhooks/platform", s.base);
    let figures = intake(kind, &s, &address).await;
    drop_db(s.cleanup.clone()).await;
    figures
}

/// Section 5: the sync at one more size, on a database of its own.
async fn growth(kind: &str, affiliates: i64) -> Option<SyncFigures> {
    let s = seed(kind, affiliates).await?;
    let conn = db::connect(&s.settings.database).await.ok()?;
    let figures = sync_runs(&s, &conn, affiliates).await;
    conn.close().await.ok();
    drop_db(s.cleanup.clone()).await;
    figures
}

async fn run(kind: &str) -> Option<Figures3> {
    let seeded = seed(kind, AFFILIATES).await?;
    let (base, signer) = (&seeded.base, &seeded.signer);
    let address = format!("{base}/webhooks/platform");
    // `BENCH_ONLY=ingest` skips the intake runs (to profile the ingest alone).
    let intake = match std::env::var("BENCH_ONLY").as_deref() {
        Ok("ingest") => None,
        _ => Some(intake(kind, &seeded, &address).await?),
    };
    let conn = db::connect(&seeded.settings.database).await.ok()?;
    let today = Utc::now().date_naive();
    let sync = sync_runs(&seeded, &conn, AFFILIATES).await?;

    // The merchant's pages of that store, through a merchant session.
    let merchant = reqwest::Client::builder().cookie_store(true).build().ok()?;
    let ts = Utc::now().timestamp().to_string();
    let sig = signer.sign(&["st_bench".as_bytes(), ts.as_bytes()]);
    let load = format!(
        "{base}/app/load?store_id=st_bench&timestamp={ts}&signature={}",
        url::form_urlencoded::byte_serialize(sig.as_bytes()).collect::<String>()
    );
    assert!(merchant.get(&load).send().await.ok()?.status().is_success());
    let order_day = (today - Duration::days(10)).format("%Y%m%d").to_string();
    let mut pages = Vec::with_capacity(PAGES.len());
    for (_, path) in PAGES {
        let url = format!(
            "{base}/app/stores/st_bench{}",
            path.replace("{day}", &order_day)
        );
        pages.push(time_get(&merchant, &url).await);
    }
    let floor_ms = time_get(&merchant, &format!("{base}/static/app.css"))
        .await
        .0;
    conn.close().await.ok();
    drop_db(seeded.cleanup.clone()).await;

    Some(Figures3 {
        intake,
        sync,
        pages,
        floor_ms,
    })
}

async fn send(
    client: &reqwest::Client,
    signer: &Verifier,
    address: &str,
    id: &str,
    event: &serde_json::Value,
) {
    let body = serde_json::to_vec(event).expect("json");
    let ts = Utc::now().timestamp().to_string();
    let sig = signer.sign(&[id.as_bytes(), ts.as_bytes(), &body]);
    let res = client
        .post(address)
        .header("webhook-id", id)
        .header("webhook-timestamp", &ts)
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .expect("server reachable");
    assert!(
        res.status().is_success(),
        "webhook refused: {}",
        res.status()
    );
}

/// Section 1: the intake beside its ceilings.
fn intake_table(sqlite: Option<&Intake>, postgres: Option<&Intake>) {
    let cell = |l: &load::Load| {
        let errors = if l.errors > 0 {
            format!(", {} errors", l.errors)
        } else {
            String::new()
        };
        format!(
            "{:.0}/s (p50 {:.1} ms, p99 {:.1} ms{errors})",
            l.per_sec, l.p50_ms, l.p99_ms
        )
    };
    println!(
        "1. Webhook intake: signed ~1 KB deliveries, the median of {INTAKE_RUNS} runs of {INTAKE_SECS} s; \
         the ceiling is a bare actix-web handler doing the same verified durable insert"
    );
    println!();
    println!(
        "| database | connections | attribution-bridge | ceiling, one transaction each | ceiling, in groups |"
    );
    println!("|---|---|---|---|---|");
    for (name, f) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
        let Some(f) = f else {
            println!("| {name} | – | (set BENCH_POSTGRES; not BENCH_ONLY=ingest) | | |");
            continue;
        };
        for (i, c) in CONNECTIONS.iter().enumerate() {
            println!(
                "| {name} | {c} | {} | {} | {} |",
                cell(&f.app[i]),
                cell(&f.each[i]),
                cell(&f.grouped[i])
            );
        }
        println!(
            "| {name} | 32, paced at {PACED_RATE:.0}/s | {} (mean group commit: {:.1} deliveries) | | |",
            cell(&f.paced),
            f.mean_batch
        );
        println!(
            "| {name} | 32, store connected to Amazon | {} | | |",
            cell(&f.connected)
        );
    }
    for (name, f) in [("SQLite", sqlite), ("PostgreSQL", postgres)] {
        if let Some(f) = f {
            println!(
                "\n{name}: {:.0} deliveries answered `processed` (each an affiliate written), {:.0} otherwise.",
                f.processed, f.not_processed
            );
        }
    }
    println!();
}

/// Section 2: the daily sync beside the parser's ceiling.
fn sync_table(sqlite: &SyncFigures, postgres: Option<&SyncFigures>) {
    println!(
        "2. Daily sync: {AFFILIATES} affiliates × {DAYS} days ({} report rows, 12 pages) from an Amazon \
         double, by the `sync` command; the ceiling is serde_json parsing the same pages",
        AFFILIATES * DAYS
    );
    println!();
    println!(
        "| database | read | seconds | rows/s | peak RSS | ledger written | ceiling: serde_json rows/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, f) in [("SQLite", Some(sqlite)), ("PostgreSQL", postgres)] {
        let Some(f) = f else {
            println!("| {name} | (set BENCH_POSTGRES) | | | | | |");
            continue;
        };
        let rate = |secs: f64| f.rows as f64 / secs;
        for (read, run, written) in [
            ("first", f.first, "yes".to_owned()),
            (
                "same report again",
                f.again,
                if f.writes_again {
                    "YES (must not)"
                } else {
                    "no"
                }
                .to_owned(),
            ),
        ] {
            println!(
                "| {name} | {read} | {:.2} s | {:.0} | {:.0} MB | {written} | {:.0} |",
                run.secs,
                rate(run.secs),
                run.peak_mb,
                rate(f.ceiling_secs)
            );
        }
    }
    println!();
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // The bench runs the app's own `sync` command in a child of itself (see `sync::run_child`).
    if std::env::var_os("BENCH_CHILD").is_some() {
        let code = attribution_bridge::cli::run().await;
        eprintln!("bench_peak_kb={}", sync::peak_kb());
        return code;
    }
    if std::env::var("BENCH_ONLY").as_deref() == Ok("pushes") {
        pushes::section().await;
        return std::process::ExitCode::SUCCESS;
    }
    // `BENCH_ONLY=intake`: section 1 alone (to profile it).
    if std::env::var("BENCH_ONLY").as_deref() == Ok("intake") {
        let mut figures = vec![];
        for kind in ["sqlite", "postgres"] {
            figures.push(intake_alone(kind).await);
        }
        intake_table(figures[0].as_ref(), figures[1].as_ref());
        return std::process::ExitCode::SUCCESS;
    }
    // `BENCH_ONLY=sync`: section 2's runs alone, each on a database of its own (to profile them).
    if std::env::var("BENCH_ONLY").as_deref() == Ok("sync") {
        let mut sizes = vec![];
        for kind in ["sqlite", "postgres"] {
            sizes.push(vec![(AFFILIATES, growth(kind, AFFILIATES).await)]);
        }
        let sqlite = sizes[0][0].1.as_ref().expect("the SQLite sync ran");
        sync_table(sqlite, sizes[1][0].1.as_ref());
        return std::process::ExitCode::SUCCESS;
    }
    let sqlite = run("sqlite").await.expect("SQLite benchmark ran");
    let postgres = run("postgres").await;
    let cell = |f: Option<&Figures3>, pick: &dyn Fn(&Figures3) -> String| {
        f.map_or("(set BENCH_POSTGRES)".to_owned(), pick)
    };
    intake_table(
        sqlite.intake.as_ref(),
        postgres.as_ref().and_then(|f| f.intake.as_ref()),
    );
    sync_table(&sqlite.sync, postgres.as_ref().map(|f| &f.sync));
    println!(
        "| merchant page, {AFFILIATES} affiliates × {DAYS} days (goal < 200 ms) | SQLite median (slowest of {PAGE_RUNS}) | PostgreSQL median (slowest) |"
    );
    println!("|---|---|---|");
    let ms = |(median, max): (f64, f64)| format!("{median:.1} ms ({max:.1} ms)");
    for (i, (name, _)) in PAGES.iter().enumerate() {
        println!(
            "| {name} | {} | {} |",
            ms(sqlite.pages[i]),
            cell(postgres.as_ref(), &|f| ms(f.pages[i]))
        );
    }
    println!(
        "| floor: the stylesheet through the same server | {:.1} ms | {} |",
        sqlite.floor_ms,
        cell(postgres.as_ref(), &|f| format!("{:.1} ms", f.floor_ms))
    );
    println!();
    pushes::section().await;
    println!();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let mut env = env_for("sqlite::memory:");
    env.push(("APP__WORKERS__ENABLED".to_owned(), "true".to_owned()));
    let f = footprint::measure(dir.path(), &env, 5).await;
    println!(
        "4. Footprint: `serve` on a fresh SQLite database, workers on, sandbox off (median of 5 starts)"
    );
    println!();
    println!("| measure | attribution-bridge | goal |");
    println!("|---|---|---|");
    println!(
        "| time to ready (`/readyz` answers 200) | {:.2} s | < 1 s |",
        f.ready_secs
    );
    println!("| idle resident set | {:.1} MB | < 30 MB |", f.idle_mb);
    println!();
    let mut sizes = vec![];
    for kind in ["sqlite", "postgres"] {
        let mut row = vec![];
        for a in GROWTH {
            row.push((a, growth(kind, a).await));
        }
        sizes.push(row);
    }
    growth_table(&sqlite, postgres.as_ref(), &sizes);
    std::process::ExitCode::SUCCESS
}

/// Section 5: the daily sync's cost at three store sizes, and where one SQLite process stops
/// being enough.
fn growth_table(
    sqlite: &Figures3,
    postgres: Option<&Figures3>,
    sizes: &[Vec<(i64, Option<SyncFigures>)>],
) {
    println!(
        "5. Growth: one store's daily sync ({DAYS} days) at three sizes, first read and the same report again"
    );
    println!();
    println!(
        "| database | affiliates | report rows | first read | rows/s | peak RSS | again | rows/s | peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let mut again_rate = [f64::NAN, f64::NAN];
    for (i, (name, main)) in [("SQLite", Some(sqlite)), ("PostgreSQL", postgres)]
        .into_iter()
        .enumerate()
    {
        let mut rows: Vec<(i64, &SyncFigures)> = sizes[i]
            .iter()
            .filter_map(|(a, f)| Some((*a, f.as_ref()?)))
            .collect();
        if let Some(m) = main {
            rows.push((AFFILIATES, &m.sync));
        }
        rows.sort_by_key(|r| r.0);
        if rows.is_empty() {
            println!("| {name} | (set BENCH_POSTGRES) | | | | | | | |");
        }
        for (a, f) in &rows {
            let rate = |secs: f64| f.rows as f64 / secs;
            println!(
                "| {name} | {a} | {} | {:.2} s | {:.0} | {:.0} MB | {:.2} s | {:.0} | {:.0} MB |",
                f.rows,
                f.first.secs,
                rate(f.first.secs),
                f.first.peak_mb,
                f.again.secs,
                rate(f.again.secs),
                f.again.peak_mb
            );
        }
        // The largest size's re-read rate: a day's syncs are mostly re-reads of 60 days.
        if let Some((_, f)) = rows.last() {
            again_rate[i] = f.rows as f64 / f.again.secs;
        }
    }
    println!();
    let per_store = (AFFILIATES * DAYS) as f64;
    println!(
        "Crossover: one SQLite process has one writer, so every store's daily sync runs one after \
         the other. At the largest size's re-read rate ({:.0} rows/s) it fits {:.0} stores of \
         {AFFILIATES} affiliates × {DAYS} days into an hour ({:.0} report rows a day). Beyond that, run \
         PostgreSQL with several instances: each instance syncs its stores in parallel \
         ({:.0} rows/s per instance measured here), until the database server itself is the limit.",
        again_rate[0],
        again_rate[0] * SYNC_WINDOW_SECS / per_store,
        again_rate[0] * SYNC_WINDOW_SECS,
        again_rate[1]
    );
}
