//! The PERFORMANCE report grouped by ADGROUP (DESIGN §4.3), every page, read leniently: metrics as
//! strings or numbers, `null` ad groups, `cursorId` empty, null or absent on the last page.
use std::{
    borrow::Cow,
    collections::{BTreeMap, btree_map::Entry},
};

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::page::{self, Fields, Scalar};
pub use crate::domain::figures::Figures;
use crate::domain::money::{to_count, to_minor};

pub const METRICS: &str = "Click-throughs,attributedDetailPageViewsClicks14d,attributedAddToCartClicks14d,attributedPurchases14d,unitsSold14d,attributedSales14d,attributedTotalPurchases14d,totalUnitsSold14d,totalAttributedSales14d,brb_bonus_amount";
pub const PAGE_SIZE: u32 = 5000;
/// A stop for a cursor that never ends (5,000 × 1,000 rows is far beyond 60 days of any store).
pub const MAX_PAGES: usize = 1000;
/// The largest figure a row may carry (a count, or money in minor units: 10 billion dollars);
/// above it the row is incomplete.
pub const MAX_FIGURE: i64 = 1_000_000_000_000;

/// What one row of the report says: its figures, or that they are incomplete (a money or
/// purchase metric absent, null, `""` or not a number). Incomplete is never read as zero
/// (DESIGN §4.3, §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reading {
    Complete(Figures),
    Incomplete,
}

impl Reading {
    /// Two rows of one key from different publishers: their sum, incomplete if either is or if the
    /// sum overflows.
    fn add(&mut self, other: Reading) {
        *self = match (&*self, other) {
            (Reading::Complete(a), Reading::Complete(b)) => a
                .checked_add(&b)
                .map_or(Reading::Incomplete, Reading::Complete),
            _ => Reading::Incomplete,
        };
    }
}

/// Rows keyed by (campaign id, ad group id or "" for null, day). Money is in minor units of the
/// profile's currency, the currency every amount of a report is in.
pub type Rows = BTreeMap<(String, String, NaiveDate), Reading>;

pub fn request_body(
    advertiser_id: &str,
    from: NaiveDate,
    to: NaiveDate,
    cursor: Option<&str>,
) -> Value {
    let mut body = json!({
        "reportType": "PERFORMANCE",
        "advertiserIds": advertiser_id,
        "startDate": from.format("%Y%m%d").to_string(),
        "endDate": to.format("%Y%m%d").to_string(),
        "groupBy": "ADGROUP",
        "metrics": METRICS,
        "count": PAGE_SIZE,
    });
    if let Some(cursor) = cursor {
        body["cursorId"] = cursor.into();
    }
    body
}

/// The next page's cursor, or None on the last page ([`page::cursor_of`]; a page whose cursor
/// names no page is refused by [`read_page`]).
pub fn next_cursor(page: &Value) -> Option<String> {
    page::cursor_of(Scalar::of(page.get("cursorId")).as_ref())
        .ok()
        .flatten()
}

#[derive(Debug, thiserror::Error)]
#[error("report row {row}: {problem}")]
pub struct BadRow {
    pub row: String,
    pub problem: String,
}

fn text(v: &Option<Scalar<'_>>) -> Option<String> {
    match v.as_ref()? {
        // Ids are stored (unmatched rows keep them): NUL-free, as every database can store them.
        Scalar::Text(s) => Some(crate::domain::text::storable(s).into_owned()),
        Scalar::Number(n) => Some(n.to_string()),
        Scalar::Other => None,
    }
}

/// A metric's text: `None` when absent, null or `""`; `Err` when it is there but no number.
fn metric<'a>(v: &'a Option<Scalar<'_>>) -> Result<Option<Cow<'a, str>>, ()> {
    match v {
        None => Ok(None),
        Some(Scalar::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Scalar::Text(s)) => Ok(Some(Cow::Borrowed(s))),
        Some(Scalar::Number(n)) => Ok(Some(Cow::Owned(n.to_string()))),
        Some(Scalar::Other) => Err(()),
    }
}

/// The metrics a commission is computed from: each must be there and numeric (`figures` reads
/// them with `required`).
#[cfg(test)]
const REQUIRED: [&str; 4] = [
    "attributedSales14d",
    "totalAttributedSales14d",
    "attributedPurchases14d",
    "attributedTotalPurchases14d",
];

/// A metric that may be missing (Amazon omits `brb_bonus_amount` for non-BRB advertisers, traffic
/// metrics may be absent): it counts as zero, but it may not be there and not a number.
fn optional<'a>(v: &'a Option<Scalar<'_>>) -> Option<Cow<'a, str>> {
    Some(metric(v).ok()?.unwrap_or(Cow::Borrowed("0")))
}

/// A row's figures, or `None` when it is incomplete: one of `REQUIRED` missing, or any metric
/// there but not a number, negative or beyond `MAX_FIGURE`.
fn figures(row: &Fields<'_>, exponent: u32) -> Option<Figures> {
    // A negative figure, or one beyond any real link's day, is no reading Amazon gives: never
    // trusted, so the row is incomplete. The bound also keeps every sum the pages and the ledger
    // add up (a million such rows) inside a 64-bit integer.
    let plausible = |n: &i64| (0..=MAX_FIGURE).contains(n);
    let m = &row.metrics;
    let required = |i: usize| metric(&m[i]).ok().flatten();
    let count = |t: Option<Cow<'_, str>>| to_count(&t?).ok().filter(plausible);
    let money = |t: Option<Cow<'_, str>>| to_minor(&t?, exponent).ok().filter(plausible);
    // Indexes into `METRIC_NAMES`.
    Some(Figures {
        clicks: count(optional(&m[0]))?,
        detail_page_views: count(optional(&m[1]))?,
        add_to_carts: count(optional(&m[2]))?,
        purchases: count(required(3))?,
        units: count(optional(&m[4]))?,
        sales_minor: money(required(5))?,
        total_purchases: count(required(6))?,
        total_units: count(optional(&m[7]))?,
        total_sales_minor: money(required(8))?,
        brb_minor: money(optional(&m[9]))?,
    })
}

/// Adds a page's rows to `rows`. Rows of one key on one page from different publishers are summed
/// (an ADGROUP report has a row per publisher); the same key and publisher twice, or a key an
/// earlier page had already, is a repeat and makes it incomplete. A page that is not a report, a
/// row without a readable date, or a cursor that names no page is an error: it must not read as
/// "no sales".
pub fn read_page(page: &Value, exponent: u32, rows: &mut Rows) -> Result<usize, BadRow> {
    const NONE: &[Value] = &[];
    if let Err(no_page) = page::cursor_of(Scalar::of(page.get("cursorId")).as_ref()) {
        return Err(BadRow {
            row: page.to_string().chars().take(300).collect(),
            problem: no_page.to_string(),
        });
    }
    let list = page
        .get("reports")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .or_else(|| {
            // An empty page may leave the list out, but then it says it is empty.
            let empty = ["size", "count"]
                .iter()
                .any(|k| page.get(*k).and_then(Value::as_u64) == Some(0));
            empty.then_some(NONE)
        })
        .ok_or_else(|| BadRow {
            row: page.to_string().chars().take(300).collect(),
            problem: "the page has no `reports` list".into(),
        })?;
    let page_rows =
        keyed(list.iter().map(Fields::of), exponent).map_err(|(i, problem)| BadRow {
            row: list[i].to_string().chars().take(300).collect(),
            problem,
        })?;
    merge(page_rows, rows);
    Ok(list.len())
}

/// One page read on its own. Its rows stand beside the other pages': a key on two pages is a
/// repeat (the rule of [`merge`], which the sync's ingest applies to the pages it is given).
#[derive(Debug)]
pub struct PageRows {
    /// The rows the page had (a key twice counts twice).
    pub count: usize,
    pub rows: Rows,
    /// The next page's cursor ([`next_cursor`]).
    pub cursor: Option<String>,
}

/// Reads the page of `text` on its own, as [`read_page`] reads a page. The page is read from its
/// text straight into borrowed fields ([`page::parse`]); a page of another shape is read as a
/// `Value`.
pub fn read_page_rows(text: &str, exponent: u32) -> Result<PageRows, BadRow> {
    if let Some((list, cursor)) = page::parse(text) {
        let count = list.len();
        // A row this reader cannot key is left to the `Value` reader, which names it.
        if let Ok(rows) = keyed(list.into_iter(), exponent) {
            return Ok(PageRows {
                count,
                rows,
                cursor,
            });
        }
    }
    let page: Value = serde_json::from_str(text).map_err(|e| BadRow {
        row: text.chars().take(300).collect(),
        problem: format!("the page is not JSON: {e}"),
    })?;
    let mut rows = Rows::new();
    let count = read_page(&page, exponent, &mut rows)?;
    Ok(PageRows {
        count,
        rows,
        cursor: next_cursor(&page),
    })
}

/// A report row's `date`: `YYYYMMDD` as Amazon writes it, or `YYYY-MM-DD`, with every digit
/// there (chrono alone reads `"2026111"` as 1 November, a sale paid on another day).
fn report_day(date: &str) -> Option<NaiveDate> {
    let date = date.trim();
    let digit_or_dash = |(i, b): (usize, &u8)| match i {
        4 | 7 => *b == b'-',
        _ => b.is_ascii_digit(),
    };
    let format = match date.as_bytes() {
        b if b.len() == 8 && b.iter().all(u8::is_ascii_digit) => "%Y%m%d",
        b if b.len() == 10 && b.iter().enumerate().all(digit_or_dash) => "%Y-%m-%d",
        _ => return None,
    };
    NaiveDate::parse_from_str(date, format).ok()
}

/// A page's rows by key, rows of one key from different publishers summed and the same publisher
/// twice a repeat (incomplete); `Err` names the first row without a readable date (by its index)
/// and what is wrong with it.
fn keyed<'a>(
    list: impl Iterator<Item = Fields<'a>>,
    exponent: u32,
) -> Result<Rows, (usize, String)> {
    // Each key's reading and the publishers it was read from (rarely more than one).
    let mut page_rows =
        BTreeMap::<_, (Reading, Option<Scalar<'a>>, Vec<Option<Scalar<'a>>>)>::new();
    for (i, row) in list.enumerate() {
        let date = text(&row.date).ok_or_else(|| (i, "no date".to_owned()))?;
        let day = report_day(&date).ok_or_else(|| (i, format!("date {date:?}")))?;
        let campaign = text(&row.campaign).unwrap_or_default();
        let ad_group = text(&row.ad_group).unwrap_or_default();
        let reading = figures(&row, exponent).map_or(Reading::Incomplete, Reading::Complete);
        match page_rows.entry((campaign, ad_group, day)) {
            Entry::Vacant(v) => {
                v.insert((reading, row.publisher, Vec::new()));
            }
            Entry::Occupied(mut o) => {
                let (sum, first, more) = o.get_mut();
                if *first == row.publisher || more.contains(&row.publisher) {
                    *sum = Reading::Incomplete;
                } else {
                    sum.add(reading);
                    more.push(row.publisher);
                }
            }
        }
    }
    Ok(page_rows
        .into_iter()
        .map(|(key, (reading, ..))| (key, reading))
        .collect())
}

/// Adds a page's rows to the report's. A key already read on an earlier page is a repeat, not
/// more sales: never summed, the day keeps its last complete figures.
pub fn merge(page_rows: Rows, rows: &mut Rows) {
    for (key, reading) in page_rows {
        match rows.entry(key) {
            Entry::Vacant(v) => {
                v.insert(reading);
            }
            Entry::Occupied(mut o) => {
                *o.get_mut() = Reading::Incomplete;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_requested_are_the_metrics_read() {
        assert_eq!(METRICS, page::METRIC_NAMES.join(","));
    }

    #[test]
    fn reads_the_real_wire_format() {
        // Airbyte's captured row, plus a numeric and a null variant.
        let page = json!({"reports": [
            {"date": "20220829", "attributedAddToCartClicks14d": "5", "brb_bonus_amount": "14.280000000000001",
             "campaignId": "16719043411", "attributedDetailPageViewsClicks14d": "30", "attributedPurchases14d": "3",
             "attributedTotalPurchases14d": "3", "adGroupId": "135021988277", "advertiserName": "Eversprout",
             "totalUnitsSold14d": "4", "unitsSold14d": "4", "Click-throughs": "30", "publisher": "Google Ads",
             "attributedSales14d": "191.95999999999998", "totalAttributedSales14d": "191.95999999999998"},
            {"date": "20220830", "campaignId": 16719043411i64, "adGroupId": null, "Click-throughs": 12,
             "attributedSales14d": 20.5, "attributedPurchases14d": 1, "totalAttributedSales14d": 20.5,
             "attributedTotalPurchases14d": 1}
        ], "cursorId": null, "size": 2});
        let mut rows = Rows::new();
        assert_eq!(read_page(&page, 2, &mut rows).unwrap(), 2);
        let day = NaiveDate::from_ymd_opt(2022, 8, 29).unwrap();
        let Reading::Complete(f) =
            &rows[&("16719043411".to_owned(), "135021988277".to_owned(), day)]
        else {
            panic!("complete")
        };
        assert_eq!(
            (f.clicks, f.purchases, f.units, f.sales_minor, f.brb_minor),
            (30, 3, 4, 19196, 1428)
        );
        let Reading::Complete(null_group) = &rows[&(
            "16719043411".to_owned(),
            String::new(),
            day.succ_opt().unwrap(),
        )] else {
            panic!("complete")
        };
        assert_eq!((null_group.clicks, null_group.sales_minor), (12, 2050));
        assert_eq!(next_cursor(&page), None);
    }

    #[test]
    fn cursors_end_on_empty_null_or_absent() {
        assert_eq!(
            next_cursor(&json!({"cursorId": "{\"page\":1}"})).as_deref(),
            Some("{\"page\":1}")
        );
        for last in [
            json!({"cursorId": ""}),
            json!({"cursorId": null}),
            json!({}),
        ] {
            assert_eq!(next_cursor(&last), None);
        }
    }

    #[test]
    fn a_page_that_is_not_a_report_is_an_error_not_an_empty_day() {
        for page in [
            json!({}),
            json!({"reports": null}),
            json!({"code": "500", "details": "oops"}),
        ] {
            assert!(read_page(&page, 2, &mut Rows::new()).is_err(), "{page}");
        }
        assert_eq!(
            read_page(&json!({"size": 0, "cursorId": ""}), 2, &mut Rows::new()).unwrap(),
            0
        );
    }

    #[test]
    fn a_row_without_a_readable_date_is_an_error() {
        let page = json!({"reports": [{"date": "yesterday"}]});
        assert!(read_page(&page, 2, &mut Rows::new()).is_err());
    }

    fn complete_row() -> Value {
        json!({"date": "20261101", "campaignId": "ab_st_1", "adGroupId": "a1", "Click-throughs": "30",
               "attributedPurchases14d": "2", "attributedSales14d": "50.00",
               "attributedTotalPurchases14d": "2", "totalAttributedSales14d": "50.00",
               "unitsSold14d": "2", "totalUnitsSold14d": "2"})
    }

    fn read_one(row: Value) -> Reading {
        let mut rows = Rows::new();
        read_page(&json!({"reports": [row]}), 2, &mut rows).unwrap();
        rows.into_values().next().unwrap()
    }

    #[test]
    fn a_money_or_purchase_metric_that_is_not_there_makes_the_row_incomplete_never_zero() {
        assert!(matches!(read_one(complete_row()), Reading::Complete(_)));
        for key in REQUIRED {
            for missing in [
                json!(null),
                json!(""),
                json!("  "),
                json!("lots"),
                json!("5_0.00"),
                json!("1__0"),
                json!(true),
                json!({}),
            ] {
                let mut row = complete_row();
                row[key] = missing.clone();
                assert_eq!(read_one(row), Reading::Incomplete, "{key} = {missing}");
            }
            let mut row = complete_row();
            row.as_object_mut().unwrap().remove(key);
            assert_eq!(read_one(row), Reading::Incomplete, "{key} absent");
        }
    }

    #[test]
    fn half_a_purchase_is_no_count() {
        for key in [
            "attributedPurchases14d",
            "attributedTotalPurchases14d",
            "Click-throughs",
        ] {
            let mut row = complete_row();
            row[key] = json!("0.5");
            assert_eq!(read_one(row), Reading::Incomplete, "{key}");
        }
    }

    #[test]
    fn traffic_and_the_bonus_may_be_missing_but_not_garbage() {
        let mut row = complete_row();
        for key in ["Click-throughs", "unitsSold14d", "brb_bonus_amount"] {
            row[key] = json!(null);
        }
        let Reading::Complete(f) = read_one(row) else {
            panic!("complete")
        };
        assert_eq!((f.clicks, f.sales_minor, f.brb_minor), (0, 5000, 0));
        let mut row = complete_row();
        row["brb_bonus_amount"] = json!("n/a");
        assert_eq!(read_one(row), Reading::Incomplete);
    }

    #[test]
    fn numbers_and_numeric_strings_read_alike() {
        let mut row = complete_row();
        row["attributedSales14d"] = json!(50);
        row["attributedPurchases14d"] = json!(2.0);
        assert_eq!(read_one(row), read_one(complete_row()));
    }

    #[test]
    fn negative_figures_are_never_trusted() {
        for (key, value) in [
            ("attributedSales14d", "-500.00"),
            ("attributedPurchases14d", "-3"),
            ("Click-throughs", "-1"),
            ("brb_bonus_amount", "-2"),
        ] {
            let mut row = complete_row();
            row[key] = json!(value);
            assert_eq!(read_one(row), Reading::Incomplete, "{key} = {value}");
        }
    }

    #[test]
    fn implausibly_big_figures_are_never_trusted() {
        for (key, value) in [
            ("attributedSales14d", "10000000000.01"),
            ("attributedPurchases14d", "1000000000001"),
            ("Click-throughs", "9223372036854775807"),
            ("totalAttributedSales14d", "92233720368547758.07"),
        ] {
            let mut row = complete_row();
            row[key] = json!(value);
            assert_eq!(read_one(row), Reading::Incomplete, "{key} = {value}");
        }
        let mut row = complete_row();
        row["attributedSales14d"] = json!("10000000000.00");
        assert!(
            matches!(read_one(row), Reading::Complete(_)),
            "the bound itself is plausible"
        );
    }

    #[test]
    fn split_rows_at_the_bound_add_up_without_overflow() {
        let mut rows = Rows::new();
        let mut big = complete_row();
        big["attributedSales14d"] = json!("10000000000.00");
        let split: Vec<Value> = (0..1000)
            .map(|p| {
                let mut row = big.clone();
                row["publisher"] = json!(format!("publisher {p}"));
                row
            })
            .collect();
        read_page(&json!({"reports": split}), 2, &mut rows).unwrap();
        // 1,000 halves at the bound add up to 10^15 minor units: within i64, so complete.
        assert!(matches!(rows.values().next(), Some(Reading::Complete(_))));
    }

    #[test]
    fn a_row_repeated_on_a_later_page_is_not_summed() {
        let mut rows = Rows::new();
        read_page(&json!({"reports": [complete_row()]}), 2, &mut rows).unwrap();
        read_page(&json!({"reports": [complete_row()]}), 2, &mut rows).unwrap();
        assert_eq!(
            rows.into_values().collect::<Vec<_>>(),
            vec![Reading::Incomplete]
        );
    }

    #[test]
    fn rows_of_one_key_from_other_publishers_add_up_and_the_same_publisher_twice_is_a_repeat() {
        let from = |publisher: Value| {
            let mut row = complete_row();
            row["publisher"] = publisher;
            row
        };
        let read = |list: Vec<Value>| {
            let mut rows = Rows::new();
            read_page(&json!({ "reports": list }), 2, &mut rows).unwrap();
            rows.into_values().collect::<Vec<_>>()
        };
        let [google, email] = [json!("Google Ads"), json!("Email - Other")].map(from);
        let Reading::Complete(both) = &read(vec![google.clone(), email.clone()])[0] else {
            panic!("complete")
        };
        assert_eq!((both.sales_minor, both.purchases), (10000, 4));
        for repeat in [
            vec![email.clone(), email.clone()],
            vec![google.clone(), email.clone(), google],
            vec![complete_row(), complete_row()],
            vec![from(json!(null)), complete_row()],
        ] {
            assert_eq!(read(repeat), vec![Reading::Incomplete]);
        }
    }

    #[test]
    fn a_date_is_all_its_digits() {
        let day = |date: &str| {
            let mut row = complete_row();
            row["date"] = json!(date);
            let mut rows = Rows::new();
            read_page(&json!({"reports": [row]}), 2, &mut rows)
                .map(|_| rows.into_keys().next().unwrap().2)
        };
        let first = NaiveDate::from_ymd_opt(2026, 11, 1);
        for ok in ["20261101", "2026-11-01", " 20261101 "] {
            assert_eq!(day(ok).ok(), first, "{ok}");
        }
        for bad in [
            "2026111",
            "2026011",
            "202611 1",
            "2026-11-1",
            "2026-1-01",
            "+2026-11-01",
            "20261301",
            "202611010",
            "2026/11/01",
            "20261131",
            "",
        ] {
            assert!(day(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_cursor_is_text_or_a_number_and_anything_else_is_no_page() {
        assert_eq!(next_cursor(&json!({"cursorId": 2})).as_deref(), Some("2"));
        for bad in [
            json!(true),
            json!([1]),
            json!({"next": "b"}),
            json!(2.0),
            json!(1e20),
        ] {
            let page = json!({"reports": [complete_row()], "cursorId": bad});
            assert!(read_page(&page, 2, &mut Rows::new()).is_err(), "{page}");
            let text = page.to_string();
            assert!(read_page_rows(&text, 2).is_err(), "{text}");
        }
    }

    #[test]
    fn an_incomplete_half_makes_a_split_row_incomplete() {
        let mut rows = Rows::new();
        let mut half = complete_row();
        half["publisher"] = json!("Google Ads");
        half["attributedSales14d"] = json!(null);
        read_page(&json!({"reports": [complete_row(), half]}), 2, &mut rows).unwrap();
        assert_eq!(
            rows.into_values().collect::<Vec<_>>(),
            vec![Reading::Incomplete]
        );
    }
}
