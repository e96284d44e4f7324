//! The jobs the use cases queue: a store's sync and an order's push, as the payloads stored in
//! the queue. Their handlers are in `handlers`.
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::ids::StoreId,
    jobs::{Job, JobError, NewJob},
};

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

pub const SYNC_STORE: &str = "sync_store";
pub const PUSH_ORDER: &str = "push_order";

impl Task {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SyncStore { .. } => SYNC_STORE,
            Self::PushOrder { .. } => PUSH_ORDER,
        }
    }

    /// The job row that runs this task for `store`, due now.
    pub fn job(&self, store: &StoreId, dedupe_key: Option<String>, now: DateTime<Utc>) -> NewJob {
        NewJob {
            store: store.clone(),
            kind: self.kind(),
            payload: serde_json::to_string(self).expect("tasks serialize"),
            dedupe_key,
            run_at: now,
        }
    }

    /// The task and store of a job row.
    pub fn of(job: &Job) -> Result<(StoreId, Task), JobError> {
        let unreadable = || {
            JobError::Bug(format!(
                "unreadable job {}: {}",
                job.id,
                job.payload.chars().take(200).collect::<String>()
            ))
        };
        let store = StoreId::parse(&job.store_id).map_err(|_| unreadable())?;
        let task = serde_json::from_str(&job.payload).map_err(|_| unreadable())?;
        Ok((store, task))
    }
}

/// The push of one order: while one is queued or running, a second is not added.
pub fn push_job(store: &StoreId, affiliate_id: i64, day: NaiveDate, now: DateTime<Utc>) -> NewJob {
    Task::PushOrder { affiliate_id, day }.job(
        store,
        Some(format!("push:{store}:{affiliate_id}:{day}")),
        now,
    )
}
