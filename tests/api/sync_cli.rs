//! `attribution-bridge sync` tells the truth, over the real binary against the test database:
//! exit 0 only when every job of the store is done, 3 when a job failed for good, 4 when work
//! still waits past `--wait` (named on stderr with when it runs next). It waits for a job held by
//! a dead worker until that worker's lease ends, then runs it.
use std::time::Instant;

use attribution_bridge::store::jobs;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::{
    doubles::*,
    helpers::*,
    sync::{one_order_sync_world, sync_world},
    world::{World, three_pushed},
};

/// Runs the binary against the world's database and Amazon, with `extra` settings.
fn cli(w: &World, args: &[&str], extra: &[(&str, &str)]) -> CliRun {
    let mut env = w.amazon.env();
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    w.app.cli_with(args, env)
}

fn status_of(run: &CliRun) -> Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|_| panic!("{}\n{}", run.stdout, run.stderr))
}

async fn one_order_world() -> World {
    one_order_sync_world().connected().await
}

#[test]
fn the_exit_statuses_of_sync_are_in_its_help() {
    let help = run_cli(&["sync", "--help"], Vec::<(String, String)>::new());
    assert!(help.ok, "{}", help.stderr);
    for line in [
        "0  every job of the store is done",
        "3  a job failed for good",
        "4  work still waits past --wait",
    ] {
        assert!(help.stdout.contains(line), "{line}\n{}", help.stdout);
    }
}

#[tokio::test]
async fn sync_exits_0_when_every_job_is_done() {
    let w = one_order_world().await;
    let run = cli(&w, &["sync", "--store", "st_1"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(status_of(&run)["orders_pushed"], 1);
    assert_eq!(w.orders.count(), 1);
    assert!(!run.stderr.contains("waiting"), "{}", run.stderr);
}

#[tokio::test]
async fn sync_exits_3_naming_the_push_the_program_refused_for_good() {
    let w = one_order_world().await;
    w.orders.faults.lock().unwrap().push_back((
        ResponseTemplate::new(400).set_body_json(json!({"error": "affiliate not found"})),
        false,
    ));
    let run = cli(&w, &["sync", "--store", "st_1"], &[]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert_eq!(status_of(&run)["dead_letters"], 1);
    assert!(
        run.stderr
            .contains("failed for good: push of affiliate 1's order of 2026-11-01")
            && run.stderr.contains("affiliate not found")
            && run.stderr.contains("dead-letters --store st_1 --retry"),
        "{}",
        run.stderr
    );
    // Still not done on the next run: the dead letter waits for the operator.
    assert_eq!(cli(&w, &["sync", "--store", "st_1"], &[]).code, Some(3));
    // Once the cause is fixed and the letter retried, everything is done.
    assert!(cli(&w, &["dead-letters", "--retry"], &[]).ok);
    let run = cli(&w, &["sync", "--store", "st_1"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(w.orders.count(), 1);
}

#[tokio::test]
async fn sync_exits_4_naming_what_still_waits_and_until_when() {
    let w = one_order_world().await;
    w.orders
        .faults
        .lock()
        .unwrap()
        .push_back((ResponseTemplate::new(503), false));
    let before = Utc::now();
    let started = Instant::now();
    // The program is down; its next try is an hour away, far past --wait.
    let run = cli(
        &w,
        &["sync", "--store", "st_1", "--wait", "60"],
        &[("APP__JOBS__RETRY_SCHEDULE_SECS", "3600")],
    );
    assert_eq!(run.code, Some(4), "{}", run.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(50),
        "gave up at once: the retry is beyond --wait"
    );
    assert_eq!(status_of(&run)["jobs_waiting"], 1);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("waiting: push of affiliate 1's order of 2026-11-01"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(
        line.contains("next try at") && line.contains("503"),
        "{line}"
    );
    let at: DateTime<Utc> = line
        .split("next try at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    let wait = (at - before).num_seconds();
    assert!((2800..=4400).contains(&wait), "an hour ± 20 %: {wait} s");
    assert_eq!(w.orders.count(), 0);
}

#[tokio::test]
async fn sync_waits_for_a_job_a_dead_worker_held_and_then_runs_it() {
    let w = one_order_world().await;
    w.queue_sync(None).await;
    w.app.run_one_job().await;
    // Another process took the push for a lease of 4 s and was killed before it sent anything.
    let now = Utc::now();
    let held = jobs::claim(
        &w.app.state.deps.db,
        now,
        now + chrono::Duration::seconds(4),
    )
    .await
    .unwrap()
    .expect("the push is due");
    assert_eq!(held.kind, "push_order");

    let run = cli(&w, &["sync", "--store", "st_1", "--wait", "30"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // It was run here once the dead worker's lease had ended, not before.
    let attempts = entity::job_attempts::Entity::find()
        .filter(entity::job_attempts::Column::JobId.eq(held.id))
        .all(&w.app.state.deps.db)
        .await
        .unwrap();
    let [ran] = attempts.as_slice() else {
        panic!("one attempt recorded, not {attempts:?}");
    };
    assert_eq!((ran.attempt, ran.outcome.as_str()), (2, "ok"));
    assert!(ran.started_at >= held.lease_until.unwrap(), "{ran:?}");
    assert_eq!(w.orders.count(), 1);
    assert_eq!(*w.orders.writes.lock().unwrap(), 1);
    w.app
        .assert_rows("orders WHERE push_state = 'pushed'", 1)
        .await;
}

/// Waits (bounded) until `done` holds: for what other processes do, which no test can drive.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// DESIGN §6: a crashed worker's work resumes within a lease. Three `sync` processes are killed
/// in the middle of their pushes (the program had stored each order, its answer never came
/// back); one more `sync` finishes the job: every order exactly once, to the cent.
#[tokio::test]
async fn three_syncs_killed_mid_push_then_one_sync_leaves_every_order_exact() {
    let rows = (1..=3)
        .map(|a| report_row("20261101", a, 10, 1, &format!("{a}0.00")))
        .collect();
    let w = sync_world(3).report(rows).connected().await;
    for _ in 0..3 {
        let hangs = ResponseTemplate::new(201).set_delay(std::time::Duration::from_secs(120));
        w.orders.faults.lock().unwrap().push_back((hangs, true));
    }
    let short = [
        ("APP__JOBS__LEASE_SECS", "3"),
        ("APP__JOBS__HEARTBEAT_SECS", "1"),
    ];
    let mut env = w.app.env();
    env.extend(w.amazon.env());
    env.extend(
        short
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut killed: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_attribution-bridge"))
                .args(["sync", "--store", "st_1"])
                .envs(env.clone())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Each process holds one push (its heartbeat keeps the others off it) when they are killed.
    until("three pushes reached the program", || {
        *w.orders.writes.lock().unwrap() == 3
    })
    .await;
    for process in &mut killed {
        process.kill().unwrap();
        process.wait().unwrap();
    }
    w.app
        .assert_rows("jobs WHERE kind = 'push_order' AND status = 'running'", 3)
        .await;

    let started = Instant::now();
    let run = cli(&w, &["sync", "--store", "st_1"], &short);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert_eq!(w.orders.count(), 3);
    assert_eq!(*w.orders.writes.lock().unwrap(), 3, "nothing sent twice");
    for a in 1..=3 {
        let order = w
            .orders
            .current(&format!("AMZ-ab_st_1-a{a}-20261101"))
            .unwrap();
        assert_eq!(order["total"], format!("{a}0.00"));
        assert_eq!(order["commission"], format!("{a}.00"));
    }
    w.app
        .assert_rows(
            "orders WHERE push_state = 'pushed' AND pushed_version = version",
            3,
        )
        .await;
    w.app
        .assert_rows("jobs WHERE status IN ('pending', 'running', 'dead')", 0)
        .await;
}

#[tokio::test]
async fn a_range_that_ends_before_it_starts_or_has_one_end_is_refused_with_status_2_queuing_nothing()
 {
    let w = one_order_world().await;
    let jobs_before = w.app.count("SELECT COUNT(*) FROM jobs").await;
    let run = cli(&w, &sync_range("2026-11-10", "2026-11-01"), &[]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("--from 2026-11-10 is later than --to 2026-11-01"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
    for one_end in [["--from", "2026-11-01"], ["--to", "2026-11-10"]] {
        let mut args = vec!["sync", "--store", "st_1"];
        args.extend(one_end);
        let run = cli(&w, &args, &[]);
        assert_eq!(run.code, Some(2), "{one_end:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("the following required arguments were not provided"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(
        w.app.count("SELECT COUNT(*) FROM jobs").await,
        jobs_before,
        "nothing queued"
    );
    assert_eq!(w.orders.count(), 0);
    // Days outside the 60 a sync reads: none has figures yet, or they are final. The command
    // runs on the real clock, so the days are counted from the real today (UTC, as this store's
    // marketplace has no zone).
    let day =
        |ago: i64| (chrono::Utc::now().date_naive() - chrono::Duration::days(ago)).to_string();
    for (from, to, says) in [
        (day(1), day(-1), "is not before today"),
        (day(1), day(0), "is not before today"),
        (day(61), day(30), "more than 60 days ago"),
    ] {
        let run = cli(&w, &sync_range(&from, &to), &[]);
        assert_eq!(run.code, Some(2), "{from}..{to}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{}", run.stderr);
        assert!(run.stderr.contains("nothing was queued"), "{}", run.stderr);
    }
    assert_eq!(w.app.count("SELECT COUNT(*) FROM jobs").await, jobs_before);
    // The same day as first and last is a range of one day; the window's ends are in it.
    for (from, to) in [(day(3), day(3)), (day(60), day(1))] {
        let run = cli(&w, &sync_range(&from, &to), &[]);
        assert_eq!(run.code, Some(0), "{from}..{to}: {}", run.stderr);
    }
}

#[tokio::test]
async fn sync_names_the_held_decreases_that_wait_for_the_merchant() {
    let w = three_pushed("0.3").await;
    let run = cli(&w, &["sync", "--store", "st_1"], &[]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        !run.stderr.contains("wait for the merchant"),
        "{}",
        run.stderr
    );
    // Amazon now says every sale is gone: too much at once, so the decreases are held.
    w.set_rows(
        (1..=3)
            .map(|a| report_row("20261118", a, 10, 0, "0"))
            .collect(),
    );
    w.sync_now().await;
    w.app
        .assert_rows("orders WHERE hold_state = 'held'", 3)
        .await;
    let run = cli(&w, &["sync", "--store", "st_1"], &[]);
    assert_eq!(
        run.code,
        Some(0),
        "the exit status is unchanged: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(
            "held: 3 decrease(s) of the store's orders wait for the merchant's Apply or Discard \
             on the store's Overview page"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(status_of(&run)["orders_pushed"], 3);
}

#[tokio::test]
async fn sync_with_its_stdout_closed_still_does_the_work_and_exits_by_it() {
    let w = one_order_world().await;
    let mut env = w.app.env();
    env.extend(w.amazon.env());
    let run = crate::cli::run_with_stdout_closed(&["sync", "--store", "st_1"], env);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert_eq!(w.orders.count(), 1);
}

/// `sync --store st_1 --from FROM --to TO`.
fn sync_range<'a>(from: &'a str, to: &'a str) -> [&'a str; 7] {
    ["sync", "--store", "st_1", "--from", from, "--to", to]
}

/// A sync Amazon refused for good (the merchant revoked the app's access) is a failed job, not a
/// dead letter of the program: `sync` exits 3 and its status counts it as such, and the pages
/// name it beside the orders the program refused (none here).
#[tokio::test]
async fn a_sync_amazon_refused_for_good_is_counted_as_a_failed_job_not_a_refused_order() {
    let w = one_order_world().await;
    w.amazon.lwa.0.lock().unwrap().revoked = true;
    let run = cli(&w, &["sync", "--store", "st_1", "--wait", "0"], &[]);
    eprintln!("{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    let status = status_of(&run);
    assert_eq!(
        (
            status["dead_letters"].as_u64(),
            status["failed_jobs"].as_u64()
        ),
        (Some(0), Some(1))
    );
    let overview = w.app.page("/app/stores/st_1").await;
    assert!(overview.contains("Refused by the program: 0"), "{overview}");
    assert!(
        overview.contains("Syncs that failed for good: 1"),
        "{overview}"
    );
    let activity = w.app.page("/app/stores/st_1/activity").await;
    assert!(
        activity.contains(r#"Failed for good: <span id="dead-count">1<"#),
        "{activity}"
    );
}
