//! Runs jobs one at a time. `run_next` is the step tests drive; `run` loops it in the background.
use std::time::Instant;

use chrono::Duration;
use sea_orm::TransactionTrait;
use tokio_util::sync::CancellationToken;

use crate::{
    domain::ids::StoreId,
    flows::{scheduler, sync},
    jobs::{Attempt, Finish, JobError, Task, claim, finish, record_attempt},
    state::AppState,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A job ran (whatever its result).
    Completed,
    /// Nothing is due.
    Empty,
}

/// Claims one due job and runs it to an end: done, retry later, dead letter or cancelled.
pub async fn run_next(app: &AppState) -> Result<Outcome, sea_orm::DbErr> {
    let now = app.clock.now();
    let lease = Duration::seconds(i64::try_from(app.settings.jobs.lease_secs).unwrap_or(300));
    let Some(job) = claim(&app.db, now, now + lease).await? else {
        return Ok(Outcome::Empty);
    };
    let started = Instant::now();
    let task: Result<Task, _> = serde_json::from_str(&job.payload);
    let store = StoreId::parse(&job.store_id);
    let result = match (&task, &store) {
        (Ok(Task::SyncStore { from, to, trigger }), Ok(store)) => {
            let lease = sync::Lease {
                job_id: job.id,
                attempts: job.attempts,
            };
            sync::run(app, store, *from, *to, trigger, Some(lease))
                .await
                .map(|o| {
                    format!(
                        "{} rows, {} changes, {} pushes",
                        o.rows, o.changes, o.pushes_enqueued
                    )
                })
        }
        (Ok(Task::PushOrder { affiliate_id, day }), Ok(store)) => {
            crate::flows::push::run(app, store, *affiliate_id, *day)
                .await
                .map(|p| format!("{p:?}"))
        }
        _ => Err(JobError::Failed(super::retry::Failure::Permanent {
            status: None,
            detail: format!(
                "unreadable job {}: {}",
                job.id,
                job.payload.chars().take(200).collect::<String>()
            ),
        })),
    };
    let now = app.clock.now();
    let (how, outcome, status, detail) = match &result {
        Ok(note) => (Finish::Done, "ok", None, Some(note.clone())),
        Err(JobError::Cancelled(reason)) => (
            Finish::Cancelled {
                reason: reason.clone(),
            },
            "cancelled",
            None,
            Some(reason.clone()),
        ),
        Err(JobError::Failed(failure)) => {
            let attempt = u32::try_from(job.attempts).unwrap_or(u32::MAX);
            let wait = app
                .settings
                .jobs
                .schedule()
                .next_delay(attempt, failure, &mut rand::rng());
            let error = failure.detail().to_owned();
            match wait {
                Some(wait) => {
                    let at = now + Duration::from_std(wait).unwrap_or(Duration::hours(1));
                    (
                        Finish::Retry {
                            at,
                            error: error.clone(),
                        },
                        "retry",
                        failure.status(),
                        Some(error),
                    )
                }
                None => (
                    Finish::Dead {
                        error: error.clone(),
                    },
                    "dead",
                    failure.status(),
                    Some(error),
                ),
            }
        }
    };
    let txn = app.db.begin().await?;
    // A push's order is locked first (before the job row), so that a sync updating the same
    // order either finishes before us (and we see its version) or after (and finds the key free).
    if let (Ok(Task::PushOrder { affiliate_id, day }), Ok(store)) = (&task, &store) {
        crate::flows::push::lock_order(&txn, store, *affiliate_id, *day).await?;
    }
    record_attempt(
        &txn,
        Attempt {
            job: &job,
            started_at: now
                - Duration::milliseconds(i64::try_from(started.elapsed().as_millis()).unwrap_or(0)),
            duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            outcome,
            http_status: status,
            detail,
        },
    )
    .await?;
    if !finish(&txn, &job, &how, now).await? {
        // Our lease expired and another worker has the job now: its outcome counts, not ours.
        txn.rollback().await?;
        tracing::warn!(
            job_id = job.id,
            kind = job.kind,
            "finished after losing the lease; result dropped"
        );
        return Ok(Outcome::Completed);
    }
    match (&how, &task, &store) {
        (Finish::Dead { error }, Ok(Task::PushOrder { affiliate_id, day }), Ok(store)) => {
            crate::flows::push::mark_dead(&txn, store, *affiliate_id, *day, error, now).await?;
        }
        (Finish::Done, Ok(Task::PushOrder { affiliate_id, day }), Ok(store)) => {
            crate::flows::push::requeue_if_stale(&txn, store, *affiliate_id, *day, now).await?;
        }
        _ => {}
    }
    txn.commit().await?;
    app.metrics.job(&job.kind, outcome);
    match (&how, &task, &store) {
        (Finish::Dead { error }, Ok(Task::PushOrder { affiliate_id, day }), Ok(store)) => {
            tracing::error!(store_id = %store, affiliate_id, %day, error, "push went to the dead letters");
        }

        (Finish::Dead { error }, _, _) => tracing::error!(
            job_id = job.id,
            kind = job.kind,
            error,
            "job went to the dead letters"
        ),
        (Finish::Retry { at, error }, _, _) => {
            tracing::warn!(job_id = job.id, kind = job.kind, %at, error, "job will be retried")
        }
        _ => {}
    }
    Ok(Outcome::Completed)
}

/// Runs due jobs until `stop`; between them, enqueues the daily syncs that came due.
pub async fn run(app: AppState, stop: CancellationToken) {
    let idle = std::time::Duration::from_millis(app.settings.jobs.poll_interval_ms);
    let mut scheduled: Option<std::time::Instant> = None;
    loop {
        // Days change by the minute at most: no need to look more often.
        if scheduled.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(60)) {
            scheduled = Some(std::time::Instant::now());
            if let Err(e) = scheduler::enqueue_due(&app, app.clock.now()).await {
                tracing::error!(error = %e, "scheduler failed");
            }
        }

        loop {
            if stop.is_cancelled() {
                return;
            }
            match run_next(&app).await {
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
            () = tokio::time::sleep(idle) => {}
        }
    }
}
