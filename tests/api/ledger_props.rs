//! Property: applying the same report twice changes nothing the second time, whatever it holds.
use attribution_bridge::{
    clients::amazon::report::Figures,
    clients::amazon::report::Reading,
    clients::amazon::report::Rows,
    db,
    domain::commission::DefaultCommission,
    domain::currency::Currency,
    domain::figures::Basis,
    domain::ids::StoreId,
    flows::sync::ledger,
    flows::sync::ledger::Context,
    flows::sync::report::{Held, Report, stage},
};
use chrono::{NaiveDate, TimeZone, Utc};
use proptest::prelude::*;
use sea_orm::{ConnectionTrait, Statement, TransactionTrait};

use crate::helpers::TestDb;

fn rows_strategy() -> impl Strategy<Value = Vec<(i64, u32, i64, i64, i64)>> {
    // (affiliate 1..=4 or 99 = unknown, age 1..=70, clicks, purchases, sales in cents)
    proptest::collection::vec(
        (
            prop_oneof![1i64..=4, Just(99)],
            1u32..=70,
            0i64..50,
            0i64..5,
            0i64..100_000,
        ),
        0..25,
    )
}

async fn count(conn: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]
    #[test]
    fn reprocessing_the_same_report_is_a_no_op(input in rows_strategy(), pct in 0u32..=30, total in any::<bool>()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let test_db = TestDb::new().await;
            let settings = attribution_bridge::config::DatabaseSettings { url: test_db.url.clone().into(), max_connections: 2 };
            let conn = db::connect_and_migrate(&settings).await.unwrap();
            let now = Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0).unwrap();
            conn.execute_unprepared(&format!(
                "INSERT INTO stores (id, name, url, currency, status, commission_type, commission_value, commission_updated_at, installed_at, created_at, updated_at, campaign_id, sales_basis) \
                 VALUES ('st_p', 'P', 'https://p.example', 'USD', 'active', 'percentage', '{pct}', '{now}', '{now}', '{now}', '{now}', 'ab_st_p', 'promoted')",
                now = now.to_rfc3339()
            )).await.unwrap();
            for a in 1..=4 {
                conn.execute_unprepared(&format!(
                    "INSERT INTO affiliates (store_id, affiliate_id, name, status, created_at, updated_at) VALUES ('st_p', {a}, 'A{a}', 'approved', '{now}', '{now}')",
                    now = now.to_rfc3339()
                )).await.unwrap();
            }
            let today = NaiveDate::from_ymd_opt(2026, 11, 20).unwrap();
            let mut rows = Rows::new();
            for (aff, age, clicks, purchases, cents) in &input {
                let day = today - chrono::Duration::days(i64::from(*age));
                let f = Figures { clicks: *clicks, purchases: *purchases, units: *purchases, sales_minor: *cents,
                    total_purchases: *purchases, total_units: *purchases, total_sales_minor: *cents + 100, ..Default::default() };
                rows.insert(("ab_st_p".to_owned(), format!("a{aff}"), day), Reading::Complete(f));
            }
            let store = StoreId::parse("st_p").unwrap();
            let ctx = Context {
                store: &store,
                campaign_id: "ab_st_p",
                currency: Currency::parse("USD").unwrap(),
                program_currency: Currency::parse("USD").unwrap(),
                confirm_absence: chrono::Duration::hours(12),
                hold_share: rust_decimal::Decimal::ONE,
                commission_since: now,
                commission: DefaultCommission::from_columns("percentage", &pct.to_string()).unwrap(),
                basis: if total { Basis::Total } else { Basis::Promoted },
                today,
                push_after_days: 2,
                from: today - chrono::Duration::days(70),
                to: today - chrono::Duration::days(1),
                now,
            };
            let txn = conn.begin().await.unwrap();
            // Held in memory the first time, staged the second: the same report either way.
            let mut held = Held::default();
            held.add(ctx.campaign_id, rows.clone());
            ledger::ingest(&txn, &ctx, &mut Report::Held(held)).await.unwrap();
            txn.commit().await.unwrap();
            let snapshot = [
                count(&conn, "SELECT COUNT(*) FROM figure_changes").await,
                count(&conn, "SELECT COUNT(*) FROM order_versions").await,
                count(&conn, "SELECT COUNT(*) FROM jobs").await,
                count(&conn, "SELECT COALESCE(SUM(version), 0) FROM orders").await,
            ];
            let txn = conn.begin().await.unwrap();
            stage(&txn, (&store, 2), ctx.campaign_id, &rows).await.unwrap();
            let again = ledger::ingest(&txn, &ctx, &mut Report::Staged(2)).await.unwrap();
            txn.commit().await.unwrap();
            assert_eq!((again.changes, again.pushes, again.ignored_final), (0, 0, 0));
            let after = [
                count(&conn, "SELECT COUNT(*) FROM figure_changes").await,
                count(&conn, "SELECT COUNT(*) FROM order_versions").await,
                count(&conn, "SELECT COUNT(*) FROM jobs").await,
                count(&conn, "SELECT COALESCE(SUM(version), 0) FROM orders").await,
            ];
            assert_eq!(snapshot, after);
            // No order for a day past 60, none for an unknown ad group, none without commission.
            assert_eq!(count(&conn, "SELECT COUNT(*) FROM orders WHERE affiliate_id = 99").await, 0);
            conn.close().await.unwrap();
        });
    }
}
