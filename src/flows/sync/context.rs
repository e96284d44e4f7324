//! What one ingest works with: the store, its campaign and currencies, the commission and the
//! rules of the day (DESIGN §5).
use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{
    domain::{commission::DefaultCommission, currency::Currency, figures::Basis, ids::StoreId},
    store::runs,
};

/// The last day whose figures may still change an order: age 60. From age 61 a day is final.
pub const FINAL_AFTER_DAYS: i64 = 60;

pub struct Context<'a> {
    pub store: &'a StoreId,
    pub campaign_id: &'a str,
    /// The Amazon profile's currency: every amount of the report, and of the orders.
    pub currency: Currency,
    /// The program's currency: a flat commission's.
    pub program_currency: Currency,
    pub commission: DefaultCommission,
    pub basis: Basis,
    /// How long a vanished day must stay absent before it is zeroed.
    pub confirm_absence: Duration,
    /// The share of the window's pushed commission above which one sync's decreases are held.
    pub hold_share: Decimal,
    /// When the default commission last changed: orders computed before it move with it.
    pub commission_since: DateTime<Utc>,
    /// Today in the profile's time zone: yesterday has age 1.
    pub today: NaiveDate,
    pub push_after_days: u32,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub now: DateTime<Utc>,
}

impl Context<'_> {
    /// A day's age on the marketplace: yesterday has age 1.
    pub fn age(&self, day: NaiveDate) -> i64 {
        (self.today - day).num_days()
    }

    /// Whether a day's orders may still change: ages 1 to 60 (DESIGN §5).
    pub fn is_open(&self, day: NaiveDate) -> bool {
        (1..=FINAL_AFTER_DAYS).contains(&self.age(day))
    }
}

/// What one ingest counted.
pub type Summary = runs::Counts;

pub fn order_number(campaign: &str, affiliate_id: i64, day: NaiveDate) -> String {
    format!("AMZ-{campaign}-a{affiliate_id}-{}", day.format("%Y%m%d"))
}
