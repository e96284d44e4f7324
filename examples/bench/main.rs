//! Benchmarks: `cargo run --release --example bench` (add BENCH_POSTGRES=postgres://… for the
//! PostgreSQL column). Prints figures side by side, each beside its ceiling measured in the same
//! run; nothing here is asserted.
//!
//! - webhook intake: signed ~1 KB `affiliate.updated` deliveries through the real HTTP server from
//!   8 and 32 connections (`load`), the median of 3 runs, beside a bare actix-web handler doing the
//!   same verified durable insert one transaction each and in groups (`ceiling`); and the latency
//!   at 5,000 deliveries/s;
//! - daily sync ingest: one store, 1,000 affiliates × 60 days (60,000 report rows) into figures and
//!   the ledger, first read, then the same report again (a no-op);
//! - the merchant's pages of that store (goal: under 200 ms each), beside the time of the static
//!   stylesheet through the same server, which is the floor of any request.
mod ceiling;
mod load;
mod pushes;

use std::{
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use attribution_bridge::{
    Application, clients::amazon::report::Figures, clients::amazon::report::Reading,
    clients::amazon::report::Rows, config::Settings, db, domain::clock::SystemClock,
    domain::commission::DefaultCommission, domain::currency::Currency, domain::figures::Basis,
    domain::ids::StoreId, flows::sync::ledger, flows::sync::ledger::Context,
    webhooks::verify::Verifier,
};
use chrono::{Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
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
    /// Deliveries per group commit over the app's runs, on average.
    mean_batch: f64,
}

struct Figures3 {
    intake: Option<Intake>,
    ingest_first_secs: f64,
    ingest_again_secs: f64,
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

/// The store connected to Amazon (as if the merchant had), so that every page shows its figures.
async fn connect_amazon(conn: &impl ConnectionTrait) -> Option<()> {
    use entity::amazon_connections::ActiveModel;
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let now = Utc::now();
    ActiveModel {
        store_id: Set("st_bench".into()),
        region: Set("NA".into()),
        status: Set(entity::states::ConnectionStatus::Connected),
        refresh_token: Set(None),
        access_token: Set(None),
        access_expires_at: Set(None),
        profile_id: Set(Some(1)),
        advertiser_id: Set(Some("ad_bench".into())),
        advertiser_name: Set(Some("Bench Brand".into())),
        country_code: Set(Some("US".into())),
        currency_code: Set(Some("USD".into())),
        timezone: Set(Some("UTC".into())),
        marketplace_id: Set(None),
        template_tag: Set(None),
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
    let env = vec![
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
    ];
    Settings::from_sources(None, env).ok()
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
async fn intake(
    kind: &str,
    dir: &std::path::Path,
    address: &str,
    signer: &Arc<Verifier>,
) -> Option<Intake> {
    let app = loads(address, signer, "app");
    let paced = load::run(
        address,
        signer.clone(),
        32,
        StdDuration::from_secs(INTAKE_SECS),
        Some(PACED_RATE),
        "paced",
    );
    let metrics = reqwest::get(address.replace("/webhooks/platform", "/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let sample = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let mean_batch = sample("attribution_bridge_webhook_batch_size_sum ")
        / sample("attribution_bridge_webhook_batch_size_count ");
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
        mean_batch,
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

async fn run(kind: &str) -> Option<Figures3> {
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

    // The store everything belongs to.
    let install = json!({"type": "app.installed", "data": {
        "store": {"id": "st_bench", "name": "Bench", "url": "https://bench.example", "currency": "USD"},
        "program": {"access_token": "gpat_bench", "default_commission": {"type": "percentage", "value": "10"}}}});
    send(&client, &signer, &address, "msg_install", &install).await;

    // The store's roster, 16 deliveries at a time.
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let (client, signer, address) = (client.clone(), signer.clone(), address.clone());
        tasks.spawn(async move {
            for id in (1 + t..=AFFILIATES).step_by(16) {
                let event = json!({"type": "affiliate.created", "data": {"store_id": "st_bench",
                    "affiliate": {"id": id, "name": format!("Affiliate {id}"), "ref_code": format!("a{id}"), "status": "approved"}}});
                send(&client, &signer, &address, &format!("msg_{id}"), &event).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    // `BENCH_ONLY=ingest` skips the intake runs (to profile the ingest alone).
    let intake = match std::env::var("BENCH_ONLY").as_deref() {
        Ok("ingest") => None,
        _ => Some(intake(kind, dir.path(), &address, &signer).await?),
    };

    let conn = db::connect(&settings.database).await.ok()?;
    let today = Utc::now().date_naive();
    let mut rows = Rows::new();
    for a in 1..=AFFILIATES {
        for age in 1..=DAYS {
            let day: NaiveDate = today - Duration::days(age);
            let cents = (a * 37 + age * 101) % 20_000;
            let purchases = (a + age) % 4;
            rows.insert(
                ("ab_st_bench".to_owned(), format!("a{a}"), day),
                Reading::Complete(Figures {
                    clicks: 10 + a % 30,
                    purchases,
                    units: purchases,
                    sales_minor: cents,
                    total_purchases: purchases,
                    total_units: purchases,
                    total_sales_minor: cents,
                    brb_minor: cents / 10,
                    ..Default::default()
                }),
            );
        }
    }
    let store = StoreId::parse("st_bench").ok()?;
    let ctx = Context {
        store: &store,
        campaign_id: "ab_st_bench",
        currency: Currency::parse("USD").ok()?,
        program_currency: Currency::parse("USD").ok()?,
        confirm_absence: Duration::hours(12),
        hold_share: Decimal::ONE,
        commission_since: Utc::now() - Duration::days(1),
        commission: DefaultCommission::from_columns("percentage", "10").ok()?,
        basis: Basis::Promoted,
        today,
        push_after_days: 2,
        from: today - Duration::days(DAYS),
        to: today - Duration::days(1),
        now: Utc::now(),
    };
    let mut timings = vec![];
    for _ in 0..2 {
        let started = Instant::now();
        let txn = conn.begin().await.ok()?;
        ledger::ingest(&txn, &ctx, &rows).await.ok()?;
        txn.commit().await.ok()?;
        timings.push(started.elapsed().as_secs_f64());
    }

    // The merchant's pages of that store, through a merchant session.
    connect_amazon(&conn).await?;
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
    drop_db(cleanup).await;

    Some(Figures3 {
        intake,
        ingest_first_secs: timings[0],
        ingest_again_secs: timings[1],
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
fn intake_table(sqlite: &Figures3, postgres: Option<&Figures3>) {
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
    for (name, f) in [("SQLite", Some(sqlite)), ("PostgreSQL", postgres)] {
        let Some(f) = f.and_then(|f| f.intake.as_ref()) else {
            println!("| {name} | – | (set BENCH_POSTGRES; not BENCH_ONLY) | | |");
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
    }
    println!();
}

#[tokio::main]
async fn main() {
    if std::env::var("BENCH_ONLY").as_deref() == Ok("pushes") {
        return pushes::section().await;
    }
    let sqlite = run("sqlite").await.expect("SQLite benchmark ran");
    let postgres = run("postgres").await;
    let cell = |f: Option<&Figures3>, pick: &dyn Fn(&Figures3) -> String| {
        f.map_or("(set BENCH_POSTGRES)".to_owned(), pick)
    };
    intake_table(&sqlite, postgres.as_ref());
    println!("| measure | SQLite | PostgreSQL |");
    println!("|---|---|---|");
    println!(
        "| sync ingest, {AFFILIATES} affiliates × {DAYS} days, first read | {:.2} s | {} |",
        sqlite.ingest_first_secs,
        cell(postgres.as_ref(), &|f| format!(
            "{:.2} s",
            f.ingest_first_secs
        ))
    );
    println!(
        "| same report again (no change, no write) | {:.2} s | {} |",
        sqlite.ingest_again_secs,
        cell(postgres.as_ref(), &|f| format!(
            "{:.2} s",
            f.ingest_again_secs
        ))
    );
    println!();
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
    pushes::section().await;
}
