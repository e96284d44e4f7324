//! The job queue's rows: written in the same transaction as the work that creates them, claimed
//! with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one statement on SQLite), expired leases
//! reclaimed, every attempt recorded. The queue knows kinds and payloads, not what they mean.
use chrono::{DateTime, Utc};
use entity::{job_attempts, jobs};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait, ExprTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select, Statement,
    sea_query::{Expr, OnConflict},
};

use super::{BATCH, JobStatus, StoreScoped};
use crate::domain::ids::StoreId;

/// A job row.
pub use entity::jobs::Model as Job;

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub store: StoreId,
    /// The handler that runs it.
    pub kind: &'static str,
    /// The handler's own JSON.
    pub payload: String,
    /// While a job with this key is in the table with the key, no second one is added.
    pub dedupe_key: Option<String>,
    pub run_at: DateTime<Utc>,
}

impl NewJob {
    fn row(&self, now: DateTime<Utc>) -> jobs::ActiveModel {
        jobs::ActiveModel {
            kind: Set(self.kind.to_owned()),
            store_id: Set(self.store.as_str().to_owned()),
            payload: Set(self.payload.clone()),
            dedupe_key: Set(self.dedupe_key.clone()),
            status: Set(JobStatus::Pending),
            attempts: Set(0),
            run_at: Set(self.run_at),
            lease_until: Set(None),
            last_error: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
    }
}

/// Adds jobs in batches, skipping those whose `dedupe_key` is taken. Returns how many were added.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    jobs: &[NewJob],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut added = 0;
    for chunk in jobs.chunks(BATCH) {
        added += jobs::Entity::insert_many(chunk.iter().map(|j| j.row(now)))
            .on_conflict(
                OnConflict::column(jobs::Column::DedupeKey)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(added)
}

/// Claims the next due job (or one whose lease expired) and leases it until `lease_until`.
pub async fn claim(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<Option<Job>, DbErr> {
    let backend = conn.get_database_backend();
    let lock = if backend == DbBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let p = |i: usize| {
        if backend == DbBackend::Postgres {
            format!("${i}")
        } else {
            "?".to_owned()
        }
    };
    let sql = format!(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = {lease}, updated_at = {now1} \
         WHERE id = (SELECT id FROM jobs \
                     WHERE (status = 'pending' AND run_at <= {now2}) OR (status = 'running' AND lease_until < {now3}) \
                     ORDER BY run_at, id LIMIT 1 {lock}) \
         RETURNING *",
        lease = p(1),
        now1 = p(2),
        now2 = p(3),
        now3 = p(4),
    );
    let stmt = Statement::from_sql_and_values(
        backend,
        sql,
        [lease_until.into(), now.into(), now.into(), now.into()],
    );
    jobs::Entity::find().from_raw_sql(stmt).one(conn).await
}

/// How a job ended this time. `free_key` lets the same key be queued again (a push's next
/// version, the next manual sync).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Done {
        free_key: bool,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    /// A dead letter. A push's keeps its key, so that a retried dead letter and a new job of the
    /// same key never run side by side.
    Dead {
        error: String,
        free_key: bool,
    },
    Cancelled {
        reason: String,
        free_key: bool,
    },
}

impl Finish {
    /// Sets whether the end frees the job's key (a retry never does: the job is still waiting).
    pub fn set_free_key(&mut self, free: bool) {
        match self {
            Self::Done { free_key }
            | Self::Dead { free_key, .. }
            | Self::Cancelled { free_key, .. } => {
                *free_key = free;
            }
            Self::Retry { .. } => {}
        }
    }
}

/// Records the end of an attempt. Only the claim that ran is touched: the row must still be
/// `running` with this attempt's count (a worker whose lease expired and was re-claimed writes
/// nothing). Returns whether this claim was still the job's.
pub async fn finish(
    conn: &impl ConnectionTrait,
    job: &Job,
    how: &Finish,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let (status, run_at, error, free_key) = match how {
        Finish::Done { free_key } => (JobStatus::Done, job.run_at, None, *free_key),
        Finish::Retry { at, error } => (JobStatus::Pending, *at, Some(error.clone()), false),
        Finish::Dead { error, free_key } => {
            (JobStatus::Dead, job.run_at, Some(error.clone()), *free_key)
        }
        Finish::Cancelled { reason, free_key } => (
            JobStatus::Cancelled,
            job.run_at,
            Some(reason.clone()),
            *free_key,
        ),
    };
    let mut update = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(status))
        .col_expr(jobs::Column::RunAt, Expr::value(run_at))
        .col_expr(
            jobs::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(jobs::Column::LastError, Expr::value(error))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now));
    if free_key {
        update = update.col_expr(jobs::Column::DedupeKey, Expr::value(Option::<String>::None));
    }
    let res = update
        .filter(the_claim(job.id, job.attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// The job while its claim `attempts` runs: the rows a claim's renewal, its check and its end
/// may touch, none once another worker claimed the job again or it ended. The id and count are
/// values, or columns of an outer query (`runs::abandon`).
pub(super) fn the_claim(job_id: impl Into<Expr>, attempts: impl Into<Expr>) -> Condition {
    Condition::all()
        .add(Expr::col((jobs::Entity, jobs::Column::Id)).eq(job_id))
        .add(jobs::Column::Status.eq(JobStatus::Running))
        .add(Expr::col((jobs::Entity, jobs::Column::Attempts)).eq(attempts))
}

/// Extends a running claim to `until`, never shortening it: a renewal that waited (for a
/// connection, a lock) lands after a later one without moving the lease back. False when the
/// claim was lost.
pub async fn renew(
    conn: &impl ConnectionTrait,
    job_id: i64,
    attempts: i32,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let later = Expr::case(
        jobs::Column::LeaseUntil.gt(until),
        Expr::col(jobs::Column::LeaseUntil),
    )
    .finally(Expr::value(Some(until)));
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::LeaseUntil, later.into())
        .filter(the_claim(job_id, attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Whether the claim `attempts` of the job is still running (no other worker took it over).
pub async fn still_claimed(
    conn: &impl ConnectionTrait,
    job_id: i64,
    attempts: i32,
) -> Result<bool, DbErr> {
    let found = jobs::Entity::find()
        .filter(the_claim(job_id, attempts))
        .count(conn)
        .await?;
    Ok(found == 1)
}

/// Stops a store's waiting work at once (uninstall).
pub async fn cancel_store(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = jobs::Entity::update_of_store(store)
        .col_expr(jobs::Column::Status, Expr::value(JobStatus::Cancelled))
        .col_expr(jobs::Column::DedupeKey, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LastError,
            Expr::value(Some("store uninstalled".to_owned())),
        )
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Status.is_in([JobStatus::Pending, JobStatus::Running]))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// One attempt, for the record: outcome, HTTP status, a truncated detail, duration.
pub struct Attempt<'a> {
    pub job: &'a Job,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
    pub outcome: &'a str,
    pub http_status: Option<u16>,
    pub detail: Option<String>,
}

pub async fn record_attempt(conn: &impl ConnectionTrait, a: Attempt<'_>) -> Result<(), DbErr> {
    job_attempts::Entity::insert(job_attempts::ActiveModel {
        job_id: Set(a.job.id),
        store_id: Set(a.job.store_id.clone()),
        attempt: Set(a.job.attempts),
        started_at: Set(a.started_at),
        duration_ms: Set(a.duration_ms),
        outcome: Set(a.outcome.to_owned()),
        http_status: Set(a.http_status.map(i32::from)),
        detail: Set(a.detail.map(|d| d.chars().take(2000).collect())),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Dead jobs, oldest first, of one store or (the operator's view) of all.
pub async fn dead_letters(
    conn: &impl ConnectionTrait,
    store: Option<&StoreId>,
    limit: Option<u64>,
) -> Result<Vec<Job>, DbErr> {
    let q = match store {
        Some(store) => jobs::Entity::of_store(store),
        None => jobs::Entity::find(),
    };
    q.filter(jobs::Column::Status.eq(JobStatus::Dead))
        .order_by_asc(jobs::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// Puts dead jobs back in the queue with a fresh attempt count. They keep their last `run_at`,
/// which is past: due at once.
pub async fn retry_dead(
    conn: &impl ConnectionTrait,
    store: Option<&StoreId>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let update = match store {
        Some(store) => jobs::Entity::update_of_store(store),
        None => jobs::Entity::update_many(),
    };
    Ok(update
        .col_expr(jobs::Column::Status, Expr::value(JobStatus::Pending))
        .col_expr(jobs::Column::Attempts, Expr::value(0))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Status.eq(JobStatus::Dead))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The job holding `key`, if any (a job that freed its key holds none).
pub async fn holding_key(conn: &impl ConnectionTrait, key: &str) -> Result<Option<Job>, DbErr> {
    super::by_unique_key(
        conn,
        jobs::Entity::find().filter(jobs::Column::DedupeKey.eq(key)),
    )
    .await
}

/// One job of the store, by id.
pub async fn find(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    id: i64,
) -> Result<Option<Job>, DbErr> {
    super::by_unique_key(
        conn,
        jobs::Entity::of_store(store).filter(jobs::Column::Id.eq(id)),
    )
    .await
}

fn waiting_of(store: &StoreId) -> Select<jobs::Entity> {
    jobs::Entity::of_store(store)
        .filter(jobs::Column::Status.is_in([JobStatus::Pending, JobStatus::Running]))
}

/// The store's jobs that are pending or running, soonest first: of kind `kind` when given, at
/// most `limit` of them when given (a big store's first sync queues one push per order).
pub async fn waiting(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    kind: Option<&str>,
    limit: Option<u64>,
) -> Result<Vec<Job>, DbErr> {
    let mut q = waiting_of(store).order_by_asc(jobs::Column::RunAt);
    if let Some(kind) = kind {
        q = q.filter(jobs::Column::Kind.eq(kind));
    }
    q.order_by_asc(jobs::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// How many of the store's jobs are pending or running, and when the soonest can run.
pub async fn waiting_summary(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<(u64, Option<DateTime<Utc>>), DbErr> {
    let count = waiting_of(store).count(conn).await?;
    let next = waiting_of(store)
        .order_by_asc(jobs::Column::RunAt)
        .one(conn)
        .await?
        .map(|j| j.run_at);
    Ok((count, next))
}

/// How many of the store's jobs failed for good.
pub async fn count_dead(conn: &impl ConnectionTrait, store: &StoreId) -> Result<u64, DbErr> {
    jobs::Entity::of_store(store)
        .filter(jobs::Column::Status.eq(JobStatus::Dead))
        .count(conn)
        .await
}

/// Jobs of every store in these states (the operator's gauges).
pub async fn count(conn: &impl ConnectionTrait, states: &[JobStatus]) -> Result<u64, DbErr> {
    jobs::Entity::find()
        .filter(jobs::Column::Status.is_in(states.iter().copied()))
        .count(conn)
        .await
}
