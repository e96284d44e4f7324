//! Section 3: paced pushes. 2,000 orders pushed by the real app (its job workers, the push flow,
//! the program client and its pacer) to a program double on a real socket that answers after
//! 20 ms and allows 50 requests a second: fixed 1-second windows counted from the double's first
//! request; a request arriving when 50 were already accepted in its window is answered 429 with
//! `Retry-After: 1`. Once with the app's `program.max_requests_per_sec` at the program's limit
//! (50), once at twice it (100), to show the adaptation. The orders are counted at the double.
//! `BENCH_ONLY=pushes` runs this section alone.
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration as StdDuration, Instant},
};

use attribution_bridge::{
    Application,
    clients::amazon::report::{Figures, Reading, Rows},
    config::Settings,
    db,
    domain::{
        clock::SystemClock, commission::DefaultCommission, currency::Currency, figures::Basis,
        ids::StoreId,
    },
    flows::sync::{
        ledger::{self, Context},
        report::{Held, Report},
    },
    webhooks::verify::Verifier,
};
use chrono::{Duration, Utc};
use rust_decimal::Decimal;
use sea_orm::TransactionTrait;
use secrecy::SecretString;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

/// The program's limit, per 1-second window.
const ALLOWED: u32 = 50;
const ANSWER_AFTER: StdDuration = StdDuration::from_millis(20);
const AFFILIATES: i64 = 1_000;
/// Orders: one per affiliate per day.
const DAYS: i64 = 2;
/// Job loops of the app (more than the 2.5 calls in flight at 100/s × 25 ms need).
const CONCURRENCY: &str = "16";
const SETTINGS: [u32; 2] = [ALLOWED, 2 * ALLOWED];

/// What the double saw.
#[derive(Default)]
struct Seen {
    start: Option<Instant>,
    /// Requests accepted per window (window index from `start`).
    accepted: HashMap<u64, u32>,
    /// 429s per window.
    refused: HashMap<u64, u32>,
    requests: u64,
    created: HashSet<String>,
    last_created: Option<Instant>,
}

#[derive(Clone, Default)]
struct Double(Arc<Mutex<Seen>>);

impl Respond for Double {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let now = Instant::now();
        let mut seen = self.0.lock().unwrap();
        let start = *seen.start.get_or_insert(now);
        let window = now.duration_since(start).as_secs();
        seen.requests += 1;
        let accepted = seen.accepted.entry(window).or_default();
        if *accepted >= ALLOWED {
            *seen.refused.entry(window).or_default() += 1;
            return ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(json!({"code": "429", "details": "Too Many Requests"}))
                .set_delay(ANSWER_AFTER);
        }
        *accepted += 1;
        let body = if req.method == wiremock::http::Method::POST {
            let number = serde_json::from_slice::<serde_json::Value>(&req.body)
                .ok()
                .and_then(|o| o["number"].as_str().map(str::to_owned))
                .unwrap_or_default();
            seen.created.insert(number);
            seen.last_created = Some(now);
            json!({"order": {"id": seen.created.len()}})
        } else if req.url.path().ends_with("/admin/orders") {
            json!({"orders": []})
        } else {
            json!({"affiliates": []})
        };
        ResponseTemplate::new(201)
            .set_body_json(body)
            .set_delay(ANSWER_AFTER)
    }
}

/// One run's figures.
struct Run {
    setting: u32,
    orders: usize,
    secs: f64,
    requests: u64,
    refused: u32,
    /// Windows with a 429, and the most 429s in one window.
    refused_windows: usize,
    most_in_a_window: u32,
    final_pace: u32,
}

fn settings(url: &str, per_sec: u32) -> Option<Settings> {
    let env = [
        ("APP__SERVER__PORT", "0"),
        ("APP__DATABASE__URL", url),
        (
            "APP__SECURITY__ENCRYPTION_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        ("APP__PLATFORM__WEBHOOK_SECRETS", super::SECRET),
        ("APP__WORKERS__ENABLED", "false"),
        ("APP__SANDBOX__ENABLED", "false"),
        ("APP__LOG__LEVEL", "error"),
        ("APP__PROGRAM__ALLOWED_PRIVATE_HOSTS", "127.0.0.1"),
        ("APP__PROGRAM__MAX_REQUESTS_PER_SEC", &per_sec.to_string()),
        ("APP__JOBS__CONCURRENCY", CONCURRENCY),
        ("APP__JOBS__POLL_INTERVAL_MS", "20"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .to_vec();
    Settings::from_sources(None, env).ok()
}

async fn run(per_sec: u32) -> Option<Run> {
    let dir = tempfile::tempdir().ok()?;
    let url = format!("sqlite://{}/pushes.db?mode=rwc", dir.path().display());
    let settings = settings(&url, per_sec)?;
    let double = Double::default();
    let program = MockServer::start().await;
    Mock::given(any())
        .respond_with(double.clone())
        .mount(&program)
        .await;
    let app = Application::build_with_clock(settings.clone(), Arc::new(SystemClock))
        .await
        .ok()?;
    let state = app.state().clone();
    let address = format!("http://127.0.0.1:{}/webhooks/platform", app.port());
    tokio::spawn(app.run_until_stopped());
    let signer = Arc::new(Verifier::new(&[SecretString::from(super::SECRET)], 300).ok()?);
    let client = reqwest::Client::new();

    // The store, its program at the double, and its roster.
    let install = json!({"type": "app.installed", "data": {
        "store": {"id": "st_push", "name": "Pushes", "url": "https://push.example", "currency": "USD"},
        "program": {"access_token": "gpat_push", "api_url": format!("{}/v1", program.uri()),
            "default_commission": {"type": "percentage", "value": "10"}}}});
    super::send(&client, &signer, &address, "msg_install", &install).await;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16 {
        let (client, signer, address) = (client.clone(), signer.clone(), address.clone());
        tasks.spawn(async move {
            for id in (1 + t..=AFFILIATES).step_by(16) {
                let event = json!({"type": "affiliate.created", "data": {"store_id": "st_push",
                    "affiliate": {"id": id, "name": format!("Affiliate {id}"), "ref_code": format!("a{id}"), "status": "approved"}}});
                super::send(&client, &signer, &address, &format!("msg_{id}"), &event).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}

    // A sale per affiliate per day: the ingest writes the orders and queues their pushes.
    let conn = db::connect(&settings.database).await.ok()?;
    let today = Utc::now().date_naive();
    let mut rows = Rows::new();
    for a in 1..=AFFILIATES {
        for age in 3..3 + DAYS {
            let cents = 1_000 + a * 37 + age;
            rows.insert(
                (
                    "ab_st_push".to_owned(),
                    format!("a{a}"),
                    today - Duration::days(age),
                ),
                Reading::Complete(Figures {
                    clicks: 10,
                    purchases: 1,
                    units: 1,
                    sales_minor: cents,
                    total_purchases: 1,
                    total_units: 1,
                    total_sales_minor: cents,
                    ..Default::default()
                }),
            );
        }
    }
    let store = StoreId::parse("st_push").ok()?;
    let ctx = Context {
        store: &store,
        campaign_id: "ab_st_push",
        currency: Currency::parse("USD").ok()?,
        program_currency: Currency::parse("USD").ok()?,
        confirm_absence: Duration::hours(12),
        hold_share: Decimal::ONE,
        commission_since: Utc::now() - Duration::days(30),
        commission: DefaultCommission::from_columns("percentage", "10").ok()?,
        basis: Basis::Promoted,
        today,
        push_after_days: 2,
        from: today - Duration::days(3 + DAYS),
        to: today - Duration::days(1),
        now: Utc::now(),
    };
    let txn = conn.begin().await.ok()?;
    let mut held = Held::default();
    held.add(ctx.campaign_id, rows);
    let summary = ledger::ingest(&txn, &ctx, &mut Report::Held(held))
        .await
        .ok()?;
    txn.commit().await.ok()?;
    let expected = usize::try_from(AFFILIATES * DAYS).ok()?;
    if summary.pushes != expected {
        eprintln!(
            "bench pushes: {} pushes queued, not {expected}",
            summary.pushes
        );
        return None;
    }

    // The app's job workers push them.
    let stop = CancellationToken::new();
    let started = Instant::now();
    let workers: Vec<_> = (0..settings.jobs.concurrency)
        .map(|_| tokio::spawn(state.worker.clone().run(stop.clone())))
        .collect();
    let deadline = started + StdDuration::from_secs(600);
    let done = loop {
        let (created, last) = {
            let seen = double.0.lock().unwrap();
            (seen.created.len(), seen.last_created)
        };
        if created >= expected {
            break last?;
        }
        if Instant::now() > deadline {
            eprintln!("bench pushes: only {created} of {expected} orders after 600 s");
            break last?;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    stop.cancel();
    for w in workers {
        w.await.ok()?;
    }
    let host = format!("127.0.0.1:{}", program.address().port());
    let final_pace = state.deps.program.pacer().per_second(&host);
    conn.close().await.ok();
    let seen = double.0.lock().unwrap();
    Some(Run {
        setting: per_sec,
        orders: seen.created.len(),
        // Until the last order was accepted at the double (its answer follows 20 ms later).
        secs: done.duration_since(started).as_secs_f64(),
        requests: seen.requests,
        refused: seen.refused.values().sum(),
        refused_windows: seen.refused.len(),
        most_in_a_window: seen.refused.values().copied().max().unwrap_or(0),
        final_pace,
    })
}

/// Runs both settings and prints the table.
pub async fn section() {
    let mut runs = vec![];
    for setting in SETTINGS {
        match run(setting).await {
            Some(r) => runs.push(r),
            None => println!("| {setting} | (the run failed) | | | | | |"),
        }
    }
    println!(
        "3. Paced pushes: {} orders to a program double answering after {} ms, allowing {ALLOWED} requests in each fixed 1-second window (429 with Retry-After: 1 above it), {CONCURRENCY} job loops, SQLite.",
        AFFILIATES * DAYS,
        ANSWER_AFTER.as_millis()
    );
    println!();
    println!(
        "| max_requests_per_sec | orders created | seconds | achieved orders/s | allowed/s | share of allowed | requests (all) | 429s | windows with a 429 (most in one) | pace at the end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let achieved = r.orders as f64 / r.secs;
        println!(
            "| {} | {} | {:.1} | {:.1} | {ALLOWED} | {:.0} % | {} | {} | {} ({}) | {}/s |",
            r.setting,
            r.orders,
            r.secs,
            achieved,
            100.0 * achieved / f64::from(ALLOWED),
            r.requests,
            r.refused,
            r.refused_windows,
            r.most_in_a_window,
            r.final_pace
        );
    }
    println!();
}
