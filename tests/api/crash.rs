//! A worker that dies between any two steps leaves a state from which the next run converges to
//! exactly the right orders. "Dying" is a claimed job that is never finished: its lease expires.
use attribution_bridge::{
    flows::{push, scheduler, tasks::Task},
    store::jobs,
};
use chrono::{Duration, NaiveDate};

use crate::{
    doubles::*,
    helpers::*,
    sync::{one_order_sync_world, sync_world},
    world::World,
};

/// A worker takes the next job and dies holding it.
async fn claim_and_die(w: &World) -> entity::jobs::Model {
    claim(w).await.expect("a job is due")
}

/// A worker takes the next due job, if any, for a lease of 300 s.
async fn claim(w: &World) -> Option<entity::jobs::Model> {
    let now = w.app.clock_now();
    jobs::claim(&w.app.state.deps.db, now, now + Duration::seconds(300))
        .await
        .unwrap()
}

async fn past_the_lease(w: &World) {
    w.app.clock.advance(Duration::seconds(301));
}

/// A worker takes the next push and dies holding it.
async fn claim_push(w: &World) -> (entity::jobs::Model, i64, NaiveDate) {
    let job = claim_and_die(w).await;
    let Task::PushOrder { affiliate_id, day } = serde_json::from_str(&job.payload).unwrap() else {
        panic!("the next job is a push");
    };
    (job, affiliate_id, day)
}

/// The scheduler's pass: queues every store's daily sync that is due now; returns how many.
async fn enqueue_due(w: &World) -> usize {
    scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now())
        .await
        .unwrap()
}

fn two_rows() -> Vec<serde_json::Value> {
    vec![
        report_row("20261101", 1, 10, 1, "10.00"),
        report_row("20261102", 2, 20, 2, "40.00"),
    ]
}

/// Once the dead worker's lease is past, the next run leaves each order pushed exactly once.
async fn assert_recovers(w: &World) {
    past_the_lease(w).await;
    w.app.run_due_jobs().await;
    assert_eq!(w.orders.count(), 2, "each order exactly once");
    assert_eq!(*w.orders.writes.lock().unwrap(), 2, "each sent once");
    w.app
        .assert_counts(&[
            (
                "orders WHERE push_state = 'pushed' AND pushed_version = version",
                2,
            ),
            ("jobs WHERE status IN ('pending', 'running')", 0),
        ])
        .await;
}

#[tokio::test]
async fn a_worker_dying_before_the_sync_commits() {
    let w = sync_world(2).report(two_rows()).queued().await;
    claim_and_die(&w).await;
    assert_eq!(w.app.run_due_jobs().await, 0, "leased to the dead worker");
    assert_recovers(&w).await;
}

#[tokio::test]
async fn a_worker_dying_after_the_sync_committed_but_before_its_job_was_done() {
    let w = sync_world(2).report(two_rows()).queued().await;
    let job = claim_and_die(&w).await;
    let Task::SyncStore { from, to, .. } = serde_json::from_str(&job.payload).unwrap() else {
        panic!()
    };
    w.run_sync(from, to).await;
    assert_recovers(&w).await;
}

#[tokio::test]
async fn a_worker_dying_just_before_sending_a_create() {
    let w = sync_world(2).report(two_rows()).synced().await;
    // The push worker marked the create as attempted, then died before the request left.
    claim_and_die(&w).await;
    w.app
        .execute("UPDATE orders SET create_attempted = TRUE WHERE affiliate_id = 1")
        .await;
    assert_recovers(&w).await;
}

#[tokio::test]
async fn a_worker_dying_after_the_program_stored_the_order() {
    let w = sync_world(2).report(two_rows()).synced().await;
    let (_job, affiliate_id, day) = claim_push(&w).await;
    // The create reached the program; the worker died before writing down the answer.
    w.app
        .execute(&format!(
            "UPDATE orders SET create_attempted = TRUE WHERE affiliate_id = {affiliate_id}"
        ))
        .await;
    let number = format!("AMZ-ab_st_1-a{affiliate_id}-{}", day.format("%Y%m%d"));
    let amounts = if affiliate_id == 1 {
        ("10.00", "1.00")
    } else {
        ("40.00", "4.00")
    };
    w.orders.orders.lock().unwrap().push(StoredOrder {
        id: 1000,
        body: serde_json::json!({"number": number, "affiliate_id": affiliate_id, "total": amounts.0, "commission": amounts.1, "status": "approved"}),
        patches: vec![],
    });
    *w.orders.writes.lock().unwrap() += 1;
    assert_recovers(&w).await;
}

#[tokio::test]
async fn a_worker_dying_after_recording_the_push_but_before_its_job_was_done() {
    let w = sync_world(2).report(two_rows()).synced().await;
    let (_job, affiliate_id, day) = claim_push(&w).await;
    push::run(&w.app.state.deps, &store_id("st_1"), (affiliate_id, day))
        .await
        .unwrap();
    assert_recovers(&w).await;
}

#[tokio::test]
async fn two_workers_racing_on_one_queue_run_each_job_once() {
    let rows = (1..=40)
        .map(|a| report_row("20261101", a, 10, 1, "10.00"))
        .collect();
    let w = sync_world(40).report(rows).synced().await;
    // Three workers, as three instances on one database would run.
    let (a, b, c) = tokio::join!(
        w.app.run_due_jobs(),
        w.app.run_due_jobs(),
        w.app.run_due_jobs()
    );
    assert_eq!(a + b + c, 40);

    assert_eq!(w.orders.count(), 40);
    assert_eq!(*w.orders.writes.lock().unwrap(), 40, "no order sent twice");
    let twice = w.app.count("SELECT COUNT(*) FROM (SELECT job_id FROM job_attempts GROUP BY job_id HAVING COUNT(*) > 1) t").await;
    assert_eq!(twice, 0);
}

#[tokio::test]
async fn two_schedulers_enqueue_each_store_day_once() {
    let w = sync_world(1).connected().await;
    // 07:00 in Los Angeles, past the 06:00 default.
    w.app.set_clock("2026-11-20T15:00:00Z");
    let (a, b) = tokio::join!(enqueue_due(&w), enqueue_due(&w));
    assert_eq!(a + b, 1);
    assert_eq!(enqueue_due(&w).await, 0, "already enqueued today");
    w.app.assert_rows("jobs WHERE kind = 'sync_store'", 1).await;
    // Before 06:00 local time the next day, nothing; after, the next day's sync.
    w.app.clock.advance(Duration::hours(13));
    assert_eq!(enqueue_due(&w).await, 0);
    w.app.clock.advance(Duration::hours(12));
    assert_eq!(enqueue_due(&w).await, 1);
}

#[tokio::test]
async fn a_worker_whose_lease_expired_cannot_finish_the_job_it_lost() {
    let w = sync_world(1).queued().await;
    let first = claim_and_die(&w).await;
    past_the_lease(&w).await;
    let second = claim(&w).await.unwrap();
    assert_eq!((second.id, second.attempts), (first.id, 2));
    let late = jobs::finish(
        &w.app.state.deps.db,
        &first,
        &jobs::Finish::Dead {
            error: "late".into(),
            free_key: false,
        },
        w.app.clock_now(),
    )
    .await
    .unwrap();
    assert!(!late, "the first worker's outcome is dropped");
    w.app.assert_rows("jobs WHERE status = 'running'", 1).await;
}

#[tokio::test]
async fn a_restatement_computed_while_its_push_runs_is_pushed_next() {
    let w = one_order_sync_world().synced().await;
    // The push of version 1 is under way (its job holds the order's queue key)…
    let (push_job, affiliate_id, day) = claim_push(&w).await;
    push::run(&w.app.state.deps, &store_id("st_1"), (affiliate_id, day))
        .await
        .unwrap();
    // …when Amazon restates the day and a sync computes version 2: its push cannot be queued yet.
    *w.report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "7.00")];
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    w.queue_sync(Some((day, day))).await;
    w.app.run_one_job().await;
    // The push finishes as the worker finishes it; the newer version is queued then.
    let now = w.app.clock_now();
    let db = &w.app.state.deps.db;
    let finish = jobs::Finish::Done { free_key: true };
    assert!(jobs::finish(db, &push_job, &finish, now).await.unwrap());
    let requeued = push::requeue_if_stale(db, &store_id("st_1"), (affiliate_id, day), now)
        .await
        .unwrap();
    assert!(requeued);
    w.app.run_due_jobs().await;
    assert_eq!(
        w.orders.current("AMZ-ab_st_1-a1-20261101").unwrap()["total"],
        "7.00"
    );
    assert_eq!(w.orders.count(), 1);
}

#[tokio::test]
async fn a_retried_dead_letter_and_the_next_sync_push_the_order_once() {
    let w = one_order_sync_world().connected().await;
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((wiremock::ResponseTemplate::new(422), false));
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE push_state = 'dead'", 1)
        .await;
    assert_eq!(w.retry_dead_letters().await, 1);
    // Another instance syncs before the retried push ran: still one push job for the order.
    *w.report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "11.00")];
    let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let outcome = w.run_sync(day, day).await;
    assert_eq!(
        outcome.pushes_enqueued, 0,
        "the retried dead letter holds the order's key"
    );
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'pending'", 1)
        .await;

    let (a, b) = tokio::join!(w.app.run_due_jobs(), w.app.run_due_jobs());
    assert!(a + b >= 1);
    assert_eq!(w.orders.count(), 1);
    assert_eq!(
        w.orders.current("AMZ-ab_st_1-a1-20261101").unwrap()["total"],
        "11.00"
    );
}
