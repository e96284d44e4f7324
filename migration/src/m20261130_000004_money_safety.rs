//! Money that stays right when Amazon misbehaves (issue 8): incomplete rows counted per sync, a
//! vanished day's first absence, and decreases held for the merchant.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Incomplete,
    Held,
}

#[derive(DeriveIden)]
enum DailyFigures {
    Table,
    AbsentSince,
}

#[derive(DeriveIden)]
enum Orders {
    Table,
    /// JSON of the figures and amounts a held decrease would set.
    Held,
    /// `held` (waiting for the merchant) or `discarded` (the merchant kept the order as it is).
    HoldState,
    HeldAt,
}

/// One column per statement: SQLite alters one thing at a time.
async fn add(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: &mut ColumnDef,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).add_column(col).to_owned())
        .await
}

async fn drop(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    col: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .alter_table(Table::alter().table(table).drop_column(col).to_owned())
        .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add(
            manager,
            SyncRuns::Table,
            integer(SyncRuns::Incomplete).default(0),
        )
        .await?;
        add(manager, SyncRuns::Table, integer(SyncRuns::Held).default(0)).await?;
        add(
            manager,
            DailyFigures::Table,
            &mut timestamp_with_time_zone_null(DailyFigures::AbsentSince),
        )
        .await?;
        add(manager, Orders::Table, &mut text_null(Orders::Held)).await?;
        add(manager, Orders::Table, &mut string_null(Orders::HoldState)).await?;
        add(
            manager,
            Orders::Table,
            &mut timestamp_with_time_zone_null(Orders::HeldAt),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop(manager, Orders::Table, Orders::HeldAt).await?;
        drop(manager, Orders::Table, Orders::HoldState).await?;
        drop(manager, Orders::Table, Orders::Held).await?;
        drop(manager, DailyFigures::Table, DailyFigures::AbsentSince).await?;
        drop(manager, SyncRuns::Table, SyncRuns::Held).await?;
        drop(manager, SyncRuns::Table, SyncRuns::Incomplete).await
    }
}
