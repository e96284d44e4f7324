//! The orders of a sync's days, brought in line with their figures and the default commission
//! (DESIGN §2 steps 6–7, §5), with their pushes enqueued. No mass reversal on one report's word:
//! when one sync would lower more than `hold_share` of the store's pushed commission in the
//! window, every decrease of that sync is held for the merchant to apply or discard; increases
//! still go through.
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use serde::{Deserialize, Serialize};

use super::{
    context::{Context, FINAL_AFTER_DAYS, order_number},
    today, zone,
};
use crate::{
    domain::{figures::Figures, ids::StoreId, money::Money},
    flows::tasks,
    jobs::JobError,
    store::{
        HoldState, OrderStatus, PushState, connections, jobs,
        ledger::{self as rows, Key, Order},
    },
};

/// What one pass over the orders did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    pub pushes: usize,
    /// Orders whose decrease stays held, this pass's and earlier ones'.
    pub held: usize,
    /// Of `held`, those this pass held for the first time.
    pub newly_held: usize,
}

/// What an order should say after this reading: its figures and amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub clicks: i64,
    pub purchases: i64,
    pub units: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
    pub status: OrderStatus,
}

impl Proposal {
    /// The proposal held on `order` for the merchant, if any (and readable).
    pub fn held_on(order: &Order) -> Option<Self> {
        serde_json::from_str(order.held.as_deref()?).ok()
    }

    fn of(ctx: &Context<'_>, key: Key, f: &Figures) -> Result<Self, JobError> {
        let (sales, purchases, units) = ctx.basis.pick(f);
        let sales = Money::new(sales, ctx.currency);
        let commission = ctx
            .commission
            .commission(sales, purchases, ctx.program_currency)
            .map_err(|e| {
                JobError::permanent(format!("commission of {} on {}: {e}", key.0, key.1))
            })?;
        Ok(Self {
            clicks: f.clicks,
            purchases,
            units,
            sales_minor: sales.minor(),
            commission_minor: commission.minor(),
            status: if commission.minor() > 0 {
                OrderStatus::Approved
            } else {
                OrderStatus::Rejected
            },
        })
    }

    /// Whether the affiliate would see a different order (clicks and units alone are no reason
    /// to e-mail them).
    fn amounts_differ(&self, o: &Order) -> bool {
        (o.sales_minor, o.commission_minor, o.status)
            != (self.sales_minor, self.commission_minor, self.status)
    }

    fn differs(&self, o: &Order) -> bool {
        self.amounts_differ(o)
            || (o.clicks, o.purchases, o.units) != (self.clicks, self.purchases, self.units)
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("proposals serialize")
    }
}

/// Whether a decrease of `o` is Amazon's doing: the order was computed under the default
/// commission that still applies. A cut the merchant made (a lower default commission) is theirs
/// to make and is never held.
fn by_amazon(ctx: &Context<'_>, o: &Order) -> bool {
    o.computed_at >= ctx.commission_since
}

/// The decreases of one pass, and the window's pushed commission they would cut into.
fn must_hold(
    ctx: &Context<'_>,
    existing: &BTreeMap<Key, Order>,
    proposals: &[(Key, Proposal)],
) -> bool {
    let pushed: i64 = existing
        .values()
        .filter(|o| ctx.is_open(o.day))
        .filter_map(|o| o.pushed_commission_minor)
        .sum();
    let cut: i64 = proposals
        .iter()
        .filter_map(|(key, p)| {
            let o = existing.get(key).filter(|o| by_amazon(ctx, o))?;
            let paid = o.pushed_commission_minor?;
            (p.commission_minor < paid).then_some(paid - p.commission_minor)
        })
        .sum();
    pushed > 0 && Decimal::from(cut) > ctx.hold_share * Decimal::from(pushed)
}

/// Brings every order of the range in line with `figures` and the current default commission;
/// enqueues the pushes due.
pub async fn bring_in_line(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    figures: &BTreeMap<Key, Figures>,
) -> Result<Outcome, JobError> {
    let existing = rows::orders_in(conn, ctx.store, (ctx.from, ctx.to)).await?;
    let keys: BTreeSet<Key> = figures.keys().chain(existing.keys()).copied().collect();
    let mut proposals = Vec::new();
    for key in keys {
        if ctx.is_open(key.1) {
            let f = figures.get(&key).cloned().unwrap_or_default();
            proposals.push((key, Proposal::of(ctx, key, &f)?));
        }
    }
    let hold = must_hold(ctx, &existing, &proposals);
    let basis = format!("{} of {}", ctx.commission, ctx.basis.label());
    let (mut new_orders, mut new_jobs) = (Vec::new(), Vec::new());
    let (mut held, mut newly_held) = (0, 0);
    for (key, p) in proposals {
        let due = ctx.age(key.1) >= i64::from(ctx.push_after_days);
        let Some(o) = existing.get(&key) else {
            if p.commission_minor > 0 {
                new_orders.push(new_order(ctx, key, &p, &basis, due));
                if due {
                    new_jobs.push(tasks::push_job(ctx.store, key.0, key.1, ctx.now));
                }
            }
            continue;
        };
        let json = p.json();
        let already = o.held.as_deref() == Some(json.as_str());
        if already && o.hold_state == Some(HoldState::Discarded) {
            // The merchant kept this order as it is against this very reading.
            continue;
        }
        if hold && p.commission_minor < o.commission_minor && by_amazon(ctx, o) {
            if !already {
                rows::hold(conn, o.clone(), json, ctx.now).await?;
                newly_held += 1;
            }
            held += 1;
            continue;
        }
        if let Some(job) = apply(conn, ctx.store, ctx.now, o.clone(), &p, &basis, due).await? {
            new_jobs.push(job);
        }
    }
    rows::insert_orders(conn, new_orders).await?;
    let pushes = jobs::enqueue(conn, &new_jobs, ctx.now).await?;
    Ok(Outcome {
        pushes: usize::try_from(pushes).unwrap_or(usize::MAX),
        held,
        newly_held,
    })
}

fn new_order(
    ctx: &Context<'_>,
    (affiliate_id, day): Key,
    p: &Proposal,
    basis: &str,
    due: bool,
) -> Order {
    Order {
        store_id: ctx.store.as_str().to_owned(),
        affiliate_id,
        day,
        number: order_number(ctx.campaign_id, affiliate_id, day),
        currency: ctx.currency.code().to_owned(),
        clicks: p.clicks,
        purchases: p.purchases,
        units: p.units,
        sales_minor: p.sales_minor,
        commission_minor: p.commission_minor,
        status: p.status,
        version: 1,
        basis: basis.to_owned(),
        computed_at: ctx.now,
        push_state: if due {
            PushState::Pending
        } else {
            PushState::Waiting
        },
        pushed_version: 0,
        pushed_sales_minor: None,
        pushed_commission_minor: None,
        pushed_status: None,
        remote_id: None,
        create_attempted: false,
        last_push_error: None,
        pushed_at: None,
        created_at: ctx.now,
        updated_at: ctx.now,
        held: None,
        hold_state: None,
        held_at: None,
    }
}

/// Writes `p` into the order (a new version when its amounts change) and returns the push to
/// queue, if one is due and none is queued. A hold the proposal replaces is cleared.
async fn apply(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
    o: Order,
    p: &Proposal,
    basis: &str,
    due: bool,
) -> Result<Option<jobs::NewJob>, DbErr> {
    let amounts_changed = p.amounts_differ(&o);
    let version = o.version + i32::from(amounts_changed);
    // Pending means a push job is queued or running already.
    let enqueue = due
        && o.pushed_version < version
        && o.push_state != PushState::Dead
        && o.push_state != PushState::Pending;
    let differs = p.differs(&o);
    if !(differs || enqueue || o.hold_state.is_some()) {
        return Ok(None);
    }
    let mut order = o;
    if differs {
        order.clicks = p.clicks;
        order.purchases = p.purchases;
        order.units = p.units;
        order.sales_minor = p.sales_minor;
        order.commission_minor = p.commission_minor;
        order.status = p.status;
        order.basis = basis.to_owned();
        order.computed_at = now;
        order.version = version;
    }
    if enqueue {
        order.push_state = PushState::Pending;
    }
    order.held = None;
    order.hold_state = None;
    order.held_at = None;
    order.updated_at = now;
    let job = enqueue.then(|| tasks::push_job(store, order.affiliate_id, order.day, now));
    rows::update_order(conn, order, amounts_changed).await?;
    Ok(job)
}

/// The merchant applies the store's held decreases: each order takes what was held, as a new
/// version, and its push is queued. Returns how many were applied; a day that became final
/// meanwhile is kept as it is.
pub async fn apply_held(
    db: &DatabaseConnection,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<usize, DbErr> {
    let tz = connections::find(db, store).await?.and_then(|c| c.timezone);
    let today = today(now, zone(tz.as_deref()));
    let txn = db.begin().await?;
    let held = rows::held_of(&txn, store).await?;
    let (mut applied, mut jobs_due) = (0, Vec::new());
    for o in &held {
        if (today - o.day).num_days() > FINAL_AFTER_DAYS {
            // Final meanwhile: a final day never changes again (DESIGN §5).
            continue;
        }
        let Some(p) = Proposal::held_on(o) else {
            continue;
        };
        // A held order was pushed or due: its push is due again.
        let due = o.push_state != PushState::Waiting;
        let basis = o.basis.clone();
        applied += 1;
        if let Some(job) = apply(&txn, store, now, o.clone(), &p, &basis, due).await? {
            jobs_due.push(job);
        }
    }
    jobs::enqueue(&txn, &jobs_due, now).await?;
    // What is left held is final now: kept as it is.
    rows::discard_holds(&txn, store, now).await?;
    txn.commit().await?;
    Ok(applied)
}

/// The merchant keeps the store's held orders as they are; the same proposal is not held again.
pub async fn discard_held(
    db: &DatabaseConnection,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    rows::discard_holds(db, store, now).await
}
