//! Pushing one order to the program (DESIGN §4.4). The order number is the idempotency key: a
//! create whose outcome is unknown (timeout, crash) is looked up by number before it is sent again.
//! An update is sent only when an amount or the status changed.
use chrono::NaiveDate;
use entity::orders;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    QueryFilter, Statement, sea_query::Expr,
};

use crate::{
    clients::{
        http::RetryPolicy,
        program::{
            ProgramClient, ProgramError,
            orders::{NewOrder, OrderChanges, OrderMeta, RemoteOrder, amount},
        },
    },
    domain::{currency::Currency, ids::StoreId},
    flows::sync::ledger::{DEAD, PUSHED},
    jobs::{JobError, retry::Failure},
    state::AppState,
    store::stores,
};

/// What the push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Created,
    Adopted,
    Updated,
    Unchanged,
}

pub fn failure(e: &ProgramError) -> Failure {
    match e {
        ProgramError::Throttled { retry_after } => Failure::Transient {
            status: Some(429),
            overloaded: true,
            retry_after: *retry_after,
            detail: e.to_string(),
        },
        ProgramError::Server { status } => Failure::Transient {
            status: Some(*status),
            overloaded: false,
            retry_after: None,
            detail: e.to_string(),
        },
        ProgramError::Transport(t) => Failure::Transient {
            status: None,
            overloaded: t.is_timeout(),
            retry_after: None,
            detail: e.to_string(),
        },
        ProgramError::Rejected { status: 408, .. } => Failure::Transient {
            status: Some(408),
            overloaded: true,
            retry_after: None,
            detail: e.to_string(),
        },
        ProgramError::Rejected { status, .. } => Failure::Permanent {
            status: Some(*status),
            detail: e.to_string(),
        },
        ProgramError::Unauthorized(status) => Failure::Permanent {
            status: Some(*status),
            detail: e.to_string(),
        },
        ProgramError::Decode(_) => Failure::Permanent {
            status: None,
            detail: e.to_string(),
        },
    }
}

pub async fn run(
    app: &AppState,
    store: &StoreId,
    affiliate_id: i64,
    day: chrono::NaiveDate,
) -> Result<Pushed, JobError> {
    let Some(row) = stores::find(&app.db, store)
        .await?
        .filter(|s| s.status == stores::ACTIVE)
    else {
        return Err(JobError::Cancelled("the store is uninstalled".into()));
    };
    let Some(order) = orders::Entity::find_by_id((store.as_str().to_owned(), affiliate_id, day))
        .one(&app.db)
        .await?
    else {
        return Err(JobError::Cancelled("no such order".into()));
    };
    if order.pushed_version >= order.version {
        return Ok(Pushed::Unchanged);
    }
    let token = stores::program_token(&app.db, &app.cipher, store)
        .await
        .map_err(|e| match e.downcast::<sea_orm::DbErr>() {
            // The database blinked: later. A token that does not open: a person must look.
            Ok(db) => JobError::from(db),
            Err(e) => JobError::Failed(Failure::Permanent {
                status: None,
                detail: e.to_string(),
            }),
        })?
        .ok_or_else(|| JobError::Cancelled("the store has no program token".into()))?;
    let base = match row.program_api_url.as_deref() {
        Some(u) => url::Url::parse(u).map_err(|e| {
            JobError::Failed(Failure::Permanent {
                status: None,
                detail: e.to_string(),
            })
        })?,
        None => app.settings.program.api_url.clone(),
    };
    // The job's own schedule does the retrying.
    let once = RetryPolicy {
        attempts: 1,
        ..app.amazon.retry
    };
    let client = ProgramClient::new(&app.amazon.http, base, token, once);
    let exponent = Currency::parse(&order.currency)
        .map(|c| c.exponent())
        .unwrap_or(2);
    let fail = |e: ProgramError| JobError::Failed(failure(&e));

    let mut remote: Option<RemoteOrder> = order.remote_id.clone().map(|id| RemoteOrder {
        id,
        total_minor: order.pushed_sales_minor,
        commission_minor: order.pushed_commission_minor,
        status: order.pushed_status.clone(),
    });
    let mut how = Pushed::Updated;
    if remote.is_none() && order.create_attempted {
        remote = client
            .find_order(&order.number, exponent)
            .await
            .map_err(fail)?;
        if remote.is_some() {
            how = Pushed::Adopted;
        }
    }
    let remote = match remote {
        Some(r) => r,
        None if order.status == "rejected" => {
            // Never sent and nothing to pay: nothing to tell the program.
            mark_pushed(app, &order, None, None).await?;
            return Ok(Pushed::Unchanged);
        }
        None => {
            // Written before the request: after a crash or a timeout the next try looks first.
            let mut row: orders::ActiveModel = order.clone().into();
            row.create_attempted = Set(true);
            let order = row.update(&app.db).await?;
            let new = NewOrder {
                number: order.number.clone(),
                affiliate_id,
                total: amount(order.sales_minor, exponent),
                subtotal: amount(order.sales_minor, exponent),
                commission: amount(order.commission_minor, exponent),
                currency: order.currency.clone(),
                date: day.format("%Y-%m-%d").to_string(),
                status: order.status.clone(),
                source: "amazon_attribution",
                meta: OrderMeta {
                    clicks: order.clicks,
                    purchases: order.purchases,
                    units: order.units,
                },
            };
            let created = client.create_order(&new, exponent).await.map_err(fail)?;
            let sent = RemoteOrder {
                id: created.id,
                total_minor: Some(order.sales_minor),
                commission_minor: Some(order.commission_minor),
                status: Some(order.status.clone()),
            };
            mark_pushed(app, &order, Some(&sent), None).await?;
            return Ok(Pushed::Created);
        }
    };
    let mut changes = OrderChanges::default();
    if remote.total_minor != Some(order.sales_minor) {
        changes.total = Some(amount(order.sales_minor, exponent));
        changes.subtotal = Some(amount(order.sales_minor, exponent));
    }
    if remote.commission_minor != Some(order.commission_minor) {
        changes.commission = Some(amount(order.commission_minor, exponent));
    }
    if remote.status.as_deref() != Some(order.status.as_str()) {
        changes.status = Some(order.status.clone());
    }
    if changes.is_empty() {
        mark_pushed(app, &order, Some(&remote), None).await?;
        return Ok(if how == Pushed::Adopted {
            how
        } else {
            Pushed::Unchanged
        });
    }
    client
        .update_order(&remote.id, &changes)
        .await
        .map_err(fail)?;
    let sent = RemoteOrder {
        id: remote.id.clone(),
        total_minor: Some(order.sales_minor),
        commission_minor: Some(order.commission_minor),
        status: Some(order.status.clone()),
    };
    mark_pushed(app, &order, Some(&sent), None).await?;
    Ok(how)
}

/// Records what the program now shows. Only the version that was pushed is marked: a newer one
/// computed meanwhile stays due.
async fn mark_pushed(
    app: &AppState,
    order: &orders::Model,
    remote: Option<&RemoteOrder>,
    error: Option<String>,
) -> Result<(), sea_orm::DbErr> {
    let current =
        orders::Entity::find_by_id((order.store_id.clone(), order.affiliate_id, order.day))
            .one(&app.db)
            .await?;
    let Some(current) = current else {
        return Ok(());
    };
    let up_to_date = current.version == order.version;
    let mut row: orders::ActiveModel = current.into();
    row.pushed_version = Set(order.version);
    if let Some(r) = remote {
        row.remote_id = Set(Some(r.id.clone()));
        row.pushed_sales_minor = Set(r.total_minor);
        row.pushed_commission_minor = Set(r.commission_minor);
        row.pushed_status = Set(r.status.clone());
    }
    row.push_state = Set(if up_to_date {
        PUSHED.to_owned()
    } else {
        crate::flows::sync::ledger::PENDING.to_owned()
    });
    row.last_push_error = Set(error);
    row.pushed_at = Set(Some(app.clock.now()));
    row.updated_at = Set(app.clock.now());
    row.update(&app.db).await?;
    Ok(())
}

/// The push went to the dead letters: the merchant and the operator see it.
pub async fn mark_dead(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate_id: i64,
    day: NaiveDate,
    error: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), sea_orm::DbErr> {
    orders::Entity::update_many()
        .col_expr(orders::Column::PushState, Expr::value(DEAD))
        .col_expr(
            orders::Column::LastPushError,
            Expr::value(Some(error.chars().take(500).collect::<String>())),
        )
        .col_expr(orders::Column::UpdatedAt, Expr::value(now))
        .filter(orders::Column::StoreId.eq(store.as_str()))
        .filter(orders::Column::AffiliateId.eq(affiliate_id))
        .filter(orders::Column::Day.eq(day))
        .exec(conn)
        .await?;
    Ok(())
}

/// After a push: if a newer version was computed while it ran, queue the next push (the running
/// job held the order's queue key, so the sync could not).
pub async fn requeue_if_stale(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate_id: i64,
    day: NaiveDate,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, sea_orm::DbErr> {
    let Some(o) = orders::Entity::find_by_id((store.as_str().to_owned(), affiliate_id, day))
        .one(conn)
        .await?
    else {
        return Ok(false);
    };
    if o.pushed_version >= o.version || o.push_state == DEAD {
        return Ok(false);
    }
    let task = crate::jobs::Task::PushOrder { affiliate_id, day };
    crate::jobs::enqueue(
        conn,
        store,
        &task,
        Some(crate::jobs::push_key(store, affiliate_id, day)),
        now,
        now,
    )
    .await
}

/// Locks the order's row until the end of the transaction (PostgreSQL; SQLite has one writer).
pub async fn lock_order(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    affiliate_id: i64,
    day: NaiveDate,
) -> Result<(), sea_orm::DbErr> {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 FROM orders WHERE store_id = $1 AND affiliate_id = $2 AND day = $3 FOR UPDATE",
            [store.as_str().into(), affiliate_id.into(), day.into()],
        ))
        .await?;
    }
    Ok(())
}
