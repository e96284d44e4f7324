//! `GET /metrics`: Prometheus counters of what the service did (webhooks, jobs, HTTP requests,
//! upstream calls, report rows, orders), and gauges of what is waiting, read from the database at
//! scrape time so that every instance reports the same backlog. No label carries store data: HTTP
//! requests are labelled by their route's pattern, upstream calls by host.
pub mod requests;

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbErr};

use crate::{
    clients::http::{CallObserver, CallOutcome, SharedObserver},
    store::{JobStatus, jobs, ledger, stores},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

pub use requests::RequestLabels;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobOutcome {
    pub kind: String,
    pub outcome: String,
}

/// One upstream (`name:port`) and how a try at it ended ([`CallOutcome::as_str`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub host: String,
    pub outcome: String,
}

/// One program host (`name:port`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

/// What became of an order, as `attribution_bridge_orders_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// A push created the order at the program (or found the one an unanswered create made).
    Created,
    /// A push changed the order's amounts or status at the program.
    Updated,
    /// A sync held the order's decrease for the merchant (counted once per held reading).
    Held,
    /// The order's push went to the dead letters.
    Dead,
}

impl OrderEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Held => "held",
            Self::Dead => "dead",
        }
    }
}

/// The request latency histogram's constructor: buckets from 5 ms to about 20 s.
type Buckets = fn() -> Histogram;

pub struct Metrics {
    registry: Registry,
    /// Platform webhooks by answer: processed, ignored, duplicate, unauthorized, malformed, unavailable.
    pub webhooks: Family<Outcome, Counter>,
    /// Job attempts by kind and outcome: ok, retry, dead, cancelled.
    pub jobs: Family<JobOutcome, Counter>,
    /// HTTP request latency in seconds, by route pattern, method and status class.
    pub requests: Family<RequestLabels, Histogram, Buckets>,
    /// Tries at upstreams (Amazon, programs) by host and outcome; a retry is a try of its own.
    pub upstream: Family<UpstreamLabels, Counter>,
    /// Requests a second each program host is paced at now (lowered after a 429).
    pub program_pace: Family<HostLabels, Gauge>,
    /// Rows of Amazon's report read, over every page of every sync.
    pub report_rows: Counter,
    /// Orders by [`OrderEvent`].
    pub orders: Family<Outcome, Counter>,
    /// Webhook group commits: deliveries per batch.
    pub webhook_batch_size: Histogram,
    /// Batches that failed together and were committed one delivery at a time.
    pub webhook_batches_split: Counter,
    pub jobs_waiting: Gauge,
    pub dead_letters: Gauge,
    pub stores_active: Gauge,
    /// Decreases held for merchants (DESIGN §5).
    pub held_decreases: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("attribution_bridge");
        let webhooks = Family::<Outcome, Counter>::default();
        let jobs = Family::<JobOutcome, Counter>::default();
        let (jobs_waiting, dead_letters, stores_active) =
            (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register(
            "webhooks",
            "Platform webhook deliveries by answer",
            webhooks.clone(),
        );
        registry.register(
            "job_attempts",
            "Job attempts by kind and outcome",
            jobs.clone(),
        );
        registry.register(
            "jobs_waiting",
            "Jobs pending or running",
            jobs_waiting.clone(),
        );
        registry.register(
            "dead_letters",
            "Jobs that failed for good",
            dead_letters.clone(),
        );
        registry.register("stores_active", "Installed stores", stores_active.clone());
        let held_decreases = Gauge::default();
        registry.register(
            "held_decreases",
            "Order decreases held for the merchant to apply or discard",
            held_decreases.clone(),
        );
        let requests = Family::new_with_constructor(requests::histogram as Buckets);
        registry.register_with_unit(
            "http_request_duration",
            "HTTP requests served, by route pattern, method and status class",
            Unit::Seconds,
            requests.clone(),
        );
        let upstream = Family::<UpstreamLabels, Counter>::default();
        registry.register(
            "upstream_calls",
            "Tries at Amazon and the programs, by host and outcome",
            upstream.clone(),
        );
        let program_pace = Family::<HostLabels, Gauge>::default();
        registry.register(
            "program_pace_per_second",
            "Requests a second each program host is paced at now (lowered after a 429)",
            program_pace.clone(),
        );
        let report_rows = Counter::default();
        registry.register(
            "report_rows_read",
            "Rows of Amazon's report read by syncs",
            report_rows.clone(),
        );
        let orders = Family::<Outcome, Counter>::default();
        registry.register(
            "orders",
            "Orders created and updated at the program, held for the merchant, or dead",
            orders.clone(),
        );
        let webhook_batch_size = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 9),
        );
        registry.register(
            "webhook_batch_size",
            "Verified webhook deliveries committed per transaction",
            webhook_batch_size.clone(),
        );
        let webhook_batches_split = Counter::default();
        registry.register(
            "webhook_batches_split",
            "Webhook batches that failed together and were committed one delivery at a time",
            webhook_batches_split.clone(),
        );
        Self {
            registry,
            webhooks,
            webhook_batch_size,
            webhook_batches_split,
            jobs,
            requests,
            upstream,
            program_pace,
            report_rows,
            orders,
            jobs_waiting,
            dead_letters,
            stores_active,
            held_decreases,
        }
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub fn webhook(&self, outcome: &str) {
        self.webhooks
            .get_or_create(&Outcome {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn job(&self, kind: &str, outcome: &str) {
        self.jobs
            .get_or_create(&JobOutcome {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// One group commit of `size` deliveries; `split`: it failed together and was committed one
    /// delivery at a time.
    pub fn webhook_batch(&self, size: usize, split: bool) {
        self.webhook_batch_size.observe(size as f64);
        if split {
            self.webhook_batches_split.inc();
        }
    }

    /// `n` more rows of Amazon's report read.
    pub fn report_rows_read(&self, n: usize) {
        self.report_rows
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// `n` more orders to which `event` happened.
    pub fn orders(&self, event: OrderEvent, n: usize) {
        if n == 0 {
            return;
        }
        self.orders
            .get_or_create(&Outcome {
                outcome: event.as_str().to_owned(),
            })
            .inc_by(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// The observer the upstream clients tell each try to: it counts them here.
    pub fn upstream_observer(&self) -> SharedObserver {
        Arc::new(UpstreamCalls(
            self.upstream.clone(),
            self.program_pace.clone(),
        ))
    }

    /// The OpenMetrics text, with the gauges refreshed from the database.
    pub async fn render(&self, db: &DatabaseConnection) -> Result<String, MetricsError> {
        let waiting = jobs::count(db, &[JobStatus::Pending, JobStatus::Running]).await?;
        let dead = jobs::count(db, &[JobStatus::Dead]).await?;
        let active = stores::count_active(db).await?;
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.jobs_waiting.set(gauge(waiting));
        self.dead_letters.set(gauge(dead));
        self.stores_active.set(gauge(active));
        self.held_decreases
            .set(gauge(ledger::count_held(db).await?));
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Counts each try at an upstream in `attribution_bridge_upstream_calls_total{host,outcome}`, and
/// shows each program host's pace in `attribution_bridge_program_pace_per_second{host}`.
#[derive(Debug)]
struct UpstreamCalls(Family<UpstreamLabels, Counter>, Family<HostLabels, Gauge>);

impl CallObserver for UpstreamCalls {
    fn observe(&self, host: &str, outcome: CallOutcome) {
        self.0
            .get_or_create(&UpstreamLabels {
                host: host.to_owned(),
                outcome: outcome.as_str().to_owned(),
            })
            .inc();
    }

    fn paced(&self, host: &str, per_second: u32) {
        self.1
            .get_or_create(&HostLabels {
                host: host.to_owned(),
            })
            .set(i64::from(per_second));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("encoding: {0}")]
    Encode(#[from] std::fmt::Error),
}
