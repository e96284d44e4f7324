// async_trait expands `&SchemaManager` with its own lifetimes; spelling them out breaks the impl.
#![allow(elided_lifetimes_in_paths)]
//! Schema migrations. They never import `entity`: a migration describes the schema as it was on the
//! day it was written, whatever the entities look like later.
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_foundation;
mod m20261124_000002_create_amazon;
mod m20261124_000003_create_sync;
mod m20261130_000004_money_safety;
mod m20261202_000005_report_rows;
mod m20261202_000006_run_claims;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_foundation::Migration),
            Box::new(m20261124_000002_create_amazon::Migration),
            Box::new(m20261124_000003_create_sync::Migration),
            Box::new(m20261130_000004_money_safety::Migration),
            Box::new(m20261202_000005_report_rows::Migration),
            Box::new(m20261202_000006_run_claims::Migration),
        ]
    }
}
