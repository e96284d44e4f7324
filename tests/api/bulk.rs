//! What the sync writes in bulk (`store::bulk`) reads back exactly as written, on both
//! databases: figures, orders and versions, and instants that compare with bound ones as the
//! driver's own do (a commission changed at the very instant an order was computed does not make
//! that order stale, one a microsecond later does).
use std::collections::BTreeSet;

use attribution_bridge::{
    db,
    domain::figures::Figures,
    store::{
        OrderStatus, PushState,
        ledger::{self, Order, Span},
    },
};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use crate::helpers::{TestDb, store_id};

fn order(affiliate_id: i64, day: NaiveDate, at: DateTime<Utc>) -> Order {
    Order {
        store_id: "st_bulk".into(),
        affiliate_id,
        day,
        number: format!("AMZ-ab_st_bulk-a{affiliate_id}-{}", day.format("%Y%m%d")),
        currency: "USD".into(),
        clicks: 30,
        purchases: 3,
        units: 4,
        sales_minor: 19_196,
        commission_minor: 1_920,
        status: OrderStatus::Approved,
        version: 1,
        basis: "10% of promoted sales; it's \"quoted\", with ; and ,".into(),
        computed_at: at,
        push_state: PushState::Pending,
        pushed_version: 0,
        pushed_sales_minor: None,
        pushed_commission_minor: None,
        pushed_status: None,
        remote_id: None,
        create_attempted: false,
        last_push_error: None,
        pushed_at: None,
        created_at: at,
        updated_at: at,
        held: None,
        hold_state: None,
        held_at: None,
    }
}

#[tokio::test]
async fn rows_written_in_bulk_read_back_as_written() {
    let test_db = TestDb::new().await;
    let settings = attribution_bridge::config::DatabaseSettings {
        url: test_db.url.clone().into(),
        max_connections: 2,
    };
    let conn = db::connect_and_migrate(&settings).await.expect("database");
    let store = store_id("st_bulk");
    // An instant with nanoseconds: the drivers keep what they can of it, the same way.
    let at = DateTime::parse_from_rfc3339("2026-11-20T06:00:01.123456789Z")
        .unwrap()
        .with_timezone(&Utc);
    let first = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
    // More rows than one statement takes, so that chunks meet.
    let keys: Vec<(i64, NaiveDate)> = (1..=130)
        .flat_map(|a| (0..60).map(move |d| (a, first + Duration::days(d))))
        .collect();
    let figures: Vec<_> = keys
        .iter()
        .map(|&(a, d)| {
            let f = Figures {
                clicks: a,
                detail_page_views: 2,
                add_to_carts: 3,
                purchases: 4,
                units: 5,
                sales_minor: a * 1_000 + i64::from(d.ordinal0()),
                total_purchases: 6,
                total_units: 7,
                total_sales_minor: 8,
                brb_minor: 9,
            };
            ((a, d), f)
        })
        .collect();
    ledger::insert_figures(&conn, &store, &figures, at)
        .await
        .expect("figures in bulk");
    let orders: Vec<Order> = keys.iter().map(|&(a, d)| order(a, d, at)).collect();
    ledger::insert_orders(&conn, &orders)
        .await
        .expect("orders in bulk");

    let range = (first, first + Duration::days(59));
    let stored = ledger::figures_in(&conn, &store, Span::days(range))
        .await
        .unwrap();
    assert_eq!(stored.len(), figures.len());
    for (key, f) in &figures {
        assert_eq!(&stored[key].figures, f, "{key:?}");
        assert_eq!(stored[key].absent_since, None);
    }
    let back = ledger::orders_of(&conn, &store).await.unwrap();
    assert_eq!(back.len(), orders.len());
    let expected_at = if test_db.is_postgres() {
        // PostgreSQL keeps microseconds, cut as sqlx cuts them.
        DateTime::parse_from_rfc3339("2026-11-20T06:00:01.123456Z")
            .unwrap()
            .with_timezone(&Utc)
    } else {
        at
    };
    for o in &back {
        let mut want = order(o.affiliate_id, o.day, expected_at);
        want.store_id = o.store_id.clone();
        assert_eq!(o, &want);
    }
    let versions = ledger::versions_of(&conn, &store).await.unwrap();
    assert_eq!(versions.len(), orders.len());
    assert!(versions.values().all(|v| v.len() == 1
        && v[0].version == 1
        && v[0].commission_minor == 1_920
        && v[0].created_at == expected_at));

    // A commission changed at the instant the orders were computed leaves them current; one a
    // microsecond later makes every one stale.
    let none = ledger::computed_before(&conn, &store, Span::days(range), at)
        .await
        .unwrap();
    assert_eq!(none, BTreeSet::new());
    let later = at + Duration::microseconds(1);
    let all = ledger::computed_before(&conn, &store, Span::days(range), later)
        .await
        .unwrap();
    assert_eq!(all.len(), orders.len());
}
