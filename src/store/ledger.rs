//! The ledger's tables: daily figures per (affiliate, day) with their history of changes,
//! unmatched rows, and orders with their versions and pushed state (DESIGN §2 steps 5–7).
use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{daily_figures, figure_changes, order_versions, orders, unmatched_figures};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr,
    EntityTrait, ExprTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, sea_query::Expr,
};

use super::{
    BATCH, HoldState, OrderStatus, PushState, StoreScoped,
    bulk::{CHUNK_ROWS, Stamp, insert_bulk},
    insert_all,
    new_rows::{FiguresRow, NewOrderRow, VersionRow},
    packed::{Headed, figure_columns, packed},
};

use crate::domain::{currency::Currency, figures::Figures, ids::StoreId};

/// One version of an order, as it was computed.
pub use entity::order_versions::Model as OrderVersion;
/// One order per (store, affiliate, day): what it should say (`version`) and what the program
/// was last told (`pushed_*`).
pub use entity::orders::Model as Order;
/// Traffic of an ad group that is no affiliate of the store.
pub use entity::unmatched_figures::Model as Unmatched;

/// (affiliate id, day): the key of figures and orders.
pub type Key = (i64, NaiveDate);
/// (campaign id, ad group id, day): the key of unmatched rows.
pub type UnmatchedKey = (String, String, NaiveDate);

/// What a sync takes of a store's ledger at once: its days `from..=to` of the affiliates whose
/// ids are in `affiliates` (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub days: (NaiveDate, NaiveDate),
    pub affiliates: (i64, i64),
}

impl Span {
    /// The days `from..=to` of every affiliate.
    pub fn days(days: (NaiveDate, NaiveDate)) -> Self {
        Self {
            days,
            affiliates: (i64::MIN, i64::MAX),
        }
    }
}

/// The store's rows of `span` of a table keyed by (affiliate, day).
pub(super) fn spanned<E: StoreScoped>(
    store: &StoreId,
    span: Span,
    (affiliate, day): (E::Column, E::Column),
) -> Select<E> {
    let (from, to) = span.days;
    let (first, last) = span.affiliates;
    E::of_store(store)
        .filter(affiliate.between(first, last))
        .filter(day.between(from, to))
}

/// The rows of a query, by the key `key` gives each.
async fn keyed<E: EntityTrait, K: Ord>(
    conn: &impl ConnectionTrait,
    query: Select<E>,
    key: impl Fn(&E::Model) -> K,
) -> Result<BTreeMap<K, E::Model>, DbErr> {
    let rows = query.all(conn).await?;
    Ok(rows.into_iter().map(|m| (key(&m), m)).collect())
}

/// A stored day's figures, and since when readings have had no row for it (DESIGN §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDay {
    pub figures: Figures,
    pub absent_since: Option<DateTime<Utc>>,
}

/// The store's stored figures of `span`, read in bulk (see [`packed`](super::packed)).
pub async fn figures_in(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    span: Span,
) -> Result<BTreeMap<Key, StoredDay>, DbErr> {
    use daily_figures::Column as C;
    let in_range = || spanned::<daily_figures::Entity>(store, span, (C::AffiliateId, C::Day));
    // The instant first, then the figures; of the instant, only whether there is one.
    let fields: Vec<C> = std::iter::once(C::AbsentSince)
        .chain(figure_columns!(C))
        .collect();
    let mut out = BTreeMap::new();
    let mut any_absent = false;
    packed(
        conn,
        in_range(),
        (C::AffiliateId, C::Day),
        &fields,
        |key, Headed(absent, figures): Headed<Option<serde::de::IgnoredAny>>| {
            any_absent |= absent.is_some();
            let absent_since = None; // read below, typed
            out.insert(
                key,
                StoredDay {
                    figures,
                    absent_since,
                },
            );
            Ok(())
        },
    )
    .await?;
    if !any_absent {
        return Ok(out);
    }
    // Few days are ever absent: their instants are read as they are typed.
    let absent: Vec<(i64, NaiveDate, DateTime<Utc>)> = in_range()
        .filter(C::AbsentSince.is_not_null())
        .select_only()
        .columns([C::AffiliateId, C::Day, C::AbsentSince])
        .into_tuple()
        .all(conn)
        .await?;
    for (affiliate_id, day, since) in absent {
        if let Some(d) = out.get_mut(&(affiliate_id, day)) {
            d.absent_since = Some(since);
        }
    }
    Ok(out)
}

/// Replaces a stored day's figures; the day is present again.
pub async fn update_figures(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
    f: &Figures,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    use daily_figures::Column as C;
    let values = [
        (C::Clicks, f.clicks),
        (C::DetailPageViews, f.detail_page_views),
        (C::AddToCarts, f.add_to_carts),
        (C::Purchases, f.purchases),
        (C::Units, f.units),
        (C::SalesMinor, f.sales_minor),
        (C::TotalPurchases, f.total_purchases),
        (C::TotalUnits, f.total_units),
        (C::TotalSalesMinor, f.total_sales_minor),
        (C::BrbMinor, f.brb_minor),
    ];
    let mut update = daily_figures::Entity::update_of_store(store)
        .filter(C::AffiliateId.eq(affiliate_id))
        .filter(C::Day.eq(day))
        .col_expr(C::AbsentSince, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(C::UpdatedAt, Expr::value(now));
    for (column, value) in values {
        update = update.col_expr(column, Expr::value(value));
    }
    one_row(update.exec(conn).await?)
}

/// An update by key must find its row (the sync read it in this very transaction): a row gone
/// is an error, never a silent no-op.
fn one_row(res: sea_orm::UpdateResult) -> Result<(), DbErr> {
    if res.rows_affected == 1 {
        Ok(())
    } else {
        Err(DbErr::RecordNotUpdated)
    }
}

/// Marks when a reading first had no row for a stored day (`Some`), or that it has one again.
pub async fn set_absent_since(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
    since: Option<DateTime<Utc>>,
) -> Result<(), DbErr> {
    use daily_figures::Column as C;
    daily_figures::Entity::update_of_store(store)
        .filter(C::AffiliateId.eq(affiliate_id))
        .filter(C::Day.eq(day))
        .col_expr(C::AbsentSince, Expr::value(since))
        .exec(conn)
        .await
        .and_then(one_row)
}

/// Adds days seen for the first time, in bulk.
pub async fn insert_figures(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    rows: &[(Key, Figures)],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let now = Stamp::new(conn.get_database_backend(), now);
    // A chunk at a time: only one chunk's rows are ever built.
    for chunk in rows.chunks(CHUNK_ROWS) {
        let rows: Vec<FiguresRow<'_>> = chunk
            .iter()
            .map(|((affiliate_id, day), figures)| FiguresRow {
                store_id: store.as_str(),
                affiliate_id: *affiliate_id,
                day: *day,
                figures,
                first_seen_at: &now,
                updated_at: &now,
            })
            .collect();
        insert_bulk(conn, "daily_figures", &rows).await?;
    }
    Ok(())
}

/// What one reading changed of a day (a JSON object of `field: [old, new]`), applied or not.
pub struct Change<'a> {
    pub affiliate_id: Option<i64>,
    /// (campaign id, ad group id) of an unmatched row.
    pub campaign: Option<(&'a str, &'a str)>,
    pub day: NaiveDate,
    pub changes_json: String,
    /// False for a final day: recorded, never applied.
    pub applied: bool,
}

pub async fn record_change(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    c: Change<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    figure_changes::Entity::insert(figure_changes::ActiveModel {
        store_id: Set(store.as_str().to_owned()),
        affiliate_id: Set(c.affiliate_id),
        campaign_id: Set(c.campaign.map(|c| c.0.to_owned())),
        ad_group_id: Set(c.campaign.map(|c| c.1.to_owned())),
        day: Set(c.day),
        observed_at: Set(now),
        changes: Set(c.changes_json),
        applied: Set(c.applied),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The JSON of the last change of a final day that was recorded and not applied.
pub async fn last_ignored_change(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
) -> Result<Option<String>, DbErr> {
    Ok(figure_changes::Entity::of_store(store)
        .filter(figure_changes::Column::AffiliateId.eq(affiliate_id))
        .filter(figure_changes::Column::Day.eq(day))
        .filter(figure_changes::Column::Applied.eq(false))
        .order_by_desc(figure_changes::Column::Id)
        .one(conn)
        .await?
        .map(|c| c.changes))
}

/// The store's unmatched rows of these keys, [`BATCH`] keys per query.
pub async fn unmatched_of_keys(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    keys: &[&UnmatchedKey],
) -> Result<BTreeMap<UnmatchedKey, Unmatched>, DbErr> {
    use unmatched_figures::Column as C;
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(BATCH) {
        let column = Expr::tuple([
            Expr::col(C::CampaignId),
            Expr::col(C::AdGroupId),
            Expr::col(C::Day),
        ]);
        let wanted = chunk.iter().map(|(campaign, ad_group, day)| {
            Expr::tuple([
                Expr::value(campaign.clone()),
                Expr::value(ad_group.clone()),
                Expr::value(*day),
            ])
        });
        let q = unmatched_figures::Entity::of_store(store).filter(column.is_in(wanted));
        out.append(
            &mut keyed(conn, q, |m| {
                (m.campaign_id.clone(), m.ad_group_id.clone(), m.day)
            })
            .await?,
        );
    }
    Ok(out)
}

/// Stores an unmatched row's figures: `old` is its stored row, if any.
pub async fn save_unmatched(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (campaign, ad_group, day): &UnmatchedKey,
    old: Option<Unmatched>,
    f: &Figures,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    let (mut row, is_new) = match old {
        Some(m) => (m.into_active_model(), false),
        None => (
            unmatched_figures::ActiveModel {
                store_id: Set(store.as_str().to_owned()),
                campaign_id: Set(campaign.clone()),
                ad_group_id: Set(ad_group.clone()),
                day: Set(*day),
                ..Default::default()
            },
            true,
        ),
    };
    row.clicks = Set(f.clicks);
    row.purchases = Set(f.purchases);
    row.sales_minor = Set(f.sales_minor);
    row.total_sales_minor = Set(f.total_sales_minor);
    row.brb_minor = Set(f.brb_minor);
    row.updated_at = Set(now);
    if is_new {
        row.insert(conn).await?;
    } else {
        row.update(conn).await?;
    }
    Ok(())
}

/// How many unmatched rows the store has.
pub async fn count_unmatched(conn: &impl ConnectionTrait, store: &StoreId) -> Result<u64, DbErr> {
    unmatched_figures::Entity::of_store(store).count(conn).await
}

/// A currency other than `currency` that some of the store's orders are in, if any.
pub async fn other_currency(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    currency: Currency,
) -> Result<Option<String>, DbErr> {
    Ok(orders::Entity::of_store(store)
        .filter(orders::Column::Currency.ne(currency.code()))
        .one(conn)
        .await?
        .map(|o| o.currency))
}

/// What deciding an order's next step needs of it: its figures, amounts and states, not its
/// texts. Read in bulk by [`order_states_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderState {
    pub clicks: i64,
    pub purchases: i64,
    pub units: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
    pub status: OrderStatus,
    pub version: i32,
    pub pushed_version: i32,
    pub push_state: PushState,
    /// What the program was last told the commission is, in minor units.
    pub pushed_commission_minor: Option<i64>,
    pub hold_state: Option<HoldState>,
}

impl From<&Order> for OrderState {
    fn from(o: &Order) -> Self {
        Self {
            clicks: o.clicks,
            purchases: o.purchases,
            units: o.units,
            sales_minor: o.sales_minor,
            commission_minor: o.commission_minor,
            status: o.status,
            version: o.version,
            pushed_version: o.pushed_version,
            push_state: o.push_state,
            pushed_commission_minor: o.pushed_commission_minor,
            hold_state: o.hold_state,
        }
    }
}

/// The store's orders of a span as a sync weighs them: read in one bulk pass (see
/// [`packed`](super::packed)).
#[derive(Debug, Default)]
pub struct OrderStates {
    /// Each order's state.
    pub states: BTreeMap<Key, OrderState>,
    /// The proposal held (or discarded) on each order that has one (a JSON text): few do.
    pub held: BTreeMap<Key, String>,
}

/// The state of each of the store's orders of `span`, and the proposals held on them, read in
/// one bulk pass (see [`packed`](super::packed)).
pub async fn order_states_in(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    span: Span,
) -> Result<OrderStates, DbErr> {
    use orders::Column as C;
    let query = spanned::<orders::Entity>(store, span, (C::AffiliateId, C::Day));
    let fields = [
        C::Clicks,
        C::Purchases,
        C::Units,
        C::SalesMinor,
        C::CommissionMinor,
        C::Status,
        C::Version,
        C::PushedVersion,
        C::PushState,
        C::PushedCommissionMinor,
        C::HoldState,
        C::Held,
    ];
    type Row = (
        i64,
        i64,
        i64,
        i64,
        i64,
        String,
        i32,
        i32,
        String,
        Option<i64>,
        Option<String>,
        Option<String>,
    );
    let mut out = OrderStates::default();
    packed(
        conn,
        query,
        (C::AffiliateId, C::Day),
        &fields,
        |key, row: Row| {
            let (
                clicks,
                purchases,
                units,
                sales,
                commission,
                status,
                v,
                pv,
                push,
                paid,
                hold,
                held,
            ) = row;
            let state = OrderState {
                clicks,
                purchases,
                units,
                sales_minor: sales,
                commission_minor: commission,
                status: OrderStatus::try_from_value(&status)?,
                version: v,
                pushed_version: pv,
                push_state: PushState::try_from_value(&push)?,
                pushed_commission_minor: paid,
                hold_state: hold.map(|h| HoldState::try_from_value(&h)).transpose()?,
            };
            out.states.insert(key, state);
            if let Some(held) = held {
                out.held.insert(key, held);
            }
            Ok(())
        },
    )
    .await?;
    Ok(out)
}

/// The store's orders of `span` computed before `since` (the default commission's last change):
/// they move with the commission.
pub async fn computed_before(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    span: Span,
    since: DateTime<Utc>,
) -> Result<BTreeSet<Key>, DbErr> {
    use orders::Column as C;
    let keys: Vec<Key> = spanned::<orders::Entity>(store, span, (C::AffiliateId, C::Day))
        .filter(orders::Column::ComputedAt.lt(since))
        .select_only()
        .columns([orders::Column::AffiliateId, orders::Column::Day])
        .into_tuple()
        .all(conn)
        .await?;
    Ok(keys.into_iter().collect())
}

/// The store's orders of these keys, whole (to be written).
pub async fn orders_of_keys(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    keys: &BTreeSet<Key>,
) -> Result<BTreeMap<Key, Order>, DbErr> {
    let affiliates: BTreeSet<i64> = keys.iter().map(|k| k.0).collect();
    let (Some(from), Some(to)) = (
        keys.iter().map(|k| k.1).min(),
        keys.iter().map(|k| k.1).max(),
    ) else {
        return Ok(BTreeMap::new());
    };
    let affiliates: Vec<i64> = affiliates.into_iter().collect();
    let mut out = BTreeMap::new();
    for chunk in affiliates.chunks(BATCH) {
        let q = orders::Entity::of_store(store)
            .filter(orders::Column::AffiliateId.is_in(chunk.iter().copied()))
            .filter(orders::Column::Day.between(from, to));
        for o in q.all(conn).await? {
            let key = (o.affiliate_id, o.day);
            if keys.contains(&key) {
                out.insert(key, o);
            }
        }
    }
    Ok(out)
}

pub async fn find_order(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
) -> Result<Option<Order>, DbErr> {
    let order = orders::Entity::of_store(store)
        .filter(orders::Column::AffiliateId.eq(affiliate_id))
        .filter(orders::Column::Day.eq(day));
    super::by_unique_key(conn, order).await
}

/// Adds new orders, each with its first version, in bulk. A new order has been pushed nowhere
/// and holds nothing: those columns of `new` are not read.
pub async fn insert_orders(conn: &impl ConnectionTrait, new: &[Order]) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    // New orders of one sync share their instants: each one's text is made once, not per row.
    let mut stamps: Vec<Stamp> = Vec::new();
    let mut index: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
    let mut stamp_of = |t: DateTime<Utc>| -> usize {
        *index.entry(t).or_insert_with(|| {
            stamps.push(Stamp::new(backend, t));
            stamps.len() - 1
        })
    };
    let at: Vec<[usize; 3]> = new
        .iter()
        .map(|o| {
            [
                stamp_of(o.computed_at),
                stamp_of(o.created_at),
                stamp_of(o.updated_at),
            ]
        })
        .collect();
    let stamp = |i: usize| &stamps[i];
    // A chunk at a time: only one chunk's rows are ever built.
    for (chunk, at) in new.chunks(CHUNK_ROWS).zip(at.chunks(CHUNK_ROWS)) {
        let orders: Vec<NewOrderRow<'_>> = chunk
            .iter()
            .zip(at)
            .map(|(o, [computed, created, updated])| NewOrderRow {
                store_id: &o.store_id,
                affiliate_id: o.affiliate_id,
                day: o.day,
                number: &o.number,
                currency: &o.currency,
                clicks: o.clicks,
                purchases: o.purchases,
                units: o.units,
                sales_minor: o.sales_minor,
                commission_minor: o.commission_minor,
                status: o.status.as_str(),
                version: o.version,
                basis: &o.basis,
                computed_at: stamp(*computed),
                push_state: o.push_state.as_str(),
                pushed_version: o.pushed_version,
                create_attempted: o.create_attempted,
                created_at: stamp(*created),
                updated_at: stamp(*updated),
            })
            .collect();
        insert_bulk(conn, "orders", &orders).await?;
        let versions: Vec<VersionRow<'_>> = chunk
            .iter()
            .zip(at)
            .map(|(o, [computed, ..])| VersionRow {
                store_id: &o.store_id,
                affiliate_id: o.affiliate_id,
                day: o.day,
                version: o.version,
                sales_minor: o.sales_minor,
                purchases: o.purchases,
                commission_minor: o.commission_minor,
                status: o.status.as_str(),
                created_at: stamp(*computed),
            })
            .collect();
        insert_bulk(conn, "order_versions", &versions).await?;
    }
    Ok(())
}

/// Writes an order as it now is; `new_version` records its amounts as a version too.
pub async fn update_order(
    conn: &impl ConnectionTrait,
    order: Order,
    new_version: bool,
) -> Result<Order, DbErr> {
    let order = order.into_active_model().reset_all().update(conn).await?;
    if new_version {
        insert_all::<order_versions::Entity>(conn, vec![version_row(&order)]).await?;
    }
    Ok(order)
}

fn version_row(o: &Order) -> order_versions::ActiveModel {
    order_versions::ActiveModel {
        store_id: Set(o.store_id.clone()),
        affiliate_id: Set(o.affiliate_id),
        day: Set(o.day),
        version: Set(o.version),
        sales_minor: Set(o.sales_minor),
        purchases: Set(o.purchases),
        commission_minor: Set(o.commission_minor),
        status: Set(o.status),
        created_at: Set(o.computed_at),
        ..Default::default()
    }
}

/// Holds a decrease of the order for the merchant: `proposal` is the JSON of what it would set.
pub async fn hold(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
    proposal: String,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    orders::Entity::update_of_store(store)
        .filter(orders::Column::AffiliateId.eq(affiliate_id))
        .filter(orders::Column::Day.eq(day))
        .col_expr(orders::Column::Held, Expr::value(Some(proposal)))
        .col_expr(
            orders::Column::HoldState,
            Expr::value(Some(HoldState::Held)),
        )
        .col_expr(orders::Column::HeldAt, Expr::value(Some(now)))
        .col_expr(orders::Column::UpdatedAt, Expr::value(now))
        .exec(conn)
        .await
        .and_then(one_row)
}

/// The store's orders with a decrease waiting for the merchant, oldest day first.
pub async fn held_of(conn: &impl ConnectionTrait, store: &StoreId) -> Result<Vec<Order>, DbErr> {
    orders::Entity::of_store(store)
        .filter(orders::Column::HoldState.eq(HoldState::Held))
        .order_by_asc(orders::Column::Day)
        .order_by_asc(orders::Column::AffiliateId)
        .all(conn)
        .await
}

/// The merchant keeps the store's held orders as they are.
pub async fn discard_holds(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    Ok(orders::Entity::update_of_store(store)
        .col_expr(orders::Column::HoldState, Expr::value(HoldState::Discarded))
        .col_expr(orders::Column::UpdatedAt, Expr::value(now))
        .filter(orders::Column::HoldState.eq(HoldState::Held))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Held decreases of every store (the operator's gauge).
pub async fn count_held(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    orders::Entity::find()
        .filter(orders::Column::HoldState.eq(HoldState::Held))
        .count(conn)
        .await
}

/// Written before a create is sent: after a crash or a timeout, the next try looks first.
pub async fn mark_create_attempted(
    conn: &impl ConnectionTrait,
    order: Order,
) -> Result<Order, DbErr> {
    let mut row: orders::ActiveModel = order.into();
    row.create_attempted = Set(true);
    row.update(conn).await
}

/// What the program shows of an order after a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub id: String,
    pub total_minor: Option<i64>,
    pub commission_minor: Option<i64>,
    pub status: Option<String>,
}

/// Records what the program now shows. Only the version that was pushed is marked: a newer one
/// computed meanwhile stays due.
///
/// Fenced: `pushed_version` is only ever raised. A stale worker that finishes the push of an
/// older version after a newer one was recorded changes nothing (one conditional UPDATE, so no
/// read-then-write race either). Returns whether the push was recorded.
pub async fn mark_pushed(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    pushed: &Order,
    remote: Option<&Remote>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut update = orders::Entity::update_of_store(store)
        .filter(orders::Column::AffiliateId.eq(pushed.affiliate_id))
        .filter(orders::Column::Day.eq(pushed.day))
        .filter(orders::Column::PushedVersion.lte(pushed.version))
        .col_expr(orders::Column::PushedVersion, Expr::value(pushed.version))
        // Up to date only when no newer version was computed meanwhile: that one stays due.
        .col_expr(
            orders::Column::PushState,
            Expr::case(
                orders::Column::Version.eq(pushed.version),
                Expr::value(PushState::Pushed),
            )
            .finally(Expr::value(PushState::Pending))
            .into(),
        )
        .col_expr(
            orders::Column::LastPushError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(orders::Column::PushedAt, Expr::value(Some(now)))
        .col_expr(orders::Column::UpdatedAt, Expr::value(now));
    if let Some(r) = remote {
        update = update
            .col_expr(orders::Column::RemoteId, Expr::value(Some(r.id.clone())))
            .col_expr(orders::Column::PushedSalesMinor, Expr::value(r.total_minor))
            .col_expr(
                orders::Column::PushedCommissionMinor,
                Expr::value(r.commission_minor),
            )
            .col_expr(orders::Column::PushedStatus, Expr::value(r.status.clone()));
    }
    Ok(update.exec(conn).await?.rows_affected == 1)
}

/// The push went to the dead letters: the merchant and the operator see it.
pub async fn mark_dead(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
    error: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    orders::Entity::update_of_store(store)
        .col_expr(orders::Column::PushState, Expr::value(PushState::Dead))
        .col_expr(
            orders::Column::LastPushError,
            Expr::value(Some(error.chars().take(500).collect::<String>())),
        )
        .col_expr(orders::Column::UpdatedAt, Expr::value(now))
        .filter(orders::Column::AffiliateId.eq(affiliate_id))
        .filter(orders::Column::Day.eq(day))
        .exec(conn)
        .await?;
    Ok(())
}

/// Locks the order's row until the end of the transaction (PostgreSQL; SQLite has one writer).
pub async fn lock_order(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
) -> Result<(), DbErr> {
    super::lock_row(
        conn,
        "SELECT 1 FROM orders WHERE store_id = $1 AND affiliate_id = $2 AND day = $3 FOR UPDATE",
        vec![store.as_str().into(), affiliate_id.into(), day.into()],
    )
    .await
}

/// Dead pushes queued again: their orders are pending once more.
pub async fn revive_dead(
    conn: &impl ConnectionTrait,
    store: Option<&StoreId>,
) -> Result<u64, DbErr> {
    let update = match store {
        Some(store) => orders::Entity::update_of_store(store),
        None => orders::Entity::update_many(),
    };
    Ok(update
        .col_expr(orders::Column::PushState, Expr::value(PushState::Pending))
        .filter(orders::Column::PushState.eq(PushState::Dead))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The store's queued pushes were cancelled (uninstall): after a reinstall, the next sync queues
/// them again.
pub async fn unqueue_pushes(conn: &impl ConnectionTrait, store: &StoreId) -> Result<u64, DbErr> {
    Ok(orders::Entity::update_of_store(store)
        .col_expr(orders::Column::PushState, Expr::value(PushState::Waiting))
        .filter(orders::Column::PushState.eq(PushState::Pending))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The store's orders in any of `states` (all of them when empty).
pub async fn count_orders(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    states: &[PushState],
) -> Result<u64, DbErr> {
    let mut q = orders::Entity::of_store(store);
    if !states.is_empty() {
        q = q.filter(orders::Column::PushState.is_in(states.iter().copied()));
    }
    q.count(conn).await
}

/// Every order of the store, newest day first.
pub async fn orders_of(conn: &impl ConnectionTrait, store: &StoreId) -> Result<Vec<Order>, DbErr> {
    orders::Entity::of_store(store)
        .order_by_desc(orders::Column::Day)
        .order_by_asc(orders::Column::AffiliateId)
        .all(conn)
        .await
}

/// Every version of the store's orders, oldest first, by order.
pub async fn versions_of(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<BTreeMap<Key, Vec<OrderVersion>>, DbErr> {
    let mut out: BTreeMap<Key, Vec<OrderVersion>> = BTreeMap::new();
    for v in order_versions::Entity::of_store(store)
        .order_by_asc(order_versions::Column::Version)
        .all(conn)
        .await?
    {
        out.entry((v.affiliate_id, v.day)).or_default().push(v);
    }
    Ok(out)
}

/// The Brand Referral Bonus estimate of every stored day, in minor units.
pub async fn brb_of(
    conn: &impl ConnectionTrait,
    store: &StoreId,
) -> Result<BTreeMap<Key, i64>, DbErr> {
    Ok(daily_figures::Entity::of_store(store)
        .all(conn)
        .await?
        .into_iter()
        .map(|f| ((f.affiliate_id, f.day), f.brb_minor))
        .collect())
}

/// Which of the store's orders the ledger page shows (every field optional).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub affiliate_id: Option<i64>,
    /// First day shown, inclusive.
    pub from: Option<NaiveDate>,
    /// Last day shown, inclusive.
    pub to: Option<NaiveDate>,
    pub push_state: Option<PushState>,
}

/// The store's orders that `filter` lets through, in SQL.
fn filtered(store: &StoreId, filter: &OrderFilter) -> Select<orders::Entity> {
    let mut q = orders::Entity::of_store(store);
    if let Some(affiliate) = filter.affiliate_id {
        q = q.filter(orders::Column::AffiliateId.eq(affiliate));
    }
    if let Some(from) = filter.from {
        q = q.filter(orders::Column::Day.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(orders::Column::Day.lte(to));
    }
    if let Some(state) = filter.push_state {
        q = q.filter(orders::Column::PushState.eq(state));
    }
    q
}

/// One page of the store's orders that `filter` lets through, newest day first: `per_page`
/// orders after the first `offset`. The page's keys are found first (sorting two columns, not
/// whole orders: a deep page of a large store sorts every order), then its orders by key.
pub async fn orders_page(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    filter: &OrderFilter,
    offset: u64,
    per_page: u64,
) -> Result<Vec<Order>, DbErr> {
    let keys: Vec<Key> = filtered(store, filter)
        .select_only()
        .column(orders::Column::AffiliateId)
        .column(orders::Column::Day)
        .order_by_desc(orders::Column::Day)
        .order_by_asc(orders::Column::AffiliateId)
        .offset(offset)
        .limit(per_page)
        .into_tuple()
        .all(conn)
        .await?;
    let wanted: BTreeSet<Key> = keys.iter().copied().collect();
    let mut found = orders_of_keys(conn, store, &wanted).await?;
    Ok(keys.iter().filter_map(|k| found.remove(k)).collect())
}

/// How many of the store's orders `filter` lets through.
pub async fn count_filtered(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    filter: &OrderFilter,
) -> Result<u64, DbErr> {
    filtered(store, filter).count(conn).await
}

/// The sales and commission of the orders `filter` lets through, per currency (never mixed),
/// in minor units, by currency code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotal {
    pub currency: String,
    pub orders: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
}

pub async fn totals_filtered(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    filter: &OrderFilter,
) -> Result<Vec<CurrencyTotal>, DbErr> {
    let rows: Vec<(String, i64, i64, i64)> = filtered(store, filter)
        .select_only()
        .column(orders::Column::Currency)
        .column_as(Expr::cust("CAST(COUNT(*) AS BIGINT)"), "orders")
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(sales_minor), 0) AS BIGINT)"),
            "sales",
        )
        .column_as(
            Expr::cust("CAST(COALESCE(SUM(commission_minor), 0) AS BIGINT)"),
            "commission",
        )
        .group_by(orders::Column::Currency)
        .order_by_asc(orders::Column::Currency)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(currency, orders, sales_minor, commission_minor)| CurrencyTotal {
                currency,
                orders,
                sales_minor,
                commission_minor,
            },
        )
        .collect())
}

/// The store's order of that number; another store's is never found.
pub async fn order_numbered(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    number: &str,
) -> Result<Option<Order>, DbErr> {
    let order = orders::Entity::of_store(store).filter(orders::Column::Number.eq(number));
    super::by_unique_key(conn, order).await
}

/// Every version of one of the store's orders, oldest first.
pub async fn versions_of_order(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (affiliate_id, day): Key,
) -> Result<Vec<OrderVersion>, DbErr> {
    order_versions::Entity::of_store(store)
        .filter(order_versions::Column::AffiliateId.eq(affiliate_id))
        .filter(order_versions::Column::Day.eq(day))
        .order_by_asc(order_versions::Column::Version)
        .all(conn)
        .await
}
