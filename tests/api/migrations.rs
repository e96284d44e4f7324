//! Every migration has a working `down`.
use migration::{Migrator, MigratorTrait};
use sea_orm::Database;

use crate::helpers::TestDb;

const TABLES: [&str; 18] = [
    "stores",
    "program_credentials",
    "affiliates",
    "webhook_inbox",
    "sessions",
    "amazon_connections",
    "oauth_states",
    "landing_pages",
    "links",
    "jobs",
    "job_attempts",
    "daily_figures",
    "figure_changes",
    "unmatched_figures",
    "orders",
    "order_versions",
    "sync_runs",
    "report_rows",
];

#[tokio::test]
async fn migrations_round_trip_up_down_up() {
    let test_db = TestDb::new().await;
    let db = Database::connect(&test_db.url).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    let manager = sea_orm_migration::SchemaManager::new(&db);
    for table in TABLES {
        assert!(manager.has_table(table).await.unwrap(), "{table} after up");
    }
    assert!(manager.has_column("stores", "campaign_id").await.unwrap());
    assert!(manager.has_column("stores", "sales_basis").await.unwrap());
    assert!(manager.has_column("orders", "hold_state").await.unwrap());
    assert!(
        manager
            .has_column("daily_figures", "absent_since")
            .await
            .unwrap()
    );
    assert!(
        manager
            .has_column("sync_runs", "job_attempt")
            .await
            .unwrap()
    );
    // One step down removes the last migration only.
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(!manager.has_column("sync_runs", "job_id").await.unwrap());
    assert!(manager.has_table("report_rows").await.unwrap());
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(!manager.has_table("report_rows").await.unwrap());
    assert!(manager.has_column("orders", "hold_state").await.unwrap());
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(manager.has_table("orders").await.unwrap());
    assert!(!manager.has_column("orders", "hold_state").await.unwrap());
    assert!(!manager.has_column("sync_runs", "incomplete").await.unwrap());
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(manager.has_table("links").await.unwrap());
    assert!(!manager.has_table("orders").await.unwrap());
    assert!(!manager.has_column("stores", "sales_basis").await.unwrap());
    Migrator::down(&db, Some(1)).await.unwrap();
    assert!(manager.has_table("stores").await.unwrap());
    assert!(!manager.has_table("links").await.unwrap());
    assert!(!manager.has_column("stores", "campaign_id").await.unwrap());
    Migrator::down(&db, None).await.unwrap();
    for table in TABLES {
        assert!(
            !manager.has_table(table).await.unwrap(),
            "{table} after down"
        );
    }
    Migrator::up(&db, None).await.unwrap();
    assert!(manager.has_table("stores").await.unwrap());
    assert!(
        Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
    db.close().await.unwrap();
}
