//! Pushing one order to the program (DESIGN §4.4). The order number is the idempotency key: a
//! create whose outcome is unknown (timeout, crash) is looked up by number before it is sent again.
//! An update is sent only when an amount or the status changed.
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};

use crate::{
    clients::program::orders::{NewOrder, OrderChanges, OrderMeta, RemoteOrder, amount},
    domain::{currency::Currency, ids::StoreId},
    flows::{Deps, lifecycle, tasks},
    jobs::JobError,
    metrics::OrderEvent,
    store::{
        OrderStatus, PushState, jobs,
        ledger::{self, Key, Order, Remote},
        stores,
    },
};

/// What the push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Created,
    Adopted,
    Updated,
    Unchanged,
}

fn remote(r: &RemoteOrder) -> Remote {
    Remote {
        id: r.id.clone(),
        total_minor: r.total_minor,
        commission_minor: r.commission_minor,
        status: r.status.clone(),
    }
}

/// What the program shows once `order` is sent as it is, under the id `id`.
fn as_sent(id: String, order: &Order) -> Remote {
    Remote {
        id,
        total_minor: Some(order.sales_minor),
        commission_minor: Some(order.commission_minor),
        status: Some(order.status.to_string()),
    }
}

/// Brings the program's order for `key` in line with the ledger, and counts what it did to the
/// program's order for `/metrics` (an adopted order counts as created: its create was unanswered).
pub async fn run(deps: &Deps, store: &StoreId, key: Key) -> Result<Pushed, JobError> {
    let pushed = push(deps, store, key).await?;
    let event = match pushed {
        Pushed::Created | Pushed::Adopted => Some(OrderEvent::Created),
        Pushed::Updated => Some(OrderEvent::Updated),
        Pushed::Unchanged => None,
    };
    if let Some(event) = event {
        deps.metrics.orders(event, 1);
    }
    Ok(pushed)
}

async fn push(deps: &Deps, store: &StoreId, key: Key) -> Result<Pushed, JobError> {
    let (affiliate_id, day) = key;
    let Some(row) = stores::find_active(&deps.db, store).await? else {
        return Err(JobError::Cancelled("the store is uninstalled".into()));
    };
    let Some(order) = ledger::find_order(&deps.db, store, key).await? else {
        return Err(JobError::Cancelled("no such order".into()));
    };
    if order.pushed_version >= order.version {
        return Ok(Pushed::Unchanged);
    }
    let token = lifecycle::program_token(deps, store)
        .await?
        .ok_or_else(|| JobError::Cancelled("the store has no program token".into()))?;
    let client = deps
        .program
        .client_once(row.program_api_url.as_deref(), token)
        .map_err(|e| JobError::permanent(format!("the program's API URL: {e}")))?;
    let exponent = Currency::parse(&order.currency)
        .map(|c| c.exponent())
        .unwrap_or(2);
    let now = || deps.clock.now();

    let mut known: Option<Remote> = order.remote_id.clone().map(|id| Remote {
        id,
        total_minor: order.pushed_sales_minor,
        commission_minor: order.pushed_commission_minor,
        status: order.pushed_status.clone(),
    });
    let mut how = Pushed::Updated;
    if known.is_none() && order.create_attempted {
        known = client
            .find_order(&order.number, exponent)
            .await?
            .as_ref()
            .map(remote);
        if known.is_some() {
            how = Pushed::Adopted;
        }
    }
    let known = match known {
        Some(r) => r,
        None if order.status == OrderStatus::Rejected => {
            // Never sent and nothing to pay: nothing to tell the program.
            ledger::mark_pushed(&deps.db, store, &order, None, now()).await?;
            return Ok(Pushed::Unchanged);
        }
        None => {
            // Written before the request: after a crash or a timeout the next try looks first.
            let order = ledger::mark_create_attempted(&deps.db, order).await?;
            let new = NewOrder {
                number: order.number.clone(),
                affiliate_id,
                total: amount(order.sales_minor, exponent),
                subtotal: amount(order.sales_minor, exponent),
                commission: amount(order.commission_minor, exponent),
                currency: order.currency.clone(),
                date: day.format("%Y-%m-%d").to_string(),
                status: order.status.to_string(),
                source: "amazon_attribution",
                meta: OrderMeta {
                    clicks: order.clicks,
                    purchases: order.purchases,
                    units: order.units,
                },
            };
            let created = client.create_order(&new, exponent).await?;
            let sent = as_sent(created.id, &order);
            ledger::mark_pushed(&deps.db, store, &order, Some(&sent), now()).await?;
            return Ok(Pushed::Created);
        }
    };
    let mut changes = OrderChanges::default();
    if known.total_minor != Some(order.sales_minor) {
        changes.total = Some(amount(order.sales_minor, exponent));
        changes.subtotal = Some(amount(order.sales_minor, exponent));
    }
    if known.commission_minor != Some(order.commission_minor) {
        changes.commission = Some(amount(order.commission_minor, exponent));
    }
    if known.status.as_deref() != Some(order.status.as_str()) {
        changes.status = Some(order.status.to_string());
    }
    if changes.is_empty() {
        ledger::mark_pushed(&deps.db, store, &order, Some(&known), now()).await?;
        return Ok(if how == Pushed::Adopted {
            how
        } else {
            Pushed::Unchanged
        });
    }
    client.update_order(&known.id, &changes).await?;
    let sent = as_sent(known.id.clone(), &order);
    ledger::mark_pushed(&deps.db, store, &order, Some(&sent), now()).await?;
    Ok(how)
}

/// After a push: if a newer version was computed while it ran, queue the next push (the running
/// job held the order's queue key, so the sync could not).
pub async fn requeue_if_stale(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    key: Key,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let Some(o) = ledger::find_order(conn, store, key).await? else {
        return Ok(false);
    };
    if o.pushed_version >= o.version || o.push_state == PushState::Dead {
        return Ok(false);
    }
    let job = tasks::push_job(store, key.0, key.1, now);
    Ok(jobs::enqueue(conn, &[job], now).await? == 1)
}

/// Dead letters queued again, with their orders pending once more, in one transaction: the
/// merchant or the operator fixed the cause. Of one store, or (the operator) of all.
pub async fn retry_dead_letters(
    db: &DatabaseConnection,
    store: Option<&StoreId>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let txn = db.begin().await?;
    let n = jobs::retry_dead(&txn, store, now).await?;
    ledger::revive_dead(&txn, store).await?;
    txn.commit().await?;
    Ok(n)
}
