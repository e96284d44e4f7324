//! Section 2: the daily sync of one store, `AFFILIATES` × `DAYS` report rows in pages of 5,000,
//! served by an Amazon double over a real socket and run by the app's own `sync` command in a
//! child process (so that its peak RSS is the sync's own): the first read, then the same report
//! again. The ceiling is `serde_json` parsing the same pages.
use std::{
    net::TcpListener,
    process::{Command, Stdio},
    sync::Arc,
    time::Instant,
};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

/// Rows per page: Amazon's largest `count`.
const PAGE_ROWS: usize = 5_000;

/// One sync run, as the app recorded it, and the child process that ran it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Run {
    /// Seconds from the run's start to its end, as `sync_runs` has them.
    pub secs: f64,
    /// The `sync` command's peak resident set, in MB (`VmHWM`).
    pub peak_mb: f64,
}

/// The pages of a report of `affiliates` × `days` ending yesterday, with metrics as strings (as
/// Amazon sends them).
pub fn pages(campaign: &str, affiliates: i64, days: i64, today: NaiveDate) -> Vec<Vec<u8>> {
    let mut rows = Vec::with_capacity(usize::try_from(affiliates * days).unwrap_or(0));
    for a in 1..=affiliates {
        for age in 1..=days {
            let day = today - Duration::days(age);
            let cents = (a * 37 + age * 101) % 20_000;
            let purchases = (a + age) % 4;
            let money = format!("{}.{:02}", cents / 100, cents % 100);
            rows.push(json!({
                "date": day.format("%Y%m%d").to_string(),
                "campaignId": campaign,
                "adGroupId": format!("a{a}"),
                "Click-throughs": (10 + a % 30).to_string(),
                "attributedDetailPageViewsClicks14d": "4",
                "attributedAddToCartClicks14d": "2",
                "attributedPurchases14d": purchases.to_string(),
                "unitsSold14d": purchases.to_string(),
                "attributedSales14d": money,
                "attributedTotalPurchases14d": purchases.to_string(),
                "totalUnitsSold14d": purchases.to_string(),
                "totalAttributedSales14d": money,
                "brb_bonus_amount": format!("{}.{:02}", cents / 1000, (cents / 10) % 100),
            }));
        }
    }
    let count = rows.len().div_ceil(PAGE_ROWS);
    rows.chunks(PAGE_ROWS)
        .enumerate()
        .map(|(i, chunk)| {
            let cursor = if i + 1 < count {
                (i + 1).to_string()
            } else {
                String::new()
            };
            serde_json::to_vec(&json!({"reports": chunk, "size": chunk.len(), "cursorId": cursor}))
                .expect("json")
        })
        .collect()
}

/// Seconds `serde_json` takes to parse every page into `Value`s: issue 11's ceiling. The app's own
/// page reader (borrowed typed fields) is faster than it.
pub fn parse_ceiling(pages: &[Vec<u8>]) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let mut rows = 0;
        for page in pages {
            let v: Value = serde_json::from_slice(page).expect("a page");
            rows += v["reports"].as_array().map_or(0, Vec::len);
        }
        assert!(rows > 0);
        best = best.min(started.elapsed().as_secs_f64());
    }
    best
}

async fn report(pages: web::Data<Arc<Vec<Vec<u8>>>>, body: web::Json<Value>) -> HttpResponse {
    let page = body
        .get("cursorId")
        .and_then(Value::as_str)
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    match pages.get(page) {
        Some(p) => HttpResponse::Ok()
            .content_type("application/json")
            .body(p.clone()),
        None => HttpResponse::BadRequest().json(json!({"code": "400", "details": "no such page"})),
    }
}

/// The Amazon Ads API (report pages by cursor) and a program that takes every order, on one
/// port; returns its base URL.
pub fn double(pages: Vec<Vec<u8>>) -> String {
    let pages = web::Data::new(Arc::new(pages));
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = listener.local_addr().expect("an address").port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(pages.clone())
            .app_data(web::JsonConfig::default().limit(1 << 20))
            .route("/attribution/report", web::post().to(report))
            .route(
                "/admin/orders",
                web::get().to(|| async { HttpResponse::Ok().json(json!({"orders": []})) }),
            )
            .route(
                "/admin/orders",
                web::post().to(|| async { HttpResponse::Ok().json(json!({"order": {"id": 1}})) }),
            )
    })
    .workers(1)
    .listen(listener)
    .expect("listening")
    .run();
    tokio::spawn(server);
    format!("http://127.0.0.1:{port}")
}

/// Runs `attribution-bridge sync --store STORE` (this very executable, as the app's CLI: see
/// `child_main`) with `env`; returns its peak resident set in MB.
pub fn run_child(store: &str, env: &[(String, String)]) -> f64 {
    let exe = std::env::current_exe().expect("the bench's path");
    // `BENCH_WRAP="perf record -g --"` (or `heaptrack`) runs the child under that command.
    let wrap = std::env::var("BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut cmd = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    let out = cmd
        .args(["sync", "--store", store, "--wait", "600"])
        .env("BENCH_CHILD", "1")
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("the sync command ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sync failed: {stderr}");
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("bench_peak_kb=")?.trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// This process's peak resident set (`VmHWM`), in kB.
pub fn peak_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmHWM:")?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse()
                    .ok()
            })
        })
        .unwrap_or(0)
}
