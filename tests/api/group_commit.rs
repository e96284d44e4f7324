//! The webhook intake's group commit (issue 11): deliveries that arrive together are committed in
//! one transaction and each answered once it committed; a batch that fails is committed one
//! delivery at a time, so a bad delivery fails alone with a 503 and nothing of it is kept.
use futures_util::future::join_all;
use serde_json::Value;

use crate::{
    helpers::*,
    observability::{sample, scrape},
};

/// Delivers `events` (id, event) at once while the writer is held, so that they form one batch;
/// returns each answer's status and receipt, in order.
async fn burst(app: &TestApp, events: &[(String, Value)]) -> Vec<(u16, String)> {
    let intake = &app.state.intake;
    intake.hold();
    let sent = join_all(events.iter().map(|(id, event)| app.deliver(id, event)));
    let (answers, ()) = tokio::join!(sent, async {
        intake.wait_pending(events.len()).await;
        intake.release();
    });
    let mut out = vec![];
    for answer in answers {
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or_default();
        let receipt = body["status"].as_str().or(body["code"].as_str());
        out.push((status, receipt.unwrap_or_default().to_owned()));
    }
    out
}

/// [`burst`], each delivery reaching the writer after the one before it, received a second after
/// it by the app's clock: one batch, in order.
async fn burst_in_order(app: &TestApp, events: &[(String, Value)]) -> Vec<(u16, String)> {
    use futures_util::{StreamExt, stream::FuturesOrdered};
    let intake = &app.state.intake;
    intake.hold();
    let mut sent = FuturesOrdered::new();
    for (n, (id, event)) in events.iter().enumerate() {
        let next = app.clock_now() + chrono::Duration::seconds(1);
        app.set_clock(&next.to_rfc3339());
        sent.push_back(app.deliver(id, event));
        // The deliveries sent so far are driven until this one waits in the writer's queue.
        let queued = intake.wait_pending(n + 1);
        tokio::pin!(queued);
        tokio::select! {
            () = &mut queued => {}
            Some(_) = sent.next() => panic!("a held writer answered"),
        }
    }
    intake.release();
    let mut out = vec![];
    while let Some(answer) = sent.next().await {
        let status = answer.status().as_u16();
        let body: Value = answer.json().await.unwrap_or_default();
        out.push((
            status,
            body["status"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    out
}

/// Delivers `events` (ids `{prefix}-1`, `{prefix}-2`, …) as one group in this order, checks that
/// it was committed together (not split), and returns each one's receipt.
async fn one_group_in_order(app: &TestApp, prefix: &str, events: Vec<Value>) -> Vec<String> {
    let events: Vec<_> = events
        .into_iter()
        .enumerate()
        .map(|(n, e)| (format!("{prefix}-{}", n + 1), e))
        .collect();
    let before = batches(app).await;
    let answers = burst_in_order(app, &events).await;
    let after = batches(app).await;
    assert_eq!(
        (after.0 - before.0, after.2 - before.2),
        (1.0, 0.0),
        "one batch, not split"
    );
    answers.into_iter().map(|(_, receipt)| receipt).collect()
}

/// Group commits so far, the deliveries in them, and the batches split, from `/metrics`.
async fn batches(app: &TestApp) -> (f64, f64, f64) {
    let text = scrape(app).await;
    let read = |series| sample(&text, series).unwrap_or(0.0);
    (
        read("attribution_bridge_webhook_batch_size_count"),
        read("attribution_bridge_webhook_batch_size_sum"),
        read("attribution_bridge_webhook_batches_split_total"),
    )
}

fn affiliates(from: i64, to: i64) -> Vec<(String, Value)> {
    (from..=to)
        .map(|a| {
            (
                format!("burst-{a}"),
                affiliate_event("affiliate.created", "st_1", a, &format!("Affiliate {a}")),
            )
        })
        .collect()
}

#[tokio::test]
async fn deliveries_arriving_together_are_committed_in_one_batch_and_each_answered() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    let before = batches(&app).await;
    // The same id twice in one batch: the second finds the first's row, inside the transaction.
    let mut events = affiliates(1, 30);
    events.push(events[0].clone());
    let answers = burst(&app, &events).await;
    let mut expected = vec![(200, "processed".to_owned()); 30];
    expected.push((200, "duplicate".to_owned()));
    assert_eq!(answers, expected);
    app.assert_counts(&[
        ("affiliates WHERE store_id = 'st_1'", 30),
        ("webhook_inbox WHERE webhook_id LIKE 'burst-%'", 30),
    ])
    .await;
    let after = batches(&app).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1.0, 31.0, 0.0),
        "one batch of 31 deliveries, committed together"
    );
}

/// A trigger that refuses affiliate 13 of any store, so that its delivery fails in the database.
async fn refuse_affiliate_13(app: &TestApp) {
    if app.db.is_postgres() {
        app.execute(
            "CREATE FUNCTION refuse_13() RETURNS trigger AS $$ BEGIN \
             IF NEW.affiliate_id = 13 THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; \
             END $$ LANGUAGE plpgsql",
        )
        .await;
        app.execute(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON affiliates \
             FOR EACH ROW EXECUTE FUNCTION refuse_13()",
        )
        .await;
    } else {
        app.execute(
            "CREATE TRIGGER refuse_13 BEFORE INSERT ON affiliates WHEN NEW.affiliate_id = 13 \
             BEGIN SELECT RAISE(ABORT, 'refused'); END",
        )
        .await;
    }
}

#[tokio::test]
async fn a_delivery_the_database_refuses_fails_alone_with_503_and_its_neighbours_commit() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    refuse_affiliate_13(&app).await;
    let before = batches(&app).await;
    let answers = burst(&app, &affiliates(10, 16)).await;
    for (a, answer) in (10..=16).zip(&answers) {
        let expected = if a == 13 {
            (503, "unavailable".to_owned())
        } else {
            (200, "processed".to_owned())
        };
        assert_eq!(*answer, expected, "affiliate {a}");
    }
    // Nothing of the refused delivery is kept, not even its inbox row: the platform's retry
    // of it is processed once the cause is gone.
    app.assert_counts(&[
        ("affiliates WHERE store_id = 'st_1'", 6),
        ("webhook_inbox WHERE webhook_id = 'burst-13'", 0),
    ])
    .await;
    let after = batches(&app).await;
    assert_eq!(
        (after.0 - before.0, after.2 - before.2),
        (1.0, 1.0),
        "one batch, split"
    );
    app.execute(if app.db.is_postgres() {
        "DROP TRIGGER refuse_13 ON affiliates"
    } else {
        "DROP TRIGGER refuse_13"
    })
    .await;
    let retry = affiliates(13, 13);
    let again = app.deliver(&retry[0].0, &retry[0].1).await;
    assert_eq!(again.status(), 200);
    app.assert_rows("affiliates WHERE affiliate_id = 13", 1)
        .await;
}

#[tokio::test]
async fn with_the_database_failing_every_delivery_is_503_and_nothing_is_kept() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    app.execute("ALTER TABLE webhook_inbox RENAME TO webhook_inbox_away")
        .await;
    let answers = burst(&app, &affiliates(1, 5)).await;
    assert_eq!(answers, vec![(503, "unavailable".to_owned()); 5]);
    app.execute("ALTER TABLE webhook_inbox_away RENAME TO webhook_inbox")
        .await;
    app.assert_rows("affiliates WHERE store_id = 'st_1'", 0)
        .await;
    // The platform retries: each is processed once.
    let answers = burst(&app, &affiliates(1, 5)).await;
    assert_eq!(answers, vec![(200, "processed".to_owned()); 5]);
    app.assert_rows("affiliates WHERE store_id = 'st_1'", 5)
        .await;
}

#[tokio::test]
async fn a_group_mints_links_for_the_affiliates_of_connected_stores_alone() {
    // st_1 is connected to Amazon; st_2 is installed and not connected.
    let w = crate::world::store_with(2).connected().await;
    w.app.install("st_2", "t").await;
    let before = batches(&w.app).await;
    let mut events = vec![];
    for a in 71..=73 {
        for store in ["st_1", "st_2"] {
            let event = affiliate_event("affiliate.created", store, a, &format!("Affiliate {a}"));
            events.push((format!("{store}-{a}"), event));
        }
    }
    let answers = burst(&w.app, &events).await;
    assert_eq!(answers, vec![(200, "processed".to_owned()); 6]);
    let after = batches(&w.app).await;
    assert_eq!(
        (after.0 - before.0, after.1 - before.1, after.2 - before.2),
        (1.0, 6.0, 0.0),
        "one batch of 6 deliveries, committed together"
    );
    // Each new affiliate of the connected store has its link; the other store has none to mint.
    let links = w.links().await;
    for a in 71..=73 {
        assert!(
            links
                .iter()
                .any(|l| l.affiliate_id == a && l.url.contains(&format!("aa_adgroupid=a{a}"))),
            "affiliate {a}: {links:?}"
        );
    }
    w.app
        .assert_counts(&[
            ("affiliates WHERE store_id = 'st_2'", 3),
            ("links WHERE store_id = 'st_2'", 0),
            ("links WHERE store_id = 'st_1' AND retired_at IS NULL", 5),
        ])
        .await;
}

#[tokio::test]
async fn a_group_applies_each_stores_affiliate_changes_in_the_order_they_arrived() {
    // st_1 is installed (not connected); st_9 was never installed; st_2 was uninstalled.
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    app.install("st_2", "t").await;
    app.send(&store_event("app.uninstalled", "st_2")).await;
    let upsert = |store, a, name| affiliate_event("affiliate.updated", store, a, name);
    let receipts = one_group_in_order(
        &app,
        "o",
        vec![
            upsert("st_1", 1, "First"),
            upsert("st_1", 1, "Second"),
            upsert("st_9", 1, "Nobody's"),
            upsert("st_2", 1, "Gone"),
            upsert("st_1", 2, "Two"),
            affiliate_deleted_event("st_1", 2),
            upsert("st_1", 3, "Three"),
            affiliate_deleted_event("st_1", 3),
            upsert("st_1", 3, "Three again"),
        ],
    )
    .await;
    assert_eq!(
        receipts,
        [
            "processed",
            "processed",
            "ignored",
            "ignored",
            "processed",
            "processed",
            "processed",
            "processed",
            "processed"
        ]
    );
    let rows = app
        .rows_json(
            "SELECT affiliate_id, name, CASE WHEN deleted_at IS NULL THEN 'yes' ELSE 'no' END AS current \
             FROM affiliates \
             WHERE store_id = 'st_1' ORDER BY affiliate_id",
        )
        .await;
    let seen: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["affiliate_id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_owned(),
                r["current"] == "yes",
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (1, "Second".to_owned(), true),
            (2, "Two".to_owned(), false),
            (3, "Three again".to_owned(), true),
        ],
        "the later of two changes wins, and a delete between two upserts stays between them"
    );
    app.assert_counts(&[
        ("affiliates WHERE store_id IN ('st_2', 'st_9')", 0),
        (
            "webhook_inbox WHERE webhook_id IN ('o-3', 'o-4') AND outcome = 'ignored'",
            2,
        ),
        (
            "webhook_inbox WHERE webhook_id LIKE 'o-%' AND outcome = 'applied'",
            7,
        ),
    ])
    .await;
}

#[tokio::test]
async fn installs_and_uninstalls_in_a_group_keep_their_place_among_affiliate_changes() {
    let app = spawn_app().await;
    app.install("st_1", "t").await;
    let upsert = |store, a, name| affiliate_event("affiliate.updated", store, a, name);
    let without_ref_code = serde_json::json!({"type": "affiliate.created", "data": {
        "store_id": "st_9", "affiliate": {"id": 1, "name": "No code"}}});
    let receipts = one_group_in_order(
        &app,
        "p",
        vec![
            upsert("st_9", 1, "Too early"),
            install_event("st_9", "t9"),
            without_ref_code,
            upsert("st_1", 5, "Five"),
            upsert("st_1", 5, "Five renamed"),
            store_event("app.uninstalled", "st_1"),
            upsert("st_1", 6, "Too late"),
        ],
    )
    .await;
    assert_eq!(
        receipts,
        [
            "ignored",
            "processed",
            "processed",
            "processed",
            "processed",
            "processed",
            "ignored"
        ]
    );
    app.assert_counts(&[
        (
            "affiliates WHERE store_id = 'st_9' AND affiliate_id = 1 \
             AND name = 'No code' AND ref_code IS NULL",
            1,
        ),
        // Created by the first change, updated by the second, a second later.
        (
            "affiliates WHERE store_id = 'st_1' AND affiliate_id = 5 \
             AND name = 'Five renamed' AND created_at < updated_at",
            1,
        ),
        ("affiliates WHERE store_id = 'st_1' AND affiliate_id = 6", 0),
        (
            "webhook_inbox WHERE webhook_id IN ('p-1', 'p-7') AND outcome = 'ignored'",
            2,
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_connected_stores_affiliate_changes_in_a_group_leave_their_links_as_one_by_one() {
    // st_1 is connected to Amazon with affiliates 1 and 2, each with its link; st_2 is installed
    // and not connected.
    let w = crate::world::store_with(2).connected().await;
    w.app.install("st_2", "t").await;
    let upsert = |a, name| affiliate_event("affiliate.updated", "st_1", a, name);
    let receipts = one_group_in_order(
        &w.app,
        "c",
        vec![
            upsert(81, "New"),
            upsert(82, "Also new"),
            affiliate_event("affiliate.created", "st_2", 81, "Elsewhere"),
            upsert(81, "New, renamed"),
            affiliate_deleted_event("st_1", 2),
            upsert(2, "Back again"),
            affiliate_deleted_event("st_1", 1),
            upsert(83, "Newer"),
        ],
    )
    .await;
    assert_eq!(receipts, ["processed"; 8]);
    let mut live: Vec<i64> = w.links().await.iter().map(|l| l.affiliate_id).collect();
    live.sort();
    assert_eq!(live, [2, 81, 82, 83], "affiliate 1 left; 2 came back");
    w.app
        .assert_counts(&[
            ("links WHERE store_id = 'st_1' AND retired_at IS NULL", 4),
            (
                "links WHERE store_id = 'st_1' AND affiliate_id = 1 AND retired_at IS NOT NULL",
                1,
            ),
            ("links WHERE store_id = 'st_2'", 0),
            ("affiliates WHERE store_id = 'st_2'", 1),
        ])
        .await;
}
