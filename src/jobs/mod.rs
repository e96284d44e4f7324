//! The job queue: rows written in the same transaction as the work that creates them
//! (`store::jobs`), claimed with a lease, retried on a schedule (`retry`), run by a worker
//! (`worker`) through the handler registered for their kind. It knows kinds and payloads, never
//! what they mean: the use cases register their handlers at startup.
pub mod retry;
pub mod worker;

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr};

pub use crate::store::jobs::{Finish, Job, NewJob};

/// Why a job did not complete, classified once, where the failure is understood.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth trying again on the schedule: 408, 5xx, timeouts, connection errors, a busy
    /// database. `overloaded` (a timeout) waits at least the overload floor.
    #[error("{detail}")]
    Transient {
        status: Option<u16>,
        overloaded: bool,
        detail: String,
    },
    /// The upstream asked for room (429): at least the overload floor, or its `Retry-After`.
    #[error("{detail}")]
    Throttled {
        retry_after: Option<Duration>,
        detail: String,
    },
    /// Will fail the same way again (any other 4xx, bad data): straight to the dead letters.
    #[error("{detail}")]
    Permanent { status: Option<u16>, detail: String },
    /// The app's own fault (an unreadable job, a broken invariant): a dead letter, logged loudly.
    #[error("{0}")]
    Bug(String),
    /// Nothing left to do (store uninstalled, Amazon disconnected by the merchant …).
    #[error("{0}")]
    Cancelled(String),
}

impl JobError {
    pub fn permanent(detail: impl Into<String>) -> Self {
        Self::Permanent {
            status: None,
            detail: detail.into(),
        }
    }

    pub fn transient(detail: impl Into<String>) -> Self {
        Self::Transient {
            status: None,
            overloaded: false,
            detail: detail.into(),
        }
    }

    /// The HTTP status behind the failure, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Transient { status, .. } | Self::Permanent { status, .. } => *status,
            Self::Throttled { .. } => Some(429),
            Self::Bug(_) | Self::Cancelled(_) => None,
        }
    }
}

/// The database blinked (a busy SQLite, a PostgreSQL failover): try again later.
impl From<DbErr> for JobError {
    fn from(e: DbErr) -> Self {
        Self::transient(format!("database: {e}"))
    }
}

/// The claim a running job holds: renewed by the worker's heartbeat (and by a long sync between
/// report pages, and by its ingest's transaction: [`Lease::hold`]), lost when another worker
/// took over.
#[derive(Debug, Clone)]
pub struct Lease {
    pub job_id: i64,
    pub attempts: i32,
    /// Whether a transaction of the job's handler holds the claim now ([`Lease::hold`]).
    in_transaction: Arc<AtomicBool>,
    /// Until when that transaction last renewed the claim, just before it committed
    /// ([`Hold::renew`]).
    renewed_until: Arc<Mutex<Option<DateTime<Utc>>>>,
}

impl Lease {
    pub fn new(job_id: i64, attempts: i32) -> Self {
        Self {
            job_id,
            attempts,
            in_transaction: Arc::default(),
            renewed_until: Arc::default(),
        }
    }

    /// Until when a transaction of the handler renewed the claim as it committed, if one did
    /// ([`Hold::renew`]): the heartbeat's own renewals are not the only ones.
    pub fn renewed_until(&self) -> Option<DateTime<Utc>> {
        *self.renewed_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Has `txn` hold the claim while it runs, however long: on SQLite the transaction holds
    /// the process's one connection, which the heartbeat cannot renew through meanwhile. Renews
    /// the claim until `until` as a write of `txn` (which takes SQLite's write lock), and until
    /// the returned [`Hold`] is dropped the heartbeat leaves the claim alone: no worker can claim
    /// the job meanwhile, since every claim needs that connection or that lock. Before it
    /// commits, the transaction renews the claim again ([`Hold::renew`]), so that it runs a full
    /// lease from there. On PostgreSQL the heartbeat renews through a connection of its own:
    /// this only checks that the claim is still the job's (locking the job's row for the whole
    /// ingest would make others wait on it), and [`Hold::renew`] checks it again before the
    /// commit, since another worker may take the job over meanwhile.
    ///
    /// `None` when another worker has the job. Errors: the database's.
    pub async fn hold(
        &self,
        txn: &DatabaseTransaction,
        until: DateTime<Utc>,
    ) -> Result<Option<Hold>, DbErr> {
        if txn.get_database_backend() != DbBackend::Sqlite {
            let ours = crate::store::jobs::still_claimed(txn, self.job_id, self.attempts).await?;
            return Ok(ours.then_some(Hold {
                lease: self.clone(),
                holds_connection: false,
            }));
        }
        // Set before the write: a beat from now on leaves the claim to the transaction.
        self.in_transaction.store(true, Ordering::SeqCst);
        let hold = Hold {
            lease: self.clone(),
            holds_connection: true,
        };
        if !crate::store::jobs::renew(txn, self.job_id, self.attempts, until).await? {
            return Ok(None);
        }
        Ok(Some(hold))
    }

    /// Whether a transaction of the handler holds the claim ([`Lease::hold`]).
    pub fn in_transaction(&self) -> bool {
        self.in_transaction.load(Ordering::SeqCst)
    }
}

/// A claim held by a transaction of the job's handler ([`Lease::hold`]; on PostgreSQL it is
/// only checked); dropping it hands the claim back to the heartbeat.
#[derive(Debug)]
pub struct Hold {
    lease: Lease,
    /// Whether the transaction holds the one connection (SQLite), and so the claim.
    holds_connection: bool,
}

impl Hold {
    /// Renews the claim until `until` inside the transaction: call it just before the commit.
    /// False when another worker has the job: on SQLite it cannot, while the transaction holds
    /// it; on PostgreSQL it may have been taken over during the transaction, which must then
    /// not commit (the worker that took it over may have ended this run and swept its rows).
    pub async fn renew(
        &self,
        txn: &DatabaseTransaction,
        until: DateTime<Utc>,
    ) -> Result<bool, DbErr> {
        let lease = &self.lease;
        let renewed = crate::store::jobs::renew(txn, lease.job_id, lease.attempts, until).await?;
        if renewed {
            // A commit that fails ends the job's handler, and with it the heartbeat.
            *lease
                .renewed_until
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(until);
        }
        Ok(renewed)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if self.holds_connection {
            self.lease.in_transaction.store(false, Ordering::SeqCst);
        }
    }
}

/// Runs the jobs of one kind.
#[async_trait]
pub trait Handler: Send + Sync {
    /// Runs the job; `Ok` carries a note for the attempts log.
    async fn run(&self, job: &Job, lease: Lease) -> Result<String, JobError>;

    /// Inside the transaction that records the attempt, before its end is written (a push locks
    /// its order here, so that a sync updating the same order is ordered with it).
    async fn before_finish(&self, _txn: &DatabaseTransaction, _job: &Job) -> Result<(), DbErr> {
        Ok(())
    }

    /// Inside the same transaction, once the end is written (a dead push marks its order).
    async fn after_finish(
        &self,
        _txn: &DatabaseTransaction,
        _job: &Job,
        _how: &Finish,
        _now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        Ok(())
    }

    /// Whether this job, once it ended (done, cancelled or dead), frees its dedupe key for a new
    /// job of the same key: a push's key frees for the order's next version when done, a manual
    /// sync's as soon as it ended at all, while a daily key stays taken for good.
    fn frees_key(&self, _job: &Job, _how: &Finish) -> bool {
        false
    }
}

/// The handlers, by job kind.
#[derive(Default, Clone)]
pub struct Registry(HashMap<&'static str, Arc<dyn Handler>>);

impl Registry {
    pub fn register(&mut self, kind: &'static str, handler: Arc<dyn Handler>) {
        self.0.insert(kind, handler);
    }

    pub fn get(&self, kind: &str) -> Option<&Arc<dyn Handler>> {
        self.0.get(kind)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}
