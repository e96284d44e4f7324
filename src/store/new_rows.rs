//! The rows the sync adds in bulk ([`insert_bulk`](super::bulk::insert_bulk)): each hands its
//! values in the order of its columns (bound one by one on SQLite, gathered into an array per
//! column on PostgreSQL). Each also serializes to an object of its columns, so that a test holds
//! every value to the column it names.
use chrono::NaiveDate;
use sea_orm::Value;
use serde::Serialize;

use super::bulk::{BulkRow, Stamp};
use crate::domain::figures::Figures;

fn day(d: NaiveDate) -> Value {
    // As serde writes a day, and so as the JSON path stores it.
    d.to_string().into()
}

/// The ten figures, in the order of [`Figures`] (and of the tables' columns).
fn figure_cells(f: &Figures, out: &mut Vec<Value>) {
    out.extend([
        f.clicks.into(),
        f.detail_page_views.into(),
        f.add_to_carts.into(),
        f.purchases.into(),
        f.units.into(),
        f.sales_minor.into(),
        f.total_purchases.into(),
        f.total_units.into(),
        f.total_sales_minor.into(),
        f.brb_minor.into(),
    ]);
}

/// A new row of `daily_figures`.
#[derive(Serialize)]
pub(super) struct FiguresRow<'a> {
    pub store_id: &'a str,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    #[serde(flatten)]
    pub figures: &'a Figures,
    pub first_seen_at: &'a Stamp,
    pub updated_at: &'a Stamp,
}

impl BulkRow for FiguresRow<'_> {
    const COLUMNS: &'static [&'static str] = &[
        "store_id",
        "affiliate_id",
        "day",
        "clicks",
        "detail_page_views",
        "add_to_carts",
        "purchases",
        "units",
        "sales_minor",
        "total_purchases",
        "total_units",
        "total_sales_minor",
        "brb_minor",
        "first_seen_at",
        "updated_at",
    ];

    fn cells(&self, out: &mut Vec<Value>) {
        out.extend([
            self.store_id.into(),
            self.affiliate_id.into(),
            day(self.day),
        ]);
        figure_cells(self.figures, out);
        out.extend([self.first_seen_at.cell(), self.updated_at.cell()]);
    }
}

/// A new order: what the program was told is still nothing.
#[derive(Serialize)]
pub(super) struct NewOrderRow<'a> {
    pub store_id: &'a str,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    pub number: &'a str,
    pub currency: &'a str,
    pub clicks: i64,
    pub purchases: i64,
    pub units: i64,
    pub sales_minor: i64,
    pub commission_minor: i64,
    pub status: &'static str,
    pub version: i32,
    pub basis: &'a str,
    pub computed_at: &'a Stamp,
    pub push_state: &'static str,
    pub pushed_version: i32,
    pub create_attempted: bool,
    pub created_at: &'a Stamp,
    pub updated_at: &'a Stamp,
}

impl BulkRow for NewOrderRow<'_> {
    const COLUMNS: &'static [&'static str] = &[
        "store_id",
        "affiliate_id",
        "day",
        "number",
        "currency",
        "clicks",
        "purchases",
        "units",
        "sales_minor",
        "commission_minor",
        "status",
        "version",
        "basis",
        "computed_at",
        "push_state",
        "pushed_version",
        "create_attempted",
        "created_at",
        "updated_at",
    ];

    fn cells(&self, out: &mut Vec<Value>) {
        out.extend([
            self.store_id.into(),
            self.affiliate_id.into(),
            day(self.day),
            self.number.into(),
            self.currency.into(),
            self.clicks.into(),
            self.purchases.into(),
            self.units.into(),
            self.sales_minor.into(),
            self.commission_minor.into(),
            self.status.into(),
            i64::from(self.version).into(),
            self.basis.into(),
            self.computed_at.cell(),
            self.push_state.into(),
            i64::from(self.pushed_version).into(),
            self.create_attempted.into(),
            self.created_at.cell(),
            self.updated_at.cell(),
        ]);
    }
}

/// One version of an order.
#[derive(Serialize)]
pub(super) struct VersionRow<'a> {
    pub store_id: &'a str,
    pub affiliate_id: i64,
    pub day: NaiveDate,
    pub version: i32,
    pub sales_minor: i64,
    pub purchases: i64,
    pub commission_minor: i64,
    pub status: &'static str,
    pub created_at: &'a Stamp,
}

impl BulkRow for VersionRow<'_> {
    const COLUMNS: &'static [&'static str] = &[
        "store_id",
        "affiliate_id",
        "day",
        "version",
        "sales_minor",
        "purchases",
        "commission_minor",
        "status",
        "created_at",
    ];

    fn cells(&self, out: &mut Vec<Value>) {
        out.extend([
            self.store_id.into(),
            self.affiliate_id.into(),
            day(self.day),
            i64::from(self.version).into(),
            self.sales_minor.into(),
            self.purchases.into(),
            self.commission_minor.into(),
            self.status.into(),
            self.created_at.cell(),
        ]);
    }
}

/// A row of a report, staged (`report_rows`).
#[derive(Serialize)]
pub struct ReportRow<'a> {
    pub run_id: i64,
    pub store_id: &'a str,
    /// Of the store's campaign, with an ad group spelled `a{affiliate_id}`.
    pub ours: bool,
    /// 0 when not `ours`.
    pub affiliate_id: i64,
    pub day: NaiveDate,
    /// Both empty when `ours`: the row's key is then (`affiliate_id`, `day`).
    pub campaign_id: &'a str,
    pub ad_group_id: &'a str,
    /// False when a money or purchase metric was missing (its figures are then zeros); a key
    /// staged again by a later page turns false too (`report_rows::stage`), its figures left
    /// as they were and meaning nothing.
    pub complete: bool,
    #[serde(flatten)]
    pub figures: &'a Figures,
}

impl BulkRow for ReportRow<'_> {
    const COLUMNS: &'static [&'static str] = &[
        "run_id",
        "store_id",
        "ours",
        "affiliate_id",
        "day",
        "campaign_id",
        "ad_group_id",
        "complete",
        "clicks",
        "detail_page_views",
        "add_to_carts",
        "purchases",
        "units",
        "sales_minor",
        "total_purchases",
        "total_units",
        "total_sales_minor",
        "brb_minor",
    ];

    fn cells(&self, out: &mut Vec<Value>) {
        out.extend([
            self.run_id.into(),
            self.store_id.into(),
            self.ours.into(),
            self.affiliate_id.into(),
            day(self.day),
            self.campaign_id.into(),
            self.ad_group_id.into(),
            self.complete.into(),
        ]);
        figure_cells(self.figures, out);
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use sea_orm::DbBackend;

    use super::*;
    use crate::store::bulk::cell_of_json;

    /// The values SQLite binds are the JSON object's, column by column, and the columns are
    /// exactly its keys: the two paths write the same row.
    fn agree<T: BulkRow>(row: &T) {
        let serde_json::Value::Object(json) = serde_json::to_value(row).unwrap() else {
            panic!("a row is an object")
        };
        let mut keys: Vec<&str> = json.keys().map(String::as_str).collect();
        let mut columns = T::COLUMNS.to_vec();
        keys.sort_unstable();
        columns.sort_unstable();
        assert_eq!(keys, columns);
        let mut cells = vec![];
        row.cells(&mut cells);
        let from_json: Vec<Value> = T::COLUMNS
            .iter()
            .map(|c| cell_of_json(json[*c].clone()))
            .collect();
        assert_eq!(cells, from_json);
    }

    #[test]
    fn each_row_binds_what_its_json_says() {
        let at = Stamp::new(
            DbBackend::Sqlite,
            Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 1).unwrap(),
        );
        let later = Stamp::new(
            DbBackend::Sqlite,
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap(),
        );
        let day = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
        // Every figure distinct, so that two swapped columns cannot agree.
        let figures = Figures {
            clicks: 1,
            detail_page_views: 2,
            add_to_carts: 3,
            purchases: 4,
            units: 5,
            sales_minor: 6,
            total_purchases: 7,
            total_units: 8,
            total_sales_minor: 9,
            brb_minor: 10,
        };
        agree(&FiguresRow {
            store_id: "st_1",
            affiliate_id: 11,
            day,
            figures: &figures,
            first_seen_at: &at,
            updated_at: &later,
        });
        agree(&NewOrderRow {
            store_id: "st_1",
            affiliate_id: 11,
            day,
            number: "AMZ-c-a11-20261129",
            currency: "USD",
            clicks: 1,
            purchases: 2,
            units: 3,
            sales_minor: 4,
            commission_minor: 5,
            status: "approved",
            version: 6,
            basis: "10% of sales",
            computed_at: &at,
            push_state: "waiting",
            pushed_version: 7,
            create_attempted: true,
            created_at: &later,
            updated_at: &at,
        });
        agree(&ReportRow {
            run_id: 12,
            store_id: "st_1",
            ours: true,
            affiliate_id: 11,
            day,
            campaign_id: "ab_st_1",
            ad_group_id: "a11",
            complete: true,
            figures: &figures,
        });
        agree(&VersionRow {
            store_id: "st_1",
            affiliate_id: 11,
            day,
            version: 1,
            sales_minor: 2,
            purchases: 3,
            commission_minor: 4,
            status: "approved",
            created_at: &at,
        });
    }
}
