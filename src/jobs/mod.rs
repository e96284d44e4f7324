//! The job queue: rows written in the same transaction as the work that creates them, claimed
//! with a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, one statement on SQLite), expired leases
//! reclaimed, every attempt recorded. No transaction is held while a job talks to the network.
pub mod retry;
pub mod worker;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{job_attempts, jobs};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
    sea_query::{Expr, OnConflict},
};
use serde::{Deserialize, Serialize};

use crate::domain::ids::StoreId;

pub const PENDING: &str = "pending";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const DEAD: &str = "dead";
pub const CANCELLED: &str = "cancelled";

/// Why a job did not complete.
#[derive(Debug)]
pub enum JobError {
    Failed(retry::Failure),
    /// Nothing left to do for it (store uninstalled, Amazon disconnected by the merchant …).
    Cancelled(String),
}

impl From<sea_orm::DbErr> for JobError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Failed(retry::Failure::Transient {
            status: None,
            overloaded: false,
            retry_after: None,
            detail: format!("database: {e}"),
        })
    }
}

/// What a job does. Tagged, so that new kinds can be added without breaking stored rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Pull the report for `from..=to`, store figures, compute the ledger, enqueue pushes.
    SyncStore {
        from: NaiveDate,
        to: NaiveDate,
        trigger: String,
    },
    /// Bring the program's order for (affiliate, day) in line with the ledger.
    PushOrder { affiliate_id: i64, day: NaiveDate },
}

impl Task {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SyncStore { .. } => "sync_store",
            Self::PushOrder { .. } => "push_order",
        }
    }
}

/// The key that keeps a second push of the same order out of the queue while one is waiting.
pub fn push_key(store: &StoreId, affiliate_id: i64, day: NaiveDate) -> String {
    format!("push:{store}:{affiliate_id}:{day}")
}

/// The key of a store's daily sync: one per store and marketplace day, whichever instance asks.
pub fn daily_key(store: &StoreId, day: NaiveDate) -> String {
    format!("daily:{store}:{day}")
}

/// A job row, ready to insert.
pub fn new_job(
    store: &StoreId,
    task: &Task,
    dedupe_key: Option<String>,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> jobs::ActiveModel {
    jobs::ActiveModel {
        kind: Set(task.kind().to_owned()),
        store_id: Set(store.as_str().to_owned()),
        payload: Set(serde_json::to_string(task).expect("tasks serialize")),
        dedupe_key: Set(dedupe_key),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        run_at: Set(run_at),
        lease_until: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// Adds a job unless one with the same `dedupe_key` exists. True when added.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    task: &Task,
    dedupe_key: Option<String>,
    run_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    Ok(enqueue_many(conn, vec![new_job(store, task, dedupe_key, run_at, now)]).await? == 1)
}

/// Adds jobs in batches, skipping those whose `dedupe_key` is taken. Returns how many were added.
pub async fn enqueue_many(
    conn: &impl ConnectionTrait,
    rows: Vec<jobs::ActiveModel>,
) -> Result<u64, DbErr> {
    let mut added = 0;
    for chunk in rows.chunks(crate::flows::sync::ledger::BATCH) {
        added += jobs::Entity::insert_many(chunk.to_vec())
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
) -> Result<Option<jobs::Model>, DbErr> {
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

/// How a job ended this time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    Done,
    Retry { at: DateTime<Utc>, error: String },
    Dead { error: String },
    Cancelled { reason: String },
}

/// Records the end of an attempt. Only the claim that ran is touched: the row must still be
/// `running` with this attempt's count (a worker whose lease expired and was re-claimed writes
/// nothing). Returns whether this claim was still the job's.
pub async fn finish(
    conn: &impl ConnectionTrait,
    job: &jobs::Model,
    how: &Finish,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let (status, run_at, error) = match how {
        Finish::Done => (DONE, job.run_at, None),
        Finish::Retry { at, error } => (PENDING, *at, Some(error.clone())),
        Finish::Dead { error } => (DEAD, job.run_at, Some(error.clone())),
        Finish::Cancelled { reason } => (CANCELLED, job.run_at, Some(reason.clone())),
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
    // A done or cancelled push frees its key for the order's next version. A dead one keeps it,
    // so that a retried dead letter and a new push of the same order never run side by side; a
    // daily key stays taken for good.
    if matches!(how, Finish::Done | Finish::Cancelled { .. }) && job.kind == "push_order" {
        update = update.col_expr(jobs::Column::DedupeKey, Expr::value(Option::<String>::None));
    }
    let res = update
        .filter(jobs::Column::Id.eq(job.id))
        .filter(jobs::Column::Status.eq(RUNNING))
        .filter(jobs::Column::Attempts.eq(job.attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Extends a running claim (a long sync between report pages). False when the claim was lost.
pub async fn renew(
    conn: &impl ConnectionTrait,
    job_id: i64,
    attempts: i32,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::LeaseUntil, Expr::value(Some(until)))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.eq(RUNNING))
        .filter(jobs::Column::Attempts.eq(attempts))
        .exec(conn)
        .await?;
    Ok(res.rows_affected == 1)
}

/// Stops a store's waiting work at once (uninstall).
pub async fn cancel_store(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let res = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(CANCELLED))
        .col_expr(jobs::Column::DedupeKey, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LastError,
            Expr::value(Some("store uninstalled".to_owned())),
        )
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::StoreId.eq(store.as_str()))
        .filter(jobs::Column::Status.is_in([PENDING, RUNNING]))
        .exec(conn)
        .await?;
    Ok(res.rows_affected)
}

/// One attempt, for the record: outcome, HTTP status, a truncated detail, duration.
pub struct Attempt<'a> {
    pub job: &'a jobs::Model,
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

/// Dead jobs, oldest first, optionally of one store.
pub async fn dead_letters(
    conn: &impl ConnectionTrait,
    store: Option<&StoreId>,
) -> Result<Vec<jobs::Model>, DbErr> {
    use sea_orm::QueryOrder;
    let mut q = jobs::Entity::find().filter(jobs::Column::Status.eq(DEAD));
    if let Some(store) = store {
        q = q.filter(jobs::Column::StoreId.eq(store.as_str()));
    }
    q.order_by_asc(jobs::Column::Id).all(conn).await
}

/// Puts dead jobs back in the queue with a fresh attempt count. They keep their last `run_at`,
/// which is past: due at once.
pub async fn retry_dead(
    conn: &impl ConnectionTrait,
    store: Option<&StoreId>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut update = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(PENDING))
        .col_expr(jobs::Column::Attempts, Expr::value(0))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Status.eq(DEAD));
    if let Some(store) = store {
        update = update.filter(jobs::Column::StoreId.eq(store.as_str()));
    }
    Ok(update.exec(conn).await?.rows_affected)
}

/// Dead letters queued again, with their orders pending once more, in one transaction.
pub async fn retry_dead_letters(
    db: &sea_orm::DatabaseConnection,
    store: Option<&StoreId>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use sea_orm::TransactionTrait;
    let txn = db.begin().await?;
    let n = retry_dead(&txn, store, now).await?;
    crate::flows::sync::ledger::revive_dead_orders(&txn, store).await?;
    txn.commit().await?;
    Ok(n)
}
