//! A worker that dies between any two steps leaves a state from which the next run converges to
//! exactly the right orders. "Dying" is a claimed job that is never finished: its lease expires.
use attribution_bridge::{flows::scheduler, flows::sync};
use chrono::Duration;
use sea_orm::{ConnectionTrait, Statement};

use crate::{doubles::*, sync::*};

/// A worker takes the next job and dies holding it.
async fn claim_and_die(w: &SyncWorld) -> entity::jobs::Model {
    let now = w.app.clock_now();
    attribution_bridge::store::jobs::claim(&w.app.state.deps.db, now, now + Duration::seconds(300))
        .await
        .unwrap()
        .expect("a job is due")
}

async fn past_the_lease(w: &SyncWorld) {
    w.app.clock.advance(Duration::seconds(301));
}

/// A connected store with this report, its sync queued.
async fn queued(affiliates: usize, rows: Vec<serde_json::Value>) -> SyncWorld {
    let w = sync_world(0, affiliates, &[]).await;
    *w.report.rows.lock().unwrap() = rows;
    scheduler::enqueue_now(&w.app.state.deps, &st1(), None, "test")
        .await
        .unwrap();
    w
}

/// As `queued`, with the sync run: the pushes are queued.
async fn synced(affiliates: usize, rows: Vec<serde_json::Value>) -> SyncWorld {
    let w = queued(affiliates, rows).await;
    run_one(&w.app).await;
    w
}

/// A worker takes the next push and dies holding it.
async fn claim_push(w: &SyncWorld) -> (entity::jobs::Model, i64, chrono::NaiveDate) {
    let job = claim_and_die(w).await;
    let attribution_bridge::flows::tasks::Task::PushOrder { affiliate_id, day } =
        serde_json::from_str(&job.payload).unwrap()
    else {
        panic!("the next job is a push");
    };
    (job, affiliate_id, day)
}

fn two_rows() -> Vec<serde_json::Value> {
    vec![
        report_row("20261101", 1, 10, 1, "10.00"),
        report_row("20261102", 2, 20, 2, "40.00"),
    ]
}

async fn assert_converged(w: &SyncWorld) {
    assert_eq!(w.orders.count(), 2, "each order exactly once");
    assert_eq!(*w.orders.writes.lock().unwrap(), 2, "each sent once");
    assert_eq!(w.app.count("SELECT COUNT(*) FROM orders WHERE push_state = 'pushed' AND pushed_version = version").await, 2);
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running')")
            .await,
        0
    );
}

#[tokio::test]
async fn a_worker_dying_before_the_sync_commits() {
    let w = queued(2, two_rows()).await;
    claim_and_die(&w).await;
    assert_eq!(drain(&w.app).await, 0, "leased to the dead worker");
    past_the_lease(&w).await;
    drain(&w.app).await;
    assert_converged(&w).await;
}

#[tokio::test]
async fn a_worker_dying_after_the_sync_committed_but_before_its_job_was_done() {
    let w = queued(2, two_rows()).await;
    let job = claim_and_die(&w).await;
    let attribution_bridge::flows::tasks::Task::SyncStore { from, to, .. } =
        serde_json::from_str(&job.payload).unwrap()
    else {
        panic!()
    };
    sync::run(&w.app.state.deps, &st1(), (from, to), "test", None)
        .await
        .unwrap();
    past_the_lease(&w).await;
    drain(&w.app).await;
    assert_converged(&w).await;
}

#[tokio::test]
async fn a_worker_dying_just_before_sending_a_create() {
    let w = synced(2, two_rows()).await;
    // The push worker marked the create as attempted, then died before the request left.
    claim_and_die(&w).await;
    let db = &w.app.state.deps.db;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE orders SET create_attempted = TRUE WHERE affiliate_id = 1".to_owned(),
    ))
    .await
    .unwrap();
    past_the_lease(&w).await;
    drain(&w.app).await;
    assert_converged(&w).await;
}

#[tokio::test]
async fn a_worker_dying_after_the_program_stored_the_order() {
    let w = synced(2, two_rows()).await;
    let (_job, affiliate_id, day) = claim_push(&w).await;
    // The create reached the program; the worker died before writing down the answer.
    let db = &w.app.state.deps.db;
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        format!("UPDATE orders SET create_attempted = TRUE WHERE affiliate_id = {affiliate_id}"),
    ))
    .await
    .unwrap();
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
    past_the_lease(&w).await;
    drain(&w.app).await;
    assert_converged(&w).await;
}

#[tokio::test]
async fn a_worker_dying_after_recording_the_push_but_before_its_job_was_done() {
    let w = synced(2, two_rows()).await;
    let (_job, affiliate_id, day) = claim_push(&w).await;
    attribution_bridge::flows::push::run(&w.app.state.deps, &st1(), (affiliate_id, day))
        .await
        .unwrap();
    past_the_lease(&w).await;
    drain(&w.app).await;
    assert_converged(&w).await;
}

#[tokio::test]
async fn two_workers_racing_on_one_queue_run_each_job_once() {
    let w = sync_world(0, 40, &[]).await;
    *w.report.rows.lock().unwrap() = (1..=40)
        .map(|a| report_row("20261101", a, 10, 1, "10.00"))
        .collect();
    scheduler::enqueue_now(&w.app.state.deps, &st1(), None, "test")
        .await
        .unwrap();
    run_one(&w.app).await;
    // Three workers, as three instances on one database would run.
    let (a, b, c) = tokio::join!(drain(&w.app), drain(&w.app), drain(&w.app));
    assert_eq!(a + b + c, 40);

    assert_eq!(w.orders.count(), 40);
    assert_eq!(*w.orders.writes.lock().unwrap(), 40, "no order sent twice");
    let twice = w.app.count("SELECT COUNT(*) FROM (SELECT job_id FROM job_attempts GROUP BY job_id HAVING COUNT(*) > 1) t").await;
    assert_eq!(twice, 0);
}

#[tokio::test]
async fn two_schedulers_enqueue_each_store_day_once() {
    let w = sync_world(0, 1, &[]).await;
    // 07:00 in Los Angeles, past the 06:00 default.
    w.app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2026-11-20T15:00:00Z")
            .unwrap()
            .into(),
    );
    let (a, b) = tokio::join!(
        scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now()),
        scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now())
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(
        scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now())
            .await
            .unwrap(),
        0,
        "already enqueued today"
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'sync_store'")
            .await,
        1
    );
    // Before 06:00 local time the next day, nothing; after, the next day's sync.
    w.app.clock.advance(Duration::hours(13));
    assert_eq!(
        scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now())
            .await
            .unwrap(),
        0
    );
    w.app.clock.advance(Duration::hours(12));
    assert_eq!(
        scheduler::enqueue_due(&w.app.state.deps, w.app.clock_now())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn a_worker_whose_lease_expired_cannot_finish_the_job_it_lost() {
    let w = sync_world(0, 1, &[]).await;
    scheduler::enqueue_now(&w.app.state.deps, &st1(), None, "test")
        .await
        .unwrap();
    let first = claim_and_die(&w).await;
    past_the_lease(&w).await;
    let now = w.app.clock_now();
    let second = attribution_bridge::store::jobs::claim(
        &w.app.state.deps.db,
        now,
        now + Duration::seconds(300),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((second.id, second.attempts), (first.id, 2));
    let late = attribution_bridge::store::jobs::finish(
        &w.app.state.deps.db,
        &first,
        &attribution_bridge::store::jobs::Finish::Dead {
            error: "late".into(),
        },
        now,
    )
    .await
    .unwrap();
    assert!(!late, "the first worker's outcome is dropped");
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE status = 'running'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_restatement_computed_while_its_push_runs_is_pushed_next() {
    let w = synced(1, vec![report_row("20261101", 1, 10, 1, "10.00")]).await;
    // The push of version 1 is under way (its job holds the order's queue key)…
    let (push, affiliate_id, day) = claim_push(&w).await;
    attribution_bridge::flows::push::run(&w.app.state.deps, &st1(), (affiliate_id, day))
        .await
        .unwrap();
    // …when Amazon restates the day and a sync computes version 2: its push cannot be queued yet.
    *w.report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "7.00")];
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    scheduler::enqueue_now(&w.app.state.deps, &st1(), Some((day, day)), "test")
        .await
        .unwrap();
    run_one(&w.app).await;
    // The push finishes as the worker finishes it; the newer version is queued then.
    let now = w.app.clock_now();
    assert!(
        attribution_bridge::store::jobs::finish(
            &w.app.state.deps.db,
            &push,
            &attribution_bridge::store::jobs::Finish::Done { free_key: true },
            now
        )
        .await
        .unwrap()
    );
    assert!(
        attribution_bridge::flows::push::requeue_if_stale(
            &w.app.state.deps.db,
            &st1(),
            (affiliate_id, day),
            now
        )
        .await
        .unwrap()
    );
    drain(&w.app).await;
    assert_eq!(
        w.orders.current("AMZ-ab_st_1-a1-20261101").unwrap()["total"],
        "7.00"
    );
    assert_eq!(w.orders.count(), 1);
}

#[tokio::test]
async fn a_retried_dead_letter_and_the_next_sync_push_the_order_once() {
    let w = sync_world(0, 1, &[]).await;
    *w.report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "10.00")];
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((wiremock::ResponseTemplate::new(422), false));
    scheduler::enqueue_now(&w.app.state.deps, &st1(), None, "test")
        .await
        .unwrap();
    drain(&w.app).await;
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM orders WHERE push_state = 'dead'")
            .await,
        1
    );
    assert_eq!(
        attribution_bridge::flows::push::retry_dead_letters(
            &w.app.state.deps.db,
            Some(&st1()),
            w.app.clock_now()
        )
        .await
        .unwrap(),
        1
    );
    // Another instance syncs before the retried push ran: still one push job for the order.
    *w.report.rows.lock().unwrap() = vec![report_row("20261101", 1, 10, 1, "11.00")];
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    let outcome = sync::run(&w.app.state.deps, &st1(), (day, day), "test", None)
        .await
        .unwrap();
    assert_eq!(
        outcome.pushes_enqueued, 0,
        "the retried dead letter holds the order's key"
    );
    assert_eq!(
        w.app
            .count("SELECT COUNT(*) FROM jobs WHERE kind = 'push_order' AND status = 'pending'")
            .await,
        1
    );

    let (a, b) = tokio::join!(drain(&w.app), drain(&w.app));
    assert!(a + b >= 1);
    assert_eq!(w.orders.count(), 1);
    assert_eq!(
        w.orders.current("AMZ-ab_st_1-a1-20261101").unwrap()["total"],
        "11.00"
    );
}
