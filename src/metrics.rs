//! `GET /metrics`: Prometheus counters of what the service did, and gauges of what is waiting,
//! read from the database at scrape time so that every instance reports the same backlog.
use sea_orm::{DatabaseConnection, DbErr};

use crate::store::{JobStatus, jobs, ledger, stores};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobOutcome {
    pub kind: String,
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    /// Platform webhooks by answer: processed, ignored, duplicate, unauthorized, malformed, unavailable.
    pub webhooks: Family<Outcome, Counter>,
    /// Job attempts by kind and outcome: ok, retry, dead, cancelled.
    pub jobs: Family<JobOutcome, Counter>,
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
        Self {
            registry,
            webhooks,
            jobs,
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

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("database: {0}")]
    Db(#[from] DbErr),
    #[error("encoding: {0}")]
    Encode(#[from] std::fmt::Error),
}
