//! The handlers of the use cases' jobs, registered with the queue under their kinds at startup
//! (`jobs::Registry`): the queue itself knows neither a sync nor a push.
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{DatabaseTransaction, DbErr};

use crate::{
    domain::ids::StoreId,
    flows::{
        Deps, push, scheduler, sync,
        tasks::{PUSH_ORDER, SYNC_STORE, Task},
    },
    jobs::{Finish, Handler, Job, JobError, Lease, Registry},
    metrics::OrderEvent,
    store::ledger,
};

/// The handlers of both kinds.
pub fn registry(deps: &Deps) -> Registry {
    let mut registry = Registry::default();
    registry.register(SYNC_STORE, Arc::new(SyncHandler(deps.clone())));
    registry.register(PUSH_ORDER, Arc::new(PushHandler(deps.clone())));
    registry
}

struct SyncHandler(Deps);

#[async_trait]
impl Handler for SyncHandler {
    async fn run(&self, job: &Job, lease: Lease) -> Result<String, JobError> {
        let (store, Task::SyncStore { from, to, trigger }) = Task::of(job)? else {
            return Err(JobError::Bug(format!("job {} is no sync", job.id)));
        };
        let o = sync::run(&self.0, &store, (from, to), &trigger, Some(lease)).await?;
        Ok(format!(
            "{} rows, {} changes, {} pushes",
            o.rows, o.changes, o.pushes_enqueued
        ))
    }

    /// A manual sync's key is free again once it ended, however: the next "Sync now" queues
    /// one. The daily key stays taken for good (one daily sync per store and day).
    fn frees_key(&self, job: &Job, _how: &Finish) -> bool {
        job.dedupe_key
            .as_deref()
            .is_some_and(scheduler::is_manual_key)
    }
}

struct PushHandler(Deps);

fn push_of(job: &Job) -> Option<(StoreId, ledger::Key)> {
    match Task::of(job).ok()? {
        (store, Task::PushOrder { affiliate_id, day }) => Some((store, (affiliate_id, day))),
        _ => None,
    }
}

#[async_trait]
impl Handler for PushHandler {
    async fn run(&self, job: &Job, _lease: Lease) -> Result<String, JobError> {
        let (store, Task::PushOrder { affiliate_id, day }) = Task::of(job)? else {
            return Err(JobError::Bug(format!("job {} is no push", job.id)));
        };
        let pushed = push::run(&self.0, &store, (affiliate_id, day)).await?;
        Ok(format!("{pushed:?}"))
    }

    /// The order is locked before the job row, so that a sync updating the same order either
    /// finishes before us (and we see its version) or after (and finds the key free).
    async fn before_finish(&self, txn: &DatabaseTransaction, job: &Job) -> Result<(), DbErr> {
        if let Some((store, key)) = push_of(job) {
            ledger::lock_order(txn, &store, key).await?;
        }
        Ok(())
    }

    async fn after_finish(
        &self,
        txn: &DatabaseTransaction,
        job: &Job,
        how: &Finish,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        let Some((store, key)) = push_of(job) else {
            return Ok(());
        };
        match how {
            Finish::Dead { error, .. } => {
                ledger::mark_dead(txn, &store, key, error, now).await?;
                self.0.metrics.orders(OrderEvent::Dead, 1);
                Ok(())
            }
            Finish::Done { .. } => push::requeue_if_stale(txn, &store, key, now)
                .await
                .map(|_| ()),
            _ => Ok(()),
        }
    }

    /// A done (or cancelled) push frees its key for the order's next version; a dead one keeps
    /// it, so that its retry and a new push of the order never run side by side.
    fn frees_key(&self, _job: &Job, how: &Finish) -> bool {
        !matches!(how, Finish::Dead { .. })
    }
}
