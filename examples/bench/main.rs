//! Benchmarks: `cargo run --release --example bench` (add BENCH_POSTGRES=postgres://… for the
//! PostgreSQL column). Prints figures side by side; nothing here is asserted.
//!
//! - webhook intake: signed `affiliate.created` deliveries through the real HTTP server, 16 at a time;
//! - daily sync ingest: one store, 1,000 affiliates × 60 days (60,000 report rows) into figures and
//!   the ledger, first read, then the same report again (a no-op);
//! - the merchant's pages of that store (goal: under 200 ms each), beside the time of the static
//!   stylesheet through the same server, which is the floor of any request.
use std::{sync::Arc, time::Instant};

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
const WEBHOOKS: usize = 2_000;
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

struct Figures3 {
    webhooks_per_sec: f64,
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

async fn run(kind: &str) -> Option<Figures3> {
    let dir = tempfile::tempdir().ok()?;
    let (url, cleanup) = fresh_db(kind, dir.path()).await?;
    let env = vec![
        ("APP__SERVER__PORT".to_owned(), "0".to_owned()),
        ("APP__DATABASE__URL".to_owned(), url.clone()),
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
    let settings = Settings::from_sources(None, env).ok()?;
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

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = WEBHOOKS / 16;
    for t in 0..16 {
        let (client, signer, address) = (client.clone(), signer.clone(), address.clone());
        tasks.spawn(async move {
            for i in 0..per_task {
                let id = (t * per_task + i + 1) as i64;
                let event = json!({"type": "affiliate.created", "data": {"store_id": "st_bench",
                    "affiliate": {"id": id, "name": format!("Affiliate {id}"), "ref_code": format!("a{id}"), "status": "approved"}}});
                send(&client, &signer, &address, &format!("msg_{id}"), &event).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let webhooks_per_sec = WEBHOOKS as f64 / started.elapsed().as_secs_f64();

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
    if let Some((admin, name)) = cleanup
        && let Ok(admin) = Database::connect(&admin).await
    {
        let _ = admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .await;
    }

    Some(Figures3 {
        webhooks_per_sec,
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

#[tokio::main]
async fn main() {
    let sqlite = run("sqlite").await.expect("SQLite benchmark ran");
    let postgres = run("postgres").await;
    let cell = |f: Option<&Figures3>, pick: &dyn Fn(&Figures3) -> String| {
        f.map_or("(set BENCH_POSTGRES)".to_owned(), pick)
    };
    println!("| measure | SQLite | PostgreSQL |");
    println!("|---|---|---|");
    println!(
        "| webhook intake, signed, 16 concurrent ({WEBHOOKS} deliveries) | {:.0}/s | {} |",
        sqlite.webhooks_per_sec,
        cell(postgres.as_ref(), &|f| format!(
            "{:.0}/s",
            f.webhooks_per_sec
        ))
    );
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
}
