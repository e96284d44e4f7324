//! Runs jobs one at a time: claim, hand to the kind's handler, record the attempt and its end in
//! one transaction. `run_next` is the step tests drive; `run` loops it in the background.
use std::{sync::Arc, time::Instant};

use chrono::Duration;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio_util::sync::CancellationToken;

use super::{Finish, JobError, Lease, Registry, retry::Schedule};
use crate::{
    domain::clock::SharedClock,
    metrics::Metrics,
    store::jobs::{self as queue, Attempt},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A job ran (whatever its result).
    Completed,
    /// Nothing is due.
    Empty,
}

/// How the worker runs: retry schedule, lease and idle poll.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub schedule: Schedule,
    /// How long a claim lasts unless renewed.
    pub lease: std::time::Duration,
    /// How long an idle loop sleeps before it looks again.
    pub poll_interval: std::time::Duration,
}

/// The job runner: the queue's database, the handlers and the clock.
#[derive(Clone)]
pub struct Worker {
    pub db: DatabaseConnection,
    pub clock: SharedClock,
    pub config: WorkerConfig,
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
}

impl Worker {
    /// Claims one due job and runs it to an end: done, retry later, dead letter or cancelled.
    pub async fn run_next(&self) -> Result<Outcome, DbErr> {
        let now = self.clock.now();
        let lease = Duration::from_std(self.config.lease).unwrap_or(Duration::minutes(5));
        let Some(job) = queue::claim(&self.db, now, now + lease).await? else {
            return Ok(Outcome::Empty);
        };
        let started = Instant::now();
        let handler = self.registry.get(&job.kind).cloned();
        let result = match &handler {
            Some(h) => {
                let lease = Lease {
                    job_id: job.id,
                    attempts: job.attempts,
                };
                h.run(&job, lease).await
            }
            None => Err(JobError::Bug(format!(
                "no handler for jobs of kind {:?}",
                job.kind
            ))),
        };
        let now = self.clock.now();
        let frees_key = handler.as_ref().is_some_and(|h| h.frees_key());
        let (how, outcome) = match &result {
            Ok(_) => (
                Finish::Done {
                    free_key: frees_key,
                },
                "ok",
            ),
            Err(JobError::Cancelled(reason)) => (
                Finish::Cancelled {
                    reason: reason.clone(),
                    free_key: frees_key,
                },
                "cancelled",
            ),
            Err(error) => {
                let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
                match self
                    .config
                    .schedule
                    .next_delay(attempt, error, &mut rand::rng())
                {
                    Some(wait) => (
                        Finish::Retry {
                            at: now + Duration::from_std(wait).unwrap_or(Duration::hours(1)),
                            error: error.to_string(),
                        },
                        "retry",
                    ),
                    None => (
                        Finish::Dead {
                            error: error.to_string(),
                        },
                        "dead",
                    ),
                }
            }
        };
        let elapsed_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let txn = self.db.begin().await?;
        if let Some(h) = &handler {
            h.before_finish(&txn, &job).await?;
        }
        queue::record_attempt(
            &txn,
            Attempt {
                job: &job,
                started_at: now - Duration::milliseconds(elapsed_ms),
                duration_ms: elapsed_ms,
                outcome,
                http_status: result.as_ref().err().and_then(JobError::status),
                detail: Some(match &result {
                    Ok(note) => note.clone(),
                    Err(e) => e.to_string(),
                }),
            },
        )
        .await?;
        if !queue::finish(&txn, &job, &how, now).await? {
            // Our lease expired and another worker has the job now: its outcome counts, not ours.
            txn.rollback().await?;
            tracing::warn!(
                job_id = job.id,
                kind = job.kind,
                "finished after losing the lease; result dropped"
            );
            return Ok(Outcome::Completed);
        }
        if let Some(h) = &handler {
            h.after_finish(&txn, &job, &how, now).await?;
        }
        txn.commit().await?;
        self.metrics.job(&job.kind, outcome);
        match (&how, &result) {
            (_, Err(JobError::Bug(error))) => tracing::error!(
                job_id = job.id,
                kind = job.kind,
                error,
                "job failed on a bug; it went to the dead letters"
            ),
            (Finish::Dead { error }, _) => tracing::error!(
                job_id = job.id,
                kind = job.kind,
                store_id = job.store_id,
                error,
                "job went to the dead letters"
            ),
            (Finish::Retry { at, error }, _) => {
                tracing::warn!(job_id = job.id, kind = job.kind, %at, error, "job will be retried")
            }
            _ => {}
        }
        Ok(Outcome::Completed)
    }

    /// Runs every job that is due now, one after the other.
    pub async fn drain(&self) -> Result<(), DbErr> {
        while self.run_next().await? == Outcome::Completed {}
        Ok(())
    }

    /// Runs due jobs until `stop`, sleeping `poll_interval` when there are none.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            loop {
                if stop.is_cancelled() {
                    return;
                }
                match self.run_next().await {
                    Ok(Outcome::Completed) => continue,
                    Ok(Outcome::Empty) => break,
                    Err(e) => {
                        tracing::error!(error = %e, "worker could not run a job");
                        break;
                    }
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }
}
