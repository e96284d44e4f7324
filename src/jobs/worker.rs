//! Runs jobs one at a time: claim, hand to the kind's handler while a heartbeat renews the claim,
//! record the attempt and its end in one transaction. `run_next` is the step tests drive; `run`
//! loops it in the background.
use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{Finish, Job, JobError, Lease, Registry, retry::Schedule};
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

/// How the worker runs: retry schedule, lease, heartbeat and idle poll.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub schedule: Schedule,
    /// How long a claim lasts unless renewed.
    pub lease: std::time::Duration,
    /// How often a running job's claim is renewed (a fraction of `lease`).
    pub heartbeat: std::time::Duration,
    /// How long an idle loop sleeps before it looks again.
    pub poll_interval: std::time::Duration,
}

/// What makes a running job's worker renew its claim: a timer, or (tests) beats sent by hand.
pub struct Heartbeat(Beats);

enum Beats {
    Every(tokio::time::Interval),
    /// Each message renews once and is answered with whether the claim is still ours.
    Manual(mpsc::UnboundedReceiver<oneshot::Sender<bool>>),
}

impl Heartbeat {
    /// A renewal every `period`, the first one `period` after the claim.
    pub fn every(period: std::time::Duration) -> Self {
        let period = period.max(std::time::Duration::from_millis(1));
        let mut timer = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(Beats::Every(timer))
    }

    /// A heartbeat that beats when the returned handle says so: deterministic tests.
    pub fn manual() -> (Self, HeartbeatHandle) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self(Beats::Manual(rx)), HeartbeatHandle(tx))
    }

    /// Waits for the next beat; `Some(answer)` when someone waits to hear how it went.
    async fn next(&mut self) -> Option<oneshot::Sender<bool>> {
        match &mut self.0 {
            Beats::Every(timer) => {
                timer.tick().await;
                None
            }
            Beats::Manual(beats) => match beats.recv().await {
                Some(answer) => Some(answer),
                // The handle is gone: no beat ever comes again.
                None => std::future::pending().await,
            },
        }
    }
}

/// Makes a manual [`Heartbeat`] beat.
#[derive(Clone)]
pub struct HeartbeatHandle(mpsc::UnboundedSender<oneshot::Sender<bool>>);

impl HeartbeatHandle {
    /// One beat: once the worker has claimed a job, its claim is renewed for a full lease from
    /// the clock's now. Returns whether the claim was still the worker's (false: it was lost, or
    /// the worker is not running a job any more).
    pub async fn beat(&self) -> bool {
        let (answer, heard) = oneshot::channel();
        if self.0.send(answer).is_err() {
            return false;
        }
        heard.await.unwrap_or(false)
    }
}

/// Whether a claim last renewed (or made) at `renewed_at` has run out by `now` for its worker:
/// from the end of its lease on, another worker may claim the job, so a worker that could not
/// renew it since must stop rather than run on beside that one.
fn lease_lapsed(renewed_at: DateTime<Utc>, now: DateTime<Utc>, lease: Duration) -> bool {
    now - renewed_at >= lease
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
    fn lease(&self) -> Duration {
        Duration::from_std(self.config.lease).unwrap_or(Duration::seconds(30))
    }

    /// Claims one due job and runs it to an end: done, retry later, dead letter or cancelled.
    /// While it runs, its claim is renewed every `heartbeat`.
    pub async fn run_next(&self) -> Result<Outcome, DbErr> {
        self.run_next_with(Heartbeat::every(self.config.heartbeat))
            .await
    }

    /// Extends a running claim by a full lease from now. False when another worker has the job.
    pub async fn renew(&self, lease: &Lease) -> Result<bool, DbErr> {
        let until = self.clock.now() + self.lease();
        queue::renew(&self.db, lease.job_id, lease.attempts, until).await
    }

    /// Whether the claim has run out for this worker: neither the heartbeat's last renewal (at
    /// `renewed_at`) nor the handler's transaction ([`Lease::renewed_until`]) keeps it now.
    fn lapsed(&self, lease: &Lease, renewed_at: DateTime<Utc>) -> bool {
        let now = self.clock.now();
        lease_lapsed(renewed_at, now, self.lease())
            && lease.renewed_until().is_none_or(|until| now >= until)
    }

    /// Runs the handler while `heartbeat` renews the claim. `None` when the claim was lost: the
    /// handler is stopped there, since the worker that took the job over runs it now. A claim
    /// that could not be renewed for a full lease since `claimed_at` (the database out of reach)
    /// counts as lost too: another worker may have taken the job by then. While a transaction
    /// of the handler holds the claim ([`Lease::hold`]), the heartbeat leaves it alone: no worker
    /// can claim the job meanwhile, and the transaction renews the claim before it ends.
    async fn run_beating(
        &self,
        job: &Job,
        lease: Lease,
        claimed_at: DateTime<Utc>,
        handler: &dyn super::Handler,
        mut heartbeat: Heartbeat,
    ) -> Option<Result<String, JobError>> {
        let beating = async {
            // When the claim last ran for a full lease from: the claim, then each renewal.
            let mut renewed_at = claimed_at;
            loop {
                let answer = heartbeat.next().await;
                let asked_at = self.clock.now();
                let renewed = if lease.in_transaction() {
                    None
                } else {
                    Some(self.renew(&lease).await)
                };
                let held = match renewed {
                    // The handler's transaction holds the claim, and renews it before it ends
                    // (if it commits: the renewals of a rolled-back one do not count).
                    None => true,
                    Some(Ok(true)) => {
                        renewed_at = asked_at;
                        true
                    }
                    Some(Ok(false)) => false,
                    // On SQLite the renewal waited for the one connection, which the handler's
                    // transaction took meanwhile: that transaction holds the claim now.
                    Some(Err(_)) if lease.in_transaction() => true,
                    Some(Err(e)) if self.lapsed(&lease, renewed_at) => {
                        // No renewal for a full lease: another worker may run the job now.
                        tracing::warn!(
                            job_id = job.id,
                            error = %e,
                            since = %renewed_at,
                            "could not renew a job's lease for a full lease; giving the job up"
                        );
                        false
                    }
                    Some(Err(e)) => {
                        // The database blinked: the lease still runs; the next beat tries again.
                        tracing::warn!(job_id = job.id, error = %e, "could not renew a job's lease");
                        true
                    }
                };
                if let Some(answer) = answer {
                    let _ = answer.send(held);
                }
                if !held {
                    return;
                }
            }
        };
        tokio::select! {
            result = handler.run(job, lease.clone()) => Some(result),
            () = beating => None,
        }
    }

    /// As [`run_next`](Self::run_next), with the heartbeat given (tests beat by hand).
    pub async fn run_next_with(&self, heartbeat: Heartbeat) -> Result<Outcome, DbErr> {
        let now = self.clock.now();
        let Some(job) = queue::claim(&self.db, now, now + self.lease()).await? else {
            return Ok(Outcome::Empty);
        };
        let started = Instant::now();
        let handler = self.registry.get(&job.kind).cloned();
        let lease = Lease::new(job.id, job.attempts);
        let result = match &handler {
            Some(h) => match self
                .run_beating(&job, lease, now, h.as_ref(), heartbeat)
                .await
            {
                Some(result) => result,
                None => {
                    tracing::warn!(
                        job_id = job.id,
                        kind = job.kind,
                        "lost the job's lease (taken over, or not renewed for a full lease); stopped it"
                    );
                    return Ok(Outcome::Completed);
                }
            },
            None => Err(JobError::Bug(format!(
                "no handler for jobs of kind {:?}",
                job.kind
            ))),
        };
        let now = self.clock.now();
        let (mut how, outcome) = match &result {
            Ok(_) => (Finish::Done { free_key: false }, "ok"),
            Err(JobError::Cancelled(reason)) => (
                Finish::Cancelled {
                    reason: reason.clone(),
                    free_key: false,
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
                            free_key: false,
                        },
                        "dead",
                    ),
                }
            }
        };
        let frees_key = handler.as_ref().is_some_and(|h| h.frees_key(&job, &how));
        how.set_free_key(frees_key);
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
            (Finish::Dead { error, .. }, _) => tracing::error!(
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

    /// Runs due jobs until `stop`, sleeping `poll_interval` when there are none. A stop cuts off
    /// the job running then, as a crash would: its transaction rolls back, its claim stays until
    /// the lease runs out and another worker takes the job up (a sync's run then reads
    /// "abandoned"). Waiting for it instead could outlast any shutdown grace period.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            loop {
                let ran = tokio::select! {
                    biased;
                    () = stop.cancelled() => return,
                    ran = self.run_next() => ran,
                };
                match ran {
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::lease_lapsed;

    #[test]
    fn a_claim_not_renewed_for_a_full_lease_has_lapsed_not_before() {
        let renewed = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
        let lease = Duration::seconds(30);
        assert!(!lease_lapsed(renewed, renewed, lease));
        assert!(!lease_lapsed(
            renewed,
            renewed + Duration::milliseconds(29_999),
            lease
        ));
        assert!(lease_lapsed(renewed, renewed + lease, lease));
        assert!(lease_lapsed(renewed, renewed + Duration::hours(1), lease));
    }
}
