//! Group commit for verified webhooks (DESIGN §4.1, issue 11): one writer task takes the
//! deliveries waiting for it, up to [`MAX_BATCH`], and commits them in one transaction (one
//! fsync), dedupe and effects inside it, in the order they arrived. Each request is answered only
//! once its batch committed. A batch that fails is done again one delivery per transaction, so one
//! bad event cannot fail its neighbours; a delivery that fails alone is answered with its error
//! (a 503: nothing of it was committed).
use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot, watch};

use super::{
    Receipt,
    events::{Affiliate, Event},
};
use crate::{
    domain::ids::StoreId,
    flows::{Deps, lifecycle},
    store::{connections, inbox},
};

/// Deliveries committed together at most. Past a few hundred a batch saves no more fsyncs worth
/// having and only holds the write lock longer.
pub const MAX_BATCH: usize = 256;

/// Deliveries that may wait for the writer; a request past that waits for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// A verified, parsed delivery on its way to the database.
pub struct Delivery {
    pub webhook_id: String,
    pub event_type: String,
    pub event: Event,
    pub received_at: DateTime<Utc>,
}

struct Waiting {
    delivery: Delivery,
    answer: oneshot::Sender<Result<Receipt, DbErr>>,
}

/// The writer's door: cheap to clone, one per application.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Waiting>,
    /// Deliveries in the writer's queue or hands, not answered yet.
    pending: Arc<watch::Sender<usize>>,
    /// While true, the writer commits nothing (tests gather a batch this way).
    held: Arc<watch::Sender<bool>>,
}

impl Intake {
    /// Starts the writer on the current Tokio runtime. It stops once every `Intake` is dropped.
    pub fn start(deps: Deps) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let held = Arc::new(watch::channel(false).0);
        tokio::spawn(write(deps, rx, held.subscribe()));
        Self {
            tx,
            pending: Arc::new(watch::channel(0).0),
            held,
        }
    }

    /// Commits `delivery` with whatever else is waiting; `Ok` means committed (or a duplicate of a
    /// committed one). `Err` means nothing of it was committed.
    pub async fn submit(&self, delivery: Delivery) -> Result<Receipt, DbErr> {
        let (answer, answered) = oneshot::channel();
        let stopped = || DbErr::Custom("the webhook writer has stopped".into());
        self.tx
            .send(Waiting { delivery, answer })
            .await
            .map_err(|_| stopped())?;
        // Counted once in the writer's queue: a held writer has every pending delivery at hand.
        let _pending = Pending::count(&self.pending);
        answered.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Deliveries in the writer's queue or hands, not answered yet.
    pub fn pending(&self) -> usize {
        *self.pending.borrow()
    }

    /// Waits until `n` deliveries are submitted and not answered (tests, with [`hold`](Self::hold)).
    pub async fn wait_pending(&self, n: usize) {
        let _ = self
            .pending
            .subscribe()
            .wait_for(|pending| *pending == n)
            .await;
    }

    /// Stops the writer from committing until [`release`](Self::release): what arrives meanwhile
    /// is committed as one batch (up to [`MAX_BATCH`]). For tests and maintenance.
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    pub fn release(&self) {
        self.held.send_replace(false);
    }
}

/// One delivery counted as pending while it lives: until answered, or until its request is
/// dropped (the caller hung up; a committed batch stays committed).
struct Pending<'a>(&'a watch::Sender<usize>);

impl<'a> Pending<'a> {
    fn count(pending: &'a watch::Sender<usize>) -> Self {
        pending.send_modify(|n| *n += 1);
        Self(pending)
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

async fn write(deps: Deps, mut rx: mpsc::Receiver<Waiting>, mut held: watch::Receiver<bool>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        if held.wait_for(|held| !held).await.is_err() {
            return;
        }
        // What arrived while held (or while the first was taken) joins the batch.
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(waiting) => batch.push(waiting),
                Err(_) => break,
            }
        }
        let size = batch.len();
        let together = match size {
            1 => None,
            _ => match commit_together(&deps, &batch).await {
                Ok(receipts) => Some(receipts),
                Err(e) => {
                    tracing::warn!(error = %e, size, "a webhook batch failed; committing its deliveries one by one");
                    None
                }
            },
        };
        deps.metrics
            .webhook_batch(size, size > 1 && together.is_none());
        match together {
            Some(receipts) => {
                for (waiting, receipt) in batch.drain(..).zip(receipts) {
                    log(&waiting.delivery, receipt);
                    let _ = waiting.answer.send(Ok(receipt));
                }
            }
            None => {
                for waiting in batch.drain(..) {
                    let alone = commit_alone(&deps, &waiting.delivery).await;
                    if let Ok(receipt) = alone {
                        log(&waiting.delivery, receipt);
                    }
                    let _ = waiting.answer.send(alone);
                }
            }
        }
    }
}

/// The group's inbox rows in one statement, which of its affiliates' stores are connected to
/// Amazon in another, then each new delivery's effect in arrival order. Affiliate upserts that
/// follow one another are written together (one statement for the run, then one links refresh
/// per connected store): nothing between them could change what they do.
async fn commit_together(deps: &Deps, batch: &[Waiting]) -> Result<Vec<Receipt>, DbErr> {
    let txn = deps.db.begin().await?;
    let arrivals: Vec<_> = batch.iter().map(|w| arrival(&w.delivery)).collect();
    let mut new = inbox::record_all(&txn, &arrivals).await?;
    // No event connects a store: only Login with Amazon does, outside the intake. A store not
    // connected when the group began mints no links in it; one connected meanwhile (possible
    // on PostgreSQL) gets them from the connect flow's roster read and links refresh, or else
    // the next roster read. A connected one is looked up again by its refresh.
    let stores: HashSet<&StoreId> = batch
        .iter()
        .filter_map(|w| match &w.delivery.event {
            Event::AffiliateUpserted { store_id, .. } => Some(store_id),
            _ => None,
        })
        .collect();
    let connected = connections::connected_among(&txn, &stores).await?;
    // A later delivery of a webhook id in the group is a duplicate of the first, which took the row.
    let mut receipts = vec![Receipt::Duplicate; batch.len()];
    let mut run = Run::default();
    for (i, waiting) in batch.iter().enumerate() {
        let d = &waiting.delivery;
        if !new.remove(&d.webhook_id) {
            continue;
        }
        match &d.event {
            Event::AffiliateUpserted {
                store_id,
                affiliate,
            } => run.push(i, store_id, affiliate, d),
            _ => {
                run.write(&txn, &connected, &mut receipts).await?;
                receipts[i] = apply_recorded(&txn, deps, d).await?;
            }
        }
    }
    run.write(&txn, &connected, &mut receipts).await?;
    txn.commit().await?;
    Ok(receipts)
}

/// Consecutive affiliate upserts not written yet: their places in the group, and what to write.
#[derive(Default)]
struct Run<'a> {
    at: Vec<(usize, &'a str)>,
    upserts: Vec<(&'a StoreId, &'a Affiliate, DateTime<Utc>)>,
}

impl<'a> Run<'a> {
    fn push(&mut self, i: usize, store: &'a StoreId, affiliate: &'a Affiliate, d: &'a Delivery) {
        self.at.push((i, &d.webhook_id));
        self.upserts.push((store, affiliate, d.received_at));
    }

    /// Writes the run, the links of the affiliates of `connected` stores, and each of its
    /// receipts; ignored where the store is not installed, as [`apply_recorded`] would have it.
    async fn write(
        &mut self,
        conn: &impl ConnectionTrait,
        connected: &HashSet<StoreId>,
        receipts: &mut [Receipt],
    ) -> Result<(), DbErr> {
        if self.at.is_empty() {
            return Ok(());
        }
        let written = lifecycle::affiliates_upserted(conn, &self.upserts, Some(connected)).await?;
        let mut ignored = vec![];
        for (&(i, webhook_id), (store, affiliate, _)) in self.at.iter().zip(&self.upserts) {
            receipts[i] = if written.contains(&(store.as_str().to_owned(), affiliate.id.get())) {
                Receipt::Processed
            } else {
                ignored.push(webhook_id);
                Receipt::Ignored
            };
        }
        inbox::mark_all_ignored(conn, &ignored).await?;
        self.at.clear();
        self.upserts.clear();
        Ok(())
    }
}

async fn commit_alone(deps: &Deps, d: &Delivery) -> Result<Receipt, DbErr> {
    let txn = deps.db.begin().await?;
    let receipt = if inbox::record_all(&txn, &[arrival(d)]).await?.is_empty() {
        Receipt::Duplicate
    } else {
        apply_recorded(&txn, deps, d).await?
    };
    txn.commit().await?;
    Ok(receipt)
}

/// The delivery's inbox row. The inbox row comes first: a racing duplicate (another instance's)
/// waits on its key and then finds it taken. A redacted store must not stay named anywhere, not
/// even in the inbox.
fn arrival(d: &Delivery) -> inbox::Arrival<'_> {
    inbox::Arrival {
        webhook_id: &d.webhook_id,
        event_type: &d.event_type,
        store: match &d.event {
            Event::Redact { .. } => None,
            other => other.store_id(),
        },
        received_at: d.received_at,
    }
}

/// The effect of a delivery whose inbox row was just written.
async fn apply_recorded(
    conn: &impl ConnectionTrait,
    deps: &Deps,
    d: &Delivery,
) -> Result<Receipt, DbErr> {
    if super::apply(conn, deps, &d.event, d.received_at).await? {
        Ok(Receipt::Processed)
    } else {
        inbox::mark_ignored(conn, &d.webhook_id).await?;
        Ok(Receipt::Ignored)
    }
}

fn log(d: &Delivery, receipt: Receipt) {
    match receipt {
        Receipt::Duplicate => {
            tracing::info!(
                webhook_id = d.webhook_id,
                "duplicate webhook delivery ignored"
            )
        }
        _ => tracing::info!(
            webhook_id = d.webhook_id,
            event_type = d.event_type,
            store_id = ?d.event.store_id().map(|s| s.as_str()),
            applied = receipt == Receipt::Processed,
            "webhook processed"
        ),
    }
}
