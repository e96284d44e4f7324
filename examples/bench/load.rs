//! A closed-loop load generator for the webhook intake, as wrk with one thread: `connections`
//! clients on a thread and runtime of their own, each sending its next signed delivery when the
//! last was answered (or, paced, at its share of a fixed rate), for a fixed time.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use attribution_bridge::webhooks::verify::Verifier;
use chrono::Utc;
use serde_json::json;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Deliveries answered 2xx per second.
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers other than 2xx, and failed requests.
    pub errors: usize,
}

/// A signed `affiliate.updated` of store `st_bench` of about 1 KB, as delivery `id`.
fn delivery(signer: &Verifier, id: &str, affiliate: u64) -> (String, String, Vec<u8>) {
    let event = json!({"type": "affiliate.updated", "data": {"store_id": "st_bench",
        "affiliate": {"id": affiliate, "name": format!("Affiliate {affiliate}"),
            "ref_code": format!("a{affiliate}"), "status": "approved",
            "email": format!("affiliate{affiliate}@example.com"),
            "notes": "x".repeat(800)}}});
    let body = serde_json::to_vec(&event).expect("json");
    let ts = Utc::now().timestamp().to_string();
    let signature = signer.sign(&[id.as_bytes(), ts.as_bytes(), &body]);
    (ts, signature, body)
}

/// Sends deliveries to `url` from `connections` clients for `time`; `rate`: deliveries per second
/// in all, or as fast as answered. Ids start with `run` (unique per run).
pub fn run(
    url: &str,
    signer: Arc<Verifier>,
    connections: usize,
    time: Duration,
    rate: Option<f64>,
    run: &str,
) -> Load {
    let (url, run) = (url.to_owned(), run.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let started = Instant::now();
            let end = started + time;
            let mut tasks = tokio::task::JoinSet::new();
            for c in 0..connections {
                let (url, signer, run) = (url.clone(), signer.clone(), run.clone());
                tasks.spawn(async move {
                    // One client each: one keep-alive connection each.
                    let client = reqwest::Client::builder()
                        .pool_max_idle_per_host(1)
                        .build()
                        .expect("a client");
                    let mut pace = rate.map(|r| {
                        let every = Duration::from_secs_f64(connections as f64 / r);
                        let mut t = tokio::time::interval(every);
                        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                        t
                    });
                    let (mut took, mut errors) = (Vec::new(), 0);
                    let mut i = 0u64;
                    while Instant::now() < end {
                        if let Some(pace) = &mut pace {
                            pace.tick().await;
                        }
                        i += 1;
                        let id = format!("{run}-{c}-{i}");
                        let (ts, signature, body) =
                            delivery(&signer, &id, 1 + (i * 7 + c as u64) % 1000);
                        let sent = Instant::now();
                        let answer = client
                            .post(&url)
                            .header("webhook-id", &id)
                            .header("webhook-timestamp", ts)
                            .header("webhook-signature", signature)
                            .body(body)
                            .send()
                            .await;
                        match answer {
                            Ok(a) if a.status().is_success() => {
                                let _ = a.bytes().await;
                                took.push(sent.elapsed());
                            }
                            _ => errors += 1,
                        }
                    }
                    (took, errors)
                });
            }
            let (mut took, mut errors) = (Vec::new(), 0);
            while let Some(Ok((t, e))) = tasks.join_next().await {
                took.extend(t);
                errors += e;
            }
            let elapsed = started.elapsed().as_secs_f64();
            took.sort();
            let at = |q: f64| {
                took.get(((took.len() as f64 * q) as usize).min(took.len().saturating_sub(1)))
                    .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
            };
            Load {
                per_sec: took.len() as f64 / elapsed,
                p50_ms: at(0.50),
                p99_ms: at(0.99),
                errors,
            }
        })
    })
    .join()
    .expect("the load thread")
}

/// The median run of `runs` by rate.
pub fn median(mut runs: Vec<Load>) -> Load {
    runs.sort_by(|a, b| a.per_sec.total_cmp(&b.per_sec));
    runs[runs.len() / 2]
}
