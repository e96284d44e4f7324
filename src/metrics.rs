//! `GET /metrics`: Prometheus counters of what the service did, and gauges of what is waiting,
//! read from the database at scrape time so that every instance reports the same backlog.
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
        Self {
            registry,
            webhooks,
            jobs,
            jobs_waiting,
            dead_letters,
            stores_active,
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
    pub async fn render(&self, db: &sea_orm::DatabaseConnection) -> Result<String, sea_orm::DbErr> {
        use entity::{jobs, stores};
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        let waiting = jobs::Entity::find()
            .filter(jobs::Column::Status.is_in([crate::jobs::PENDING, crate::jobs::RUNNING]))
            .count(db)
            .await?;
        let dead = jobs::Entity::find()
            .filter(jobs::Column::Status.eq(crate::jobs::DEAD))
            .count(db)
            .await?;
        let active = stores::Entity::find()
            .filter(stores::Column::Status.eq(crate::store::stores::ACTIVE))
            .count(db)
            .await?;
        self.jobs_waiting
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
        self.dead_letters
            .set(i64::try_from(dead).unwrap_or(i64::MAX));
        self.stores_active
            .set(i64::try_from(active).unwrap_or(i64::MAX));
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
        Ok(out)
    }
}
