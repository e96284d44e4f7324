//! Sync runs: when a store's report was read, why, and what came of it.
use chrono::{DateTime, NaiveDate, Utc};
use entity::{jobs, sync_runs};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    ExprTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, sea_query::Expr,
};

use super::{RunStatus, StoreScoped};
use crate::domain::ids::StoreId;

/// A run row.
pub use entity::sync_runs::Model as Run;

/// What a finished run counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rows: usize,
    pub changes: usize,
    pub pushes: usize,
    pub ignored_final: usize,
    pub unmatched: usize,
    /// Rows of known ad groups whose money or purchase metrics were missing: their days kept
    /// their last complete figures.
    pub incomplete: usize,
    /// Decreases held for the merchant.
    pub held: usize,
    /// Of `held`, those this run held for the first time (counted for `/metrics`, not stored).
    pub newly_held: usize,
}

/// The job claim a run runs under: the job's id and its `attempts` when claimed.
pub type Claim = (i64, i32);

/// Starts a run of the store's report for `from..=to`, under `claim` when a job runs it.
pub async fn start(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    trigger: &str,
    (from, to): (NaiveDate, NaiveDate),
    claim: Option<Claim>,
    now: DateTime<Utc>,
) -> Result<Run, DbErr> {
    sync_runs::ActiveModel {
        job_id: Set(claim.map(|(job, _)| job)),
        job_attempt: Set(claim.map(|(_, attempt)| attempt)),
        store_id: Set(store.as_str().to_owned()),
        trigger: Set(trigger.to_owned()),
        from_day: Set(from),
        to_day: Set(to),
        started_at: Set(now),
        finished_at: Set(None),
        rows: Set(0),
        changes: Set(0),
        pushes: Set(0),
        ignored_final: Set(0),
        unmatched: Set(0),
        incomplete: Set(0),
        held: Set(0),
        status: Set(RunStatus::Running),
        error: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await
}

/// A running run's progress: `rows` report rows read so far. A run that has ended keeps its
/// final counts.
pub async fn progress(conn: &impl ConnectionTrait, run: &Run, rows: usize) -> Result<(), DbErr> {
    sync_runs::Entity::update_many()
        .col_expr(
            sync_runs::Column::Rows,
            Expr::value(i32::try_from(rows).unwrap_or(i32::MAX)),
        )
        .filter(sync_runs::Column::Id.eq(run.id))
        .filter(sync_runs::Column::Status.eq(RunStatus::Running))
        .exec(conn)
        .await?;
    Ok(())
}

/// Ends the run: `Ok(counts)` or `Err(why)` (cut to 500 characters).
pub async fn finish(
    conn: &impl ConnectionTrait,
    run: Run,
    outcome: Result<Counts, &str>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let mut row: sync_runs::ActiveModel = run.into();
    row.finished_at = Set(Some(now));
    match outcome {
        Ok(c) => {
            row.rows = Set(count(c.rows));
            row.changes = Set(count(c.changes));
            row.pushes = Set(count(c.pushes));
            row.ignored_final = Set(count(c.ignored_final));
            row.unmatched = Set(count(c.unmatched));
            row.incomplete = Set(count(c.incomplete));
            row.held = Set(count(c.held));
            row.status = Set(RunStatus::Ok);
        }
        Err(why) => {
            row.status = Set(RunStatus::Failed);
            row.error = Set(Some(why.chars().take(500).collect()));
        }
    }
    row.update(conn).await?;
    Ok(())
}

/// Ends as failed the store's runs that never ended and never will (their process died, or
/// their job was taken over mid-sync): those whose job claim is over (the job was claimed
/// again, or is no longer running), and any that started before `before`. Returns how many.
pub async fn abandon(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    use sync_runs::Column as C;
    // The run's claim still runs: its job is running, claimed no time since.
    let claim_runs = jobs::Entity::find()
        .select_only()
        .expr(Expr::value(1))
        .filter(super::jobs::the_claim(
            Expr::col((sync_runs::Entity, C::JobId)),
            Expr::col((sync_runs::Entity, C::JobAttempt)),
        ))
        // The claim began before the run (a claim sets the job's `updated_at`), so it is the
        // run's and not a later one with the same count (a dead job sent again counts anew).
        .filter(
            Expr::col((jobs::Entity, jobs::Column::UpdatedAt))
                .lte(Expr::col((sync_runs::Entity, C::StartedAt))),
        )
        .into_query();
    let claim_over = C::JobId.is_not_null().and(Expr::exists(claim_runs).not());
    Ok(sync_runs::Entity::update_of_store(store)
        .col_expr(C::Status, Expr::value(RunStatus::Failed))
        .col_expr(C::FinishedAt, Expr::value(Some(now)))
        .col_expr(
            C::Error,
            Expr::value(
                "abandoned: the sync stopped without recording its end (its process died, or \
                 its job was taken over)",
            ),
        )
        .filter(C::Status.eq(RunStatus::Running))
        .filter(C::StartedAt.lt(before).or(claim_over))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The store's latest run.
pub async fn last(conn: &impl ConnectionTrait, store: &StoreId) -> Result<Option<Run>, DbErr> {
    sync_runs::Entity::of_store(store)
        .order_by_desc(sync_runs::Column::Id)
        .one(conn)
        .await
}

/// The store's latest `limit` runs, newest first.
pub async fn latest(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    limit: u64,
) -> Result<Vec<Run>, DbErr> {
    sync_runs::Entity::of_store(store)
        .order_by_desc(sync_runs::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}
