//! Short leases kept alive by a heartbeat: a dead worker's job is resumed within one lease (30 s
//! by default), a live worker's job is never taken from it, and a worker that lost its lease
//! stops. Workers are driven step by step; their heartbeat is beaten by hand and the clock is
//! injected.
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use attribution_bridge::domain::clock::{Clock, ManualClock};
use attribution_bridge::{
    config::DatabaseSettings,
    db,
    flows::{handlers, tasks::PUSH_ORDER},
    jobs::{
        Finish, Handler, Job, JobError, Lease,
        worker::{Heartbeat, HeartbeatHandle, Outcome, Worker},
    },
    store::{
        jobs,
        ledger::{self, Order, Remote},
        runs,
    },
};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use secrecy::SecretString;
use tokio::sync::{Notify, oneshot};

use crate::{helpers::store_id, sync::one_order_sync_world, world::World};

/// The real push handler, held at its start until the test lets it go: a worker in the middle
/// of a push, for as long as the test needs.
struct Held {
    push: Arc<dyn Handler>,
    started: Mutex<Option<oneshot::Sender<()>>>,
    go: Notify,
    /// Held inside a transaction on this database that holds the job's claim, as a sync's
    /// ingest holds it ([`Lease::hold`]); once it committed, the push waits for `go` again.
    in_transaction: Option<(DatabaseConnection, Arc<ManualClock>)>,
    committed: Mutex<Option<oneshot::Sender<()>>>,
}

/// A full lease from the clock's now.
fn lease_from(clock: &ManualClock) -> DateTime<Utc> {
    clock.now() + Duration::seconds(30)
}

#[async_trait]
impl Handler for Held {
    async fn run(&self, job: &Job, lease: Lease) -> Result<String, JobError> {
        let txn = match &self.in_transaction {
            Some((db, clock)) => {
                let txn = db.begin().await?;
                let hold = lease
                    .hold(&txn, lease_from(clock))
                    .await?
                    .expect("the claim");
                Some((txn, hold, clock))
            }
            None => None,
        };
        if let Some(started) = self.started.lock().unwrap().take() {
            let _ = started.send(());
        }
        self.go.notified().await;
        if let Some((txn, hold, clock)) = txn {
            assert!(hold.renew(&txn, lease_from(clock)).await?);
            txn.commit().await?;
            drop(hold);
            if let Some(committed) = self.committed.lock().unwrap().take() {
                let _ = committed.send(());
            }
            self.go.notified().await;
        }
        self.push.run(job, lease).await
    }
    async fn before_finish(&self, txn: &DatabaseTransaction, job: &Job) -> Result<(), DbErr> {
        self.push.before_finish(txn, job).await
    }

    async fn after_finish(
        &self,
        txn: &DatabaseTransaction,
        job: &Job,
        how: &Finish,
        now: DateTime<Utc>,
    ) -> Result<(), DbErr> {
        self.push.after_finish(txn, job, how, now).await
    }

    fn frees_key(&self, job: &Job, how: &Finish) -> bool {
        self.push.frees_key(job, how)
    }
}

/// A second worker of the same application, busy with a push: it has claimed the next push and
/// holds it, its heartbeat beaten by hand, until `go` is notified.
struct Busy {
    run: tokio::task::JoinHandle<Outcome>,
    heartbeat: HeartbeatHandle,
    held: Arc<Held>,
    /// Told once the transaction of a worker started `in_transaction` committed.
    committed: oneshot::Receiver<()>,
}

/// Starts a second worker on the next due push and returns once it holds the push.
async fn busy_worker(w: &World) -> Busy {
    busy_worker_on(w, w.app.state.worker.db.clone(), false).await
}

/// As [`busy_worker`], the worker reaching the queue through `db` (a connection of its own the
/// test can cut), and holding the push inside a transaction on it if `in_transaction`.
async fn busy_worker_on(w: &World, db: DatabaseConnection, in_transaction: bool) -> Busy {
    let deps = &w.app.state.deps;
    let mut registry = handlers::registry(deps);
    let (started, has_started) = oneshot::channel();
    let (committed, has_committed) = oneshot::channel();
    let held = Arc::new(Held {
        push: registry.get(PUSH_ORDER).unwrap().clone(),
        started: Mutex::new(Some(started)),
        go: Notify::new(),
        in_transaction: in_transaction.then(|| (db.clone(), w.app.clock.clone())),
        committed: Mutex::new(Some(committed)),
    });
    registry.register(PUSH_ORDER, held.clone());
    let worker = Worker {
        registry: Arc::new(registry),
        db,
        ..w.app.state.worker.clone()
    };
    let (heartbeat, handle) = Heartbeat::manual();
    let run = tokio::spawn(async move { worker.run_next_with(heartbeat).await.unwrap() });
    has_started.await.expect("the worker took the push");
    Busy {
        run,
        heartbeat: handle,
        held,
        committed: has_committed,
    }
}

/// A connection to the world's database of its own, which a test can cut without cutting the
/// application's.
async fn own_connection(w: &World) -> DatabaseConnection {
    db::connect(&DatabaseSettings {
        url: SecretString::from(w.app.db.url.clone()),
        max_connections: 2,
    })
    .await
    .unwrap()
}

/// 20 s on, a beat renews the busy worker's claim; 20 s later still, no other worker takes the
/// job from it.
async fn beat_and_keep_the_job(w: &World, heartbeat: &HeartbeatHandle) {
    w.app.clock.advance(Duration::seconds(20));
    assert!(heartbeat.beat().await, "the claim is still ours");
    w.app.clock.advance(Duration::seconds(20));
    assert_eq!(
        w.app.run_due_jobs().await,
        0,
        "not taken from a live worker"
    );
}

/// Lets the busy worker (`held`, running as `run`) go on: it pushes the order once, and the job ran once (the sync's
/// attempt and this push's).
async fn let_it_push_once(w: &World, held: &Held, run: tokio::task::JoinHandle<Outcome>) {
    held.go.notify_one();
    assert_eq!(run.await.unwrap(), Outcome::Completed);
    assert_pushed_once(w).await;
    let attempts = w.app.count("SELECT COUNT(*) FROM job_attempts").await;
    assert_eq!(attempts, 2, "the sync's and the push's, each once");
}

/// A store with one order to push: its sync ran, its push is due.
async fn one_push_due() -> World {
    one_order_sync_world().synced().await
}

/// The order went to the program exactly once, and nothing of the store is left to do.
async fn assert_pushed_once(w: &World) {
    assert_eq!(w.orders.count(), 1);
    assert_eq!(*w.orders.writes.lock().unwrap(), 1, "sent exactly once");
    assert_eq!(
        w.orders.current("AMZ-ab_st_1-a1-20261101").unwrap()["commission"],
        "1.00"
    );
    w.app
        .assert_counts(&[
            ("orders WHERE push_state = 'pushed'", 1),
            ("jobs WHERE status IN ('pending', 'running', 'dead')", 0),
        ])
        .await;
}

#[tokio::test]
async fn a_dead_workers_push_is_taken_up_once_its_30_second_lease_has_passed_not_before() {
    let w = one_push_due().await;
    let busy = busy_worker(&w).await;
    // The process dies in the middle of the push: no heartbeat, no outcome, ever.
    busy.run.abort();
    assert!(busy.run.await.unwrap_err().is_cancelled());

    w.app.clock.advance(Duration::seconds(29));
    assert_eq!(
        w.app.run_due_jobs().await,
        0,
        "still leased to the dead worker"
    );
    assert_eq!(w.orders.count(), 0);
    w.app.clock.advance(Duration::seconds(2));
    assert_eq!(w.app.run_due_jobs().await, 1, "resumed within the lease");
    assert_pushed_once(&w).await;
}

#[tokio::test]
async fn a_running_job_whose_heartbeat_renews_its_lease_is_not_taken_by_a_second_worker() {
    let w = one_push_due().await;
    let busy = busy_worker(&w).await;
    // Well past the first 30 s, the job is still the busy worker's: each beat renewed it.
    for _ in 0..3 {
        beat_and_keep_the_job(&w, &busy.heartbeat).await;
    }
    let_it_push_once(&w, &busy.held, busy.run).await;
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_stops_and_records_nothing() {
    let w = one_push_due().await;
    let busy = busy_worker(&w).await;
    // Its heartbeat stalled (a frozen VM, a GC pause) past the lease: another worker takes over.
    w.app.clock.advance(Duration::seconds(31));
    assert_eq!(w.app.run_due_jobs().await, 1);
    assert_eq!(w.orders.count(), 1);
    // The next beat finds the claim gone: the stalled worker stops before sending anything.
    assert!(!busy.heartbeat.beat().await, "the claim was lost");
    assert_eq!(busy.run.await.unwrap(), Outcome::Completed);
    busy.held.go.notify_one();
    assert_pushed_once(&w).await;
}

#[tokio::test]
async fn a_worker_cut_off_from_the_database_gives_its_job_up_once_a_full_lease_passed_unrenewed() {
    let w = one_push_due().await;
    // The busy worker reaches the queue through a connection of its own: the test cuts it.
    let own = own_connection(&w).await;
    let busy = busy_worker_on(&w, own.clone(), false).await;
    own.close_by_ref().await.unwrap();

    // A renewal fails, but the claim made 20 s ago still runs: the worker carries on.
    w.app.clock.advance(Duration::seconds(20));
    assert!(
        busy.heartbeat.beat().await,
        "within its lease, a failed renewal keeps the claim"
    );
    assert!(!busy.run.is_finished());
    // A full lease without a renewal: the worker cannot know who runs the job now, so it stops.
    w.app.clock.advance(Duration::seconds(10));
    assert!(
        !busy.heartbeat.beat().await,
        "no renewal for a full lease: the claim counts as lost"
    );
    assert_eq!(busy.run.await.unwrap(), Outcome::Completed);
    assert_eq!(w.orders.count(), 0, "the cut-off worker sent nothing");
    busy.held.go.notify_one();

    // Another worker takes the job up once the lease has run out, and pushes it once.
    assert_eq!(
        w.app.run_due_jobs().await,
        0,
        "the lease runs until its end"
    );
    w.app.clock.advance(Duration::seconds(1));
    assert_eq!(w.app.run_due_jobs().await, 1);
    assert_pushed_once(&w).await;
}

#[tokio::test]
async fn a_job_whose_transaction_holds_its_claim_for_longer_than_a_lease_keeps_it() {
    // A large store's first sync applies its report in one transaction that may outlast a
    // lease; on SQLite it holds the process's one connection, which the heartbeat cannot renew
    // through. The transaction holds the claim instead (`Lease::hold`), so the heartbeat leaves
    // it alone and no worker takes the job, then or the moment the transaction commits. (Before,
    // the worker gave such a sync up after a full lease, and every rerun did the same.)
    let w = one_push_due().await;
    let busy = busy_worker_on(&w, w.app.state.worker.db.clone(), true).await;
    w.app.clock.advance(Duration::seconds(31));
    assert!(
        busy.heartbeat.beat().await,
        "a full lease since the claim, held by the transaction: still ours"
    );
    w.app.clock.advance(Duration::seconds(31));
    assert!(busy.heartbeat.beat().await, "still ours");
    busy.held.go.notify_one();
    busy.committed.await.expect("the transaction committed");
    // The transaction renewed the claim as it committed: it runs a full lease from there.
    assert_eq!(
        w.app.run_due_jobs().await,
        0,
        "not taken from a live worker"
    );
    // Renewed by the heartbeat again from here on.
    beat_and_keep_the_job(&w, &busy.heartbeat).await;
    let_it_push_once(&w, &busy.held, busy.run).await;
}

#[tokio::test]
async fn a_transaction_holds_a_claim_only_while_it_lives_and_never_one_taken_over() {
    let w = one_push_due().await;
    let db = &w.app.state.deps.db;
    let now = w.app.clock_now();
    let lease_end = now + Duration::seconds(30);
    let job = jobs::claim(db, now, lease_end)
        .await
        .unwrap()
        .expect("the push");
    let lease = Lease::new(job.id, job.attempts);
    let lease_until = || async {
        jobs::find(db, &store_id("st_1"), job.id)
            .await
            .unwrap()
            .expect("the job")
            .lease_until
            .expect("a lease")
    };

    // A renewal that waited and lands after a later one never moves the lease back.
    let later = lease_end + Duration::seconds(40);
    assert!(jobs::renew(db, job.id, job.attempts, later).await.unwrap());
    assert!(
        jobs::renew(db, job.id, job.attempts, lease_end)
            .await
            .unwrap()
    );
    assert_eq!(lease_until().await, later);

    if w.app.db.is_postgres() {
        // The heartbeat renews through a connection of its own: a transaction holds nothing.
        let txn = db.begin().await.unwrap();
        let hold = lease.hold(&txn, later).await.unwrap().expect("the claim");
        assert!(!lease.in_transaction());
        // Another worker takes the job over while the transaction runs: it must not commit.
        w.app
            .execute(&format!(
                "UPDATE jobs SET attempts = attempts + 1 WHERE id = {}",
                job.id
            ))
            .await;
        assert!(!hold.renew(&txn, later).await.unwrap(), "taken over");
        return;
    }
    // An older claim of the same job (another worker took it over since) is never held.
    let taken_over = Lease::new(job.id, job.attempts - 1);
    let txn = db.begin().await.unwrap();
    assert!(taken_over.hold(&txn, later).await.unwrap().is_none());
    assert!(!taken_over.in_transaction());
    // The claim's own transaction holds it until the hold ends, whether it commits or not.
    let until = later + Duration::seconds(10);
    let hold = lease.hold(&txn, until).await.unwrap().expect("the claim");
    assert!(lease.in_transaction());
    drop(hold);
    assert!(!lease.in_transaction(), "handed back to the heartbeat");
    txn.rollback().await.unwrap();
    assert_eq!(
        lease_until().await,
        later,
        "a rolled-back renewal counts for nothing"
    );
}

/// What the ledger says of the one order: (pushed_version, push_state, pushed commission).
async fn pushed_state(w: &World) -> (i32, String, Option<i64>) {
    let order = ledger::find_order(
        &w.app.state.deps.db,
        &store_id("st_1"),
        (1, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()),
    )
    .await
    .unwrap()
    .expect("the order");
    (
        order.pushed_version,
        order.push_state.to_string(),
        order.pushed_commission_minor,
    )
}

#[tokio::test]
async fn a_stale_workers_late_mark_of_an_older_version_never_lowers_pushed_version() {
    let w = one_push_due().await;
    let db = &w.app.state.deps.db;
    let store = store_id("st_1");
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let v1 = ledger::find_order(db, &store, (1, day))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v1.version, 1);
    // The order moved on to version 2 (a later sync) before anything was pushed.
    w.app.execute("UPDATE orders SET version = 2").await;
    let v2 = Order {
        version: 2,
        ..v1.clone()
    };
    let remote = |commission| Remote {
        id: "remote-1".into(),
        total_minor: Some(1000),
        commission_minor: Some(commission),
        status: Some("approved".into()),
    };
    let now = w.app.clock_now();

    // (the version marked pushed, what the program showed, whether it is recorded, then the
    // ledger's pushed version, push state and pushed commission)
    let steps = [
        // As before: version 1 pushed while version 2 exists leaves version 2 due.
        (&v1, Some(remote(100)), true, (1, "pending", Some(100))),
        // Version 2 pushed: up to date.
        (&v2, Some(remote(200)), true, (2, "pushed", Some(200))),
        // A stale worker now finishes its push of version 1: nothing of the ledger moves back.
        (&v1, Some(remote(100)), false, (2, "pushed", Some(200))),
        (&v1, None, false, (2, "pushed", Some(200))),
        // Marking the same version again is still recorded (a retry that adopts the order).
        (&v2, Some(remote(200)), true, (2, "pushed", Some(200))),
    ];
    for (step, (order, shown, recorded, (version, state, commission))) in
        steps.into_iter().enumerate()
    {
        let marked = ledger::mark_pushed(db, &store, order, shown.as_ref(), now)
            .await
            .unwrap();
        assert_eq!(
            marked, recorded,
            "step {step}: recorded (false: fenced out)"
        );
        assert_eq!(
            pushed_state(&w).await,
            (version, state.into(), commission),
            "step {step}"
        );
    }
}

/// A worker running the queued sync, stalled while Amazon holds the report's page: its task,
/// and the sender that lets the page go.
async fn stalled_at_the_page(
    w: &World,
) -> (
    tokio::task::JoinHandle<Outcome>,
    std::sync::mpsc::Sender<()>,
) {
    let (has_arrived, go) = w.report.hold_next_page();
    let worker = w.app.state.worker.clone();
    let (heartbeat, _never_beaten) = Heartbeat::manual();
    let mut run = tokio::spawn(async move { worker.run_next_with(heartbeat).await.unwrap() });
    let arrived = tokio::task::spawn_blocking(move || has_arrived.recv());
    tokio::select! {
        page = arrived => page.unwrap().expect("the page was asked for"),
        ended = &mut run => {
            // Unblocks the wait above, which would otherwise hold the test's runtime forever.
            w.report.gate.lock().unwrap().take();
            panic!("the sync ended before asking for its page: {ended:?}");
        }
    }
    (run, go)
}

#[tokio::test]
async fn a_sync_taken_over_while_amazon_answered_stops_before_its_ingest_writes_anything() {
    let w = one_order_sync_world().queued().await;
    // Amazon is slow to answer the report's page; the worker stalls past its lease meanwhile.
    let (run, go) = stalled_at_the_page(&w).await;
    w.app.clock.advance(Duration::seconds(31));
    let now = w.app.clock_now();
    let db = &w.app.state.deps.db;
    let taken = jobs::claim(db, now, now + Duration::seconds(30))
        .await
        .unwrap()
        .expect("the sync, its lease run out, taken over");
    assert_eq!(taken.attempts, 2);

    go.send(()).unwrap();
    assert_eq!(run.await.unwrap(), Outcome::Completed);
    // The stalled worker read the page but applied none of it: the job is the other worker's.
    w.app
        .assert_counts(&[
            ("daily_figures", 0),
            ("orders", 0),
            (
                "sync_runs WHERE status = 'failed' AND error LIKE '%another worker has it%'",
                1,
            ),
        ])
        .await;
    assert!(
        jobs::still_claimed(db, taken.id, taken.attempts)
            .await
            .unwrap(),
        "still the other worker's"
    );
}

#[tokio::test]
async fn a_claim_renewed_by_a_committed_transaction_runs_a_full_lease_from_its_commit() {
    let w = one_push_due().await;
    // The busy worker reaches the queue through a connection of its own: the test cuts it.
    let own = own_connection(&w).await;
    let busy = busy_worker_on(&w, own.clone(), true).await;
    w.app.clock.advance(Duration::seconds(31));
    assert!(busy.heartbeat.beat().await, "held by the transaction");
    busy.held.go.notify_one();
    busy.committed.await.expect("the transaction committed");
    own.close_by_ref().await.unwrap();
    // 51 s after the claim and no renewal by the heartbeat since, but the transaction renewed
    // the claim for a full lease as it committed, 20 s ago: a failed renewal keeps it.
    w.app.clock.advance(Duration::seconds(20));
    assert!(
        busy.heartbeat.beat().await,
        "within the lease the commit renewed"
    );
    // A full lease after the commit without a renewal: the claim counts as lost.
    w.app.clock.advance(Duration::seconds(11));
    assert!(!busy.heartbeat.beat().await, "the lease has run out");
    assert_eq!(busy.run.await.unwrap(), Outcome::Completed);
    assert_eq!(w.orders.count(), 0, "the cut-off worker sent nothing");
    assert_eq!(
        w.app.run_due_jobs().await,
        1,
        "taken up once its lease ran out"
    );
    assert_pushed_once(&w).await;
}

#[tokio::test]
async fn a_sync_whose_worker_died_is_ended_as_failed_when_its_job_runs_again_not_a_day_later() {
    let w = one_order_sync_world().queued().await;
    let (run, go) = stalled_at_the_page(&w).await;
    let db = &w.app.state.deps.db;
    let now = w.app.clock_now();
    // While its claim runs, the sync may be alive: a sync starting meanwhile leaves its run be.
    let left = runs::abandon(db, &store_id("st_1"), now - Duration::days(1), now)
        .await
        .unwrap();
    assert_eq!(left, 0);
    w.app
        .assert_rows("sync_runs WHERE status = 'running'", 1)
        .await;

    // The worker's process dies mid-sync: its task is gone, its run was never ended.
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    go.send(()).unwrap();
    w.app.clock.advance(Duration::seconds(31));
    // Another worker takes the job over once the lease has run out, and syncs the store.
    w.app.run_one_job().await;
    w.app
        .assert_counts(&[
            ("sync_runs", 2),
            ("sync_runs WHERE status = 'running'", 0),
            (
                "sync_runs WHERE status = 'failed' AND error LIKE 'abandoned%' AND job_attempt = 1",
                1,
            ),
            ("sync_runs WHERE status = 'ok' AND job_attempt = 2", 1),
            ("daily_figures", 1),
            ("report_rows", 0),
        ])
        .await;
}

/// A stop (SIGTERM or Ctrl-C) cuts off the job a worker is running, as a crash would: the loop
/// ends without waiting for Amazon, nothing of the sync is committed, and the job keeps its
/// claim, to be taken up again once its lease runs out. Waiting for it instead could outlast
/// any shutdown grace period (a sync may read a thousand pages).
#[tokio::test]
async fn a_stop_cuts_off_the_running_job_which_keeps_its_claim() {
    let w = one_order_sync_world().queued().await;
    let (has_arrived, _go) = w.report.hold_next_page();
    let stop = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(w.app.state.worker.clone().run(stop.clone()));
    tokio::task::spawn_blocking(move || has_arrived.recv())
        .await
        .unwrap()
        .expect("the page was asked for");
    stop.cancel();
    // Only a guard against hanging: Amazon's page is never let go, so a loop that waited for
    // the sync would never end.
    tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the worker loop ends at the stop")
        .unwrap();
    w.app
        .assert_rows("jobs WHERE kind = 'sync_store' AND status = 'running'", 1)
        .await;
    w.app
        .assert_rows("sync_runs WHERE status = 'running'", 1)
        .await;
    w.app.assert_rows("daily_figures", 0).await;
    assert_eq!(w.orders.count(), 0);
}
