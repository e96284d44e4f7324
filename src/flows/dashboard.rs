//! What the merchant's Overview, Affiliates, affiliate and Figures pages show: Amazon's daily
//! figures and the orders computed from them, added up in SQL over the last 30 or 60 days, amounts
//! always with their currency (DESIGN §4.2, §5).
use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    domain::{currency::Currency, ids::StoreId},
    flows::views::{self, money},
    store::{
        OrderStatus, PushState, SalesBasis, connections, ledger,
        stores::{self},
        sums::{self, FigureSums, OrderSums},
    },
};

/// The days the Figures and affiliate pages show: Amazon restates a day for 60 days (DESIGN §5).
pub const WINDOW_DAYS: u64 = 60;
/// The days the Overview and Affiliates pages add up.
pub const RECENT_DAYS: u64 = 30;
/// Amazon completes a day's figures within 48 hours (DESIGN §3): younger days may still grow.
pub const SETTLE_DAYS: i64 = 2;

/// The `days` days that end yesterday on the store's marketplace, inclusive both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub today: NaiveDate,
}

impl Window {
    fn ending_before(today: NaiveDate, days: u64) -> Self {
        Self {
            from: today - Days::new(days),
            to: today - Days::new(1),
            today,
        }
    }

    fn range(&self) -> (NaiveDate, NaiveDate) {
        (self.from, self.to)
    }

    /// Every day of the window, oldest first.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }
}

/// The marketplace's currency and the sales basis that the figures are read in.
#[derive(Debug, Clone)]
pub struct Basis {
    /// ISO code of the figures' money: the Amazon marketplace's, else the store's.
    pub currency: String,
    pub exponent: u32,
    pub sales: SalesBasis,
}

impl Basis {
    /// Purchases and sales (minor units) of `f` on this basis.
    fn pick(&self, f: &FigureSums) -> (i64, i64) {
        match self.sales {
            SalesBasis::Promoted => (f.purchases, f.sales_minor),
            SalesBasis::Total => (f.total_purchases, f.total_sales_minor),
        }
    }

    /// Minor units as a number of major units, for charts.
    pub fn major(&self, minor: i64) -> f64 {
        minor as f64 / 10f64.powi(self.exponent as i32)
    }

    fn money(&self, minor: i64) -> String {
        money(minor, &self.currency)
    }
}

/// Figures and commission of one day, or of a sum of days; money formatted with its currency.
#[derive(Debug, Clone, Default)]
pub struct Line {
    pub clicks: i64,
    pub purchases: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
    pub brb_minor: i64,
    pub orders: i64,
    /// `"50.00 USD"`.
    pub sales: String,
    pub commission: String,
    pub brand_referral_bonus: String,
}

impl Line {
    /// The figures `f` and the orders `o` (of the basis currency only) on `basis`.
    fn of(basis: &Basis, f: &FigureSums, o: Option<&Vec<OrderSums>>) -> Self {
        let (purchases, sales_minor) = basis.pick(f);
        let mine = o
            .into_iter()
            .flatten()
            .filter(|s| s.currency == basis.currency);
        let (orders, commission_minor) = mine.fold((0i64, 0i64), |(n, c), s| {
            (n + s.orders, c.saturating_add(s.commission_minor))
        });
        Self {
            clicks: f.clicks,
            purchases,
            sales_minor,
            commission_minor,
            brb_minor: f.brb_minor,
            orders,
            sales: basis.money(sales_minor),
            commission: basis.money(commission_minor),
            brand_referral_bonus: basis.money(f.brb_minor),
        }
    }

    fn add(mut self, other: &Line, basis: &Basis) -> Self {
        self.clicks += other.clicks;
        self.purchases += other.purchases;
        self.sales_minor = self.sales_minor.saturating_add(other.sales_minor);
        self.commission_minor = self.commission_minor.saturating_add(other.commission_minor);
        self.brb_minor = self.brb_minor.saturating_add(other.brb_minor);
        self.orders += other.orders;
        self.sales = basis.money(self.sales_minor);
        self.commission = basis.money(self.commission_minor);
        self.brand_referral_bonus = basis.money(self.brb_minor);
        self
    }
}

/// One day of a daily table.
#[derive(Debug, Clone)]
pub struct DayLine {
    pub day: NaiveDate,
    pub line: Line,
    /// Younger than 48 hours: Amazon may still add to it.
    pub settling: bool,
    /// Amazon reported figures for this day (else the zeros are ours).
    pub has_figures: bool,
}

/// A daily table over a window, with its sum.
#[derive(Debug, Clone)]
pub struct Daily {
    pub window: Window,
    pub basis: Basis,
    /// Oldest first, one per day of the window (zeros where Amazon reported nothing).
    pub days: Vec<DayLine>,
    pub total: Line,
    /// Orders of the window in another currency than the basis's (never added in).
    pub other_currency_orders: i64,
}

/// The store's currency and sales basis, and today on its marketplace.
pub async fn basis(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    now: DateTime<Utc>,
) -> Result<Option<(Basis, NaiveDate)>, DbErr> {
    let Some(row) = stores::find_active(conn, store).await? else {
        return Ok(None);
    };
    let conn_row = connections::find(conn, store).await?;
    let currency = conn_row
        .as_ref()
        .and_then(|c| c.currency_code.clone())
        .unwrap_or(row.currency);
    let exponent = Currency::parse(&currency)
        .map(|c| c.exponent())
        .unwrap_or(2);
    let tz = conn_row.and_then(|c| c.timezone);
    let today = crate::flows::sync::today(now, crate::flows::sync::zone(tz.as_deref()));
    let basis = Basis {
        currency,
        exponent,
        sales: row.sales_basis,
    };
    Ok(Some((basis, today)))
}

/// The store's (or one affiliate's) daily figures and commission over the `days` days that end
/// yesterday.
pub async fn daily(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (basis, today): (Basis, NaiveDate),
    days: u64,
    affiliate: Option<i64>,
) -> Result<Daily, DbErr> {
    let window = Window::ending_before(today, days);
    let figures = sums::figures_per_day(conn, store, window.range(), affiliate).await?;
    let orders = sums::orders_per_day(conn, store, window.range(), affiliate).await?;
    let other_currency_orders = orders
        .values()
        .flatten()
        .filter(|s| s.currency != basis.currency)
        .map(|s| s.orders)
        .sum();
    let none = FigureSums::default();
    let days: Vec<DayLine> = window
        .days()
        .map(|day| DayLine {
            day,
            line: Line::of(&basis, figures.get(&day).unwrap_or(&none), orders.get(&day)),
            settling: (today - day).num_days() < SETTLE_DAYS,
            has_figures: figures.contains_key(&day),
        })
        .collect();
    let total = days.iter().fold(Line::of(&basis, &none, None), |sum, d| {
        sum.add(&d.line, &basis)
    });
    Ok(Daily {
        window,
        basis,
        days,
        total,
        other_currency_orders,
    })
}

/// One affiliate of the Affiliates page.
#[derive(Debug, Clone)]
pub struct AffiliateLine {
    pub affiliate_id: i64,
    pub name: String,
    pub ref_code: String,
    pub status: String,
    /// The link to the main landing page (the first current one), when Amazon is connected.
    pub link: Option<String>,
    pub line: Line,
}

/// Every current affiliate with its last `RECENT_DAYS` days, by affiliate id.
pub async fn affiliates(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    (basis, today): (Basis, NaiveDate),
) -> Result<(Window, Vec<AffiliateLine>), DbErr> {
    let window = Window::ending_before(today, RECENT_DAYS);
    let figures = sums::figures_per_affiliate(conn, store, window.range()).await?;
    let orders = sums::orders_per_affiliate(conn, store, window.range()).await?;
    let mut links: BTreeMap<i64, String> = BTreeMap::new();
    for l in crate::store::links::current(conn, store).await? {
        links.entry(l.affiliate_id).or_insert(l.url);
    }
    let none = FigureSums::default();
    let rows = crate::store::affiliates::list_current(conn, store)
        .await?
        .into_iter()
        .map(|a| AffiliateLine {
            line: Line::of(
                &basis,
                figures.get(&a.affiliate_id).unwrap_or(&none),
                orders.get(&a.affiliate_id),
            ),
            link: links.remove(&a.affiliate_id),
            affiliate_id: a.affiliate_id,
            name: a.name,
            ref_code: a.ref_code.unwrap_or_default(),
            status: a.status,
        })
        .collect();
    Ok((window, rows))
}

/// An order of one affiliate's day, as its page lists it.
#[derive(Debug, Clone)]
pub struct OrderCell {
    pub number: String,
    pub version: i32,
    pub status: OrderStatus,
    pub push_state: PushState,
    pub held: bool,
}

/// One affiliate's page: who, its links, its 60 days and the orders of those days by day.
#[derive(Debug, Clone)]
pub struct AffiliatePage {
    pub affiliate_id: i64,
    pub name: String,
    pub ref_code: String,
    pub status: String,
    pub links: Vec<crate::store::links::CurrentLink>,
    pub daily: Daily,
    pub orders: BTreeMap<NaiveDate, OrderCell>,
}

impl AffiliatePage {
    /// The order of `day`, when the affiliate has one.
    pub fn order_on(&self, day: &NaiveDate) -> Option<&OrderCell> {
        self.orders.get(day)
    }
}

/// The store's affiliate `affiliate_id`; `None` when the store has no such current affiliate.
pub async fn affiliate(
    conn: &impl ConnectionTrait,
    store: &StoreId,
    at: (Basis, NaiveDate),
    affiliate_id: i64,
) -> Result<Option<AffiliatePage>, DbErr> {
    let Some(a) = crate::store::affiliates::find_current(conn, store, affiliate_id).await? else {
        return Ok(None);
    };
    let daily = daily(conn, store, at, WINDOW_DAYS, Some(affiliate_id)).await?;
    let filter = views::OrderFilter {
        affiliate_id: Some(affiliate_id),
        from: Some(daily.window.from),
        to: Some(daily.window.to),
        push_state: None,
    };
    let orders = ledger::orders_page(conn, store, &filter, 0, WINDOW_DAYS)
        .await?
        .into_iter()
        .map(|o| {
            let cell = OrderCell {
                held: o.hold_state == Some(crate::store::HoldState::Held),
                number: o.number,
                version: o.version,
                status: o.status,
                push_state: o.push_state,
            };
            (o.day, cell)
        })
        .collect();
    let links = crate::store::links::current(conn, store)
        .await?
        .into_iter()
        .filter(|l| l.affiliate_id == affiliate_id)
        .collect();
    Ok(Some(AffiliatePage {
        affiliate_id,
        name: a.name,
        ref_code: a.ref_code.unwrap_or_default(),
        status: a.status,
        links,
        daily,
        orders,
    }))
}

impl Daily {
    /// The table as CSV (RFC 4180, header row), oldest day first, money as decimal major units
    /// with the currency in its own column: `day,clicks,purchases,sales,commission,brand_referral_bonus,orders,currency`.
    pub fn to_csv(&self) -> String {
        let amount = |minor| crate::domain::money::format_minor(minor, self.basis.exponent);
        let mut out = String::from(
            "day,clicks,purchases,sales,commission,brand_referral_bonus,orders,currency\n",
        );
        for d in &self.days {
            let l = &d.line;
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                d.day,
                l.clicks,
                l.purchases,
                amount(l.sales_minor),
                amount(l.commission_minor),
                amount(l.brb_minor),
                l.orders,
                self.basis.currency,
            ));
        }
        out
    }
}
