//! Each sync run names the job claim that ran it, so that a run whose claim is over (its worker
//! died, or lost the job to another) is ended as soon as the job runs again, not a day later.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    /// The job that ran the sync; null for a sync run outside the job queue.
    JobId,
    /// The job's `attempts` when its claim started the run.
    JobAttempt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for col in [
            big_integer_null(SyncRuns::JobId),
            integer_null(SyncRuns::JobAttempt),
        ] {
            let mut col = col;
            manager
                .alter_table(
                    Table::alter()
                        .table(SyncRuns::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [SyncRuns::JobAttempt, SyncRuns::JobId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(SyncRuns::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
