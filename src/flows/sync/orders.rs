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
    store_today,
};
use crate::{
    domain::{figures::Figures, ids::StoreId, money::Money},
    flows::tasks,
    jobs::JobError,
    store::{
        HoldState, OrderStatus, PushState, jobs,
        ledger::{self as rows, Key, Order, OrderState, Span},
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

impl std::ops::AddAssign for Outcome {
    fn add_assign(&mut self, o: Self) {
        self.pushes += o.pushes;
        self.held += o.held;
        self.newly_held += o.newly_held;
    }
}

/// What the hold rule weighs, added up over a sync's spans (the rule is the whole sync's, the
/// spans come one at a time), and the spans whose Amazon decreases wait for it: they are settled
/// last ([`settle`]).
#[derive(Debug, Default)]
pub struct Tally {
    /// The commission pushed for the open days' orders, in minor units.
    pushed: i64,
    /// How much Amazon's decreases would cut of it.
    cut: i64,
    waiting: Vec<Span>,
}

impl Tally {
    /// Whether this sync's decreases are held: they would take back more than `hold_share` of
    /// the window's pushed commission.
    fn must_hold(&self, ctx: &Context<'_>) -> bool {
        self.pushed > 0 && Decimal::from(self.cut) > ctx.hold_share * Decimal::from(self.pushed)
    }
}

/// Which orders of a span a pass decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Every order but Amazon's decreases, which wait for the whole sync's tally.
    First,
    /// Amazon's decreases only: held, or applied.
    Decreases { hold: bool },
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
    fn amounts_differ(&self, o: &OrderState) -> bool {
        (o.sales_minor, o.commission_minor, o.status)
            != (self.sales_minor, self.commission_minor, self.status)
    }

    fn differs(&self, o: &OrderState) -> bool {
        self.amounts_differ(o)
            || (o.clicks, o.purchases, o.units) != (self.clicks, self.purchases, self.units)
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("proposals serialize")
    }
}

/// What writing a proposal into an order changes, when it changes anything.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Its amounts or status: a new version.
    amounts_changed: bool,
    /// Anything the order says.
    differs: bool,
    /// Its push is due and none is queued.
    enqueue: bool,
}

impl Plan {
    /// `None` when the order already says `p`, needs no push and holds nothing.
    fn of(o: &OrderState, p: &Proposal, due: bool) -> Option<Self> {
        let amounts_changed = p.amounts_differ(o);
        let version = o.version + i32::from(amounts_changed);
        // Pending means a push job is queued or running already.
        let enqueue = due
            && o.pushed_version < version
            && o.push_state != PushState::Dead
            && o.push_state != PushState::Pending;
        let differs = p.differs(o);
        (differs || enqueue || o.hold_state.is_some()).then_some(Self {
            amounts_changed,
            differs,
            enqueue,
        })
    }
}

/// Adds a span's orders to the tally: the pushed commission of its open days, and what
/// Amazon's decreases (`by_amazon`) would cut of it. A cut the merchant made (a lower default
/// commission) is theirs to make and is never held.
fn add_up(
    tally: &mut Tally,
    ctx: &Context<'_>,
    existing: &BTreeMap<Key, OrderState>,
    by_amazon: impl Fn(&Key) -> bool,
    proposals: &[(Key, Proposal)],
) {
    let pushed = existing
        .iter()
        .filter(|(key, _)| ctx.is_open(key.1))
        .filter_map(|(_, o)| o.pushed_commission_minor)
        .fold(0i64, i64::saturating_add);
    let cut = proposals
        .iter()
        .filter_map(|(key, p)| {
            let o = existing.get(key).filter(|_| by_amazon(key))?;
            let paid = o.pushed_commission_minor?;
            (p.commission_minor < paid).then_some(paid.saturating_sub(p.commission_minor))
        })
        .fold(0i64, i64::saturating_add);
    tally.pushed = tally.pushed.saturating_add(pushed);
    tally.cut = tally.cut.saturating_add(cut);
}

/// Whether a proposal lowers an existing order's commission, or what was pushed of it: the only
/// keys [`add_up`] and a hold ask "by Amazon?" of.
fn any_decrease(existing: &BTreeMap<Key, OrderState>, proposals: &[(Key, Proposal)]) -> bool {
    proposals.iter().any(|(key, p)| {
        existing.get(key).is_some_and(|o| {
            p.commission_minor < o.commission_minor
                || o.pushed_commission_minor
                    .is_some_and(|paid| p.commission_minor < paid)
        })
    })
}

/// Brings every order of `span` (`orders`, read in this transaction) in line with `figures`
/// and the current default commission, and enqueues the pushes due; except Amazon's decreases,
/// which wait for the whole sync's tally (see [`settle`]).
pub async fn bring_in_line(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    span: Span,
    orders: rows::OrderStates,
    figures: &BTreeMap<Key, Figures>,
    tally: &mut Tally,
) -> Result<Outcome, JobError> {
    pass(conn, ctx, span, orders, figures, Pass::First, Some(tally)).await
}

/// Settles the decreases [`bring_in_line`] left waiting, once every span is tallied (DESIGN
/// §5): all held when the sync would take back more than `hold_share` of the window's pushed
/// commission, else all applied. Their figures are read again: the ingest stored them already.
pub async fn settle(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    tally: Tally,
) -> Result<Outcome, JobError> {
    let pass_of = Pass::Decreases {
        hold: tally.must_hold(ctx),
    };
    let mut outcome = Outcome::default();
    for span in tally.waiting {
        let figures = rows::figures_in(conn, ctx.store, span)
            .await?
            .into_iter()
            .map(|(key, day)| (key, day.figures))
            .collect();
        let orders = rows::order_states_in(conn, ctx.store, span).await?;
        outcome += pass(conn, ctx, span, orders, &figures, pass_of, None).await?;
    }
    Ok(outcome)
}

/// One pass over the orders of a span: see [`Pass`]. The first adds the span to `tally`.
async fn pass(
    conn: &impl ConnectionTrait,
    ctx: &Context<'_>,
    span: Span,
    orders: rows::OrderStates,
    figures: &BTreeMap<Key, Figures>,
    pass_of: Pass,
    tally: Option<&mut Tally>,
) -> Result<Outcome, JobError> {
    let rows::OrderStates {
        states: existing,
        held: held_on,
    } = orders;
    let keys: BTreeSet<Key> = figures.keys().chain(existing.keys()).copied().collect();
    let mut proposals = Vec::new();
    for key in keys {
        if ctx.is_open(key.1) {
            let f = figures.get(&key).cloned().unwrap_or_default();
            proposals.push((key, Proposal::of(ctx, key, &f)?));
        }
    }
    // Orders computed under an older default commission move with it; the rest are Amazon's.
    // Only a decrease asks whose it is, so a pass without one (a first reading, an unchanged
    // one) does not look.
    let stale = if any_decrease(&existing, &proposals) {
        rows::computed_before(conn, ctx.store, span, ctx.commission_since).await?
    } else {
        BTreeSet::new()
    };
    let by_amazon = |key: &Key| !stale.contains(key);
    if let Some(tally) = tally {
        add_up(tally, ctx, &existing, by_amazon, &proposals);
        let waits = proposals.iter().any(|(key, p)| {
            existing
                .get(key)
                .is_some_and(|o| p.commission_minor < o.commission_minor && by_amazon(key))
        });
        if waits {
            tally.waiting.push(span);
        }
    }
    let basis = format!("{} of {}", ctx.commission, ctx.basis.label());
    let (mut new_orders, mut new_jobs) = (Vec::new(), BTreeMap::new());
    let mut writes = BTreeMap::new();
    let (mut held, mut newly_held) = (0, 0);
    for (key, p) in proposals {
        let due = ctx.age(key.1) >= i64::from(ctx.push_after_days);
        let Some(o) = existing.get(&key) else {
            if pass_of == Pass::First && p.commission_minor > 0 {
                new_orders.push(new_order(ctx, key, &p, &basis, due));
                // Written a chunk at a time: a first reading would hold them all otherwise.
                if new_orders.len() == crate::store::CHUNK_ROWS {
                    rows::insert_orders(conn, &new_orders).await?;
                    new_orders.clear();
                }
                if due {
                    new_jobs.insert(key, tasks::push_job(ctx.store, key.0, key.1, ctx.now));
                }
            }
            continue;
        };
        let amazon_decrease = p.commission_minor < o.commission_minor && by_amazon(&key);
        let decrease = match pass_of {
            Pass::First if amazon_decrease => continue,
            Pass::First => false,
            Pass::Decreases { .. } if !amazon_decrease => continue,
            Pass::Decreases { hold } => hold,
        };
        let on_hold = held_on.get(&key);
        // Serialized only where a hold is compared or made: most orders have none.
        let json = (decrease || on_hold.is_some()).then(|| p.json());
        let already = on_hold.is_some() && on_hold == json.as_ref();
        if already && o.hold_state == Some(HoldState::Discarded) {
            // The merchant kept this order as it is against this very reading.
            continue;
        }
        if decrease {
            if !already {
                let json = json.unwrap_or_else(|| p.json());
                rows::hold(conn, ctx.store, key, json, ctx.now).await?;
                newly_held += 1;
            }
            held += 1;
            continue;
        }
        if Plan::of(o, &p, due).is_some() {
            writes.insert(key, (p, due));
        }
    }
    // Only the orders that change are read whole.
    let keys = writes.keys().copied().collect();
    let mut whole = rows::orders_of_keys(conn, ctx.store, &keys).await?;
    for (key, (p, due)) in writes {
        // Read moments ago in this transaction, under the store's lock: it cannot be gone.
        let o = whole.remove(&key).ok_or_else(|| {
            DbErr::RecordNotFound(format!("order of affiliate {} on {}", key.0, key.1))
        })?;
        if let Some(job) = apply(conn, ctx.store, ctx.now, o, &p, &basis, due).await? {
            new_jobs.insert(key, job);
        }
    }
    rows::insert_orders(conn, &new_orders).await?;
    let new_jobs: Vec<_> = new_jobs.into_values().collect();
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
    let Some(plan) = Plan::of(&OrderState::from(&o), p, due) else {
        return Ok(None);
    };
    let mut order = o;
    if plan.differs {
        order.clicks = p.clicks;
        order.purchases = p.purchases;
        order.units = p.units;
        order.sales_minor = p.sales_minor;
        order.commission_minor = p.commission_minor;
        order.status = p.status;
        order.basis = basis.to_owned();
        order.computed_at = now;
        order.version += i32::from(plan.amounts_changed);
    }
    if plan.enqueue {
        order.push_state = PushState::Pending;
    }
    order.held = None;
    order.hold_state = None;
    order.held_at = None;
    order.updated_at = now;
    let job = plan
        .enqueue
        .then(|| tasks::push_job(store, order.affiliate_id, order.day, now));
    rows::update_order(conn, order, plan.amounts_changed).await?;
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
    let today = store_today(db, store, now).await?;
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
