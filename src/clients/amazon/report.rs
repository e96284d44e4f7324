//! The PERFORMANCE report grouped by ADGROUP (DESIGN §4.3), every page, read leniently: metrics as
//! strings or numbers, `null` ad groups, `cursorId` empty, null or absent on the last page.
use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde_json::{Value, json};

pub use crate::domain::figures::Figures;
use crate::domain::money::{MoneyError, to_count, to_minor};

pub const METRICS: &str = "Click-throughs,attributedDetailPageViewsClicks14d,attributedAddToCartClicks14d,attributedPurchases14d,unitsSold14d,attributedSales14d,attributedTotalPurchases14d,totalUnitsSold14d,totalAttributedSales14d,brb_bonus_amount";
pub const PAGE_SIZE: u32 = 5000;
/// A stop for a cursor that never ends (5,000 × 1,000 rows is far beyond 60 days of any store).
pub const MAX_PAGES: usize = 1000;

/// Rows keyed by (campaign id, ad group id or "" for null, day).
pub type Rows = BTreeMap<(String, String, NaiveDate), Figures>;

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

/// The next page's cursor, or None on the last page.
pub fn next_cursor(page: &Value) -> Option<String> {
    match page.get("cursorId") {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        _ => None,
    }
}

#[derive(Debug, thiserror::Error)]
#[error("report row {row}: {problem}")]
pub struct BadRow {
    pub row: String,
    pub problem: String,
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Adds a page's rows to `rows` (the same key twice is summed).
pub fn read_page(page: &Value, exponent: u32, rows: &mut Rows) -> Result<usize, BadRow> {
    let list = page
        .get("reports")
        .and_then(Value::as_array)
        .cloned()
        .or_else(|| {
            // An empty page may leave the list out, but then it says it is empty.
            let empty = ["size", "count"]
                .iter()
                .any(|k| page.get(*k).and_then(Value::as_u64) == Some(0));
            empty.then(Vec::new)
        })
        .ok_or_else(|| BadRow {
            row: page.to_string().chars().take(300).collect(),
            problem: "the page has no `reports` list".into(),
        })?;

    for row in &list {
        let bad = |problem: String| BadRow {
            row: row.to_string().chars().take(300).collect(),
            problem,
        };
        let date = text(row.get("date")).ok_or_else(|| bad("no date".into()))?;
        let day = NaiveDate::parse_from_str(date.trim(), "%Y%m%d")
            .or_else(|_| NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d"))
            .map_err(|_| bad(format!("date {date:?}")))?;
        let campaign = text(row.get("campaignId")).unwrap_or_default();
        let ad_group = text(row.get("adGroupId")).unwrap_or_default();
        let count = |k: &str| -> Result<i64, BadRow> {
            text(row.get(k))
                .map_or(Ok(0), |t| to_count(&t))
                .map_err(|e: MoneyError| bad(format!("{k}: {e}")))
        };
        let money = |k: &str| -> Result<i64, BadRow> {
            text(row.get(k))
                .map_or(Ok(0), |t| to_minor(&t, exponent))
                .map_err(|e| bad(format!("{k}: {e}")))
        };
        let figures = Figures {
            clicks: count("Click-throughs")?,
            detail_page_views: count("attributedDetailPageViewsClicks14d")?,
            add_to_carts: count("attributedAddToCartClicks14d")?,
            purchases: count("attributedPurchases14d")?,
            units: count("unitsSold14d")?,
            sales_minor: money("attributedSales14d")?,
            total_purchases: count("attributedTotalPurchases14d")?,
            total_units: count("totalUnitsSold14d")?,
            total_sales_minor: money("totalAttributedSales14d")?,
            brb_minor: money("brb_bonus_amount")?,
        };
        rows.entry((campaign, ad_group, day))
            .or_default()
            .add(&figures);
    }
    Ok(list.len())
}

#[cfg(test)]
mod tests {
    use super::*;

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
             "attributedSales14d": 20.5, "attributedPurchases14d": 1}
        ], "cursorId": null, "size": 2});
        let mut rows = Rows::new();
        assert_eq!(read_page(&page, 2, &mut rows).unwrap(), 2);
        let day = NaiveDate::from_ymd_opt(2022, 8, 29).unwrap();
        let f = &rows[&("16719043411".to_owned(), "135021988277".to_owned(), day)];
        assert_eq!(
            (f.clicks, f.purchases, f.units, f.sales_minor, f.brb_minor),
            (30, 3, 4, 19196, 1428)
        );
        let null_group = &rows[&(
            "16719043411".to_owned(),
            String::new(),
            day.succ_opt().unwrap(),
        )];
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
    fn a_malformed_row_is_an_error_not_a_zero() {
        let page = json!({"reports": [{"date": "20220829", "attributedSales14d": "lots"}]});
        assert!(read_page(&page, 2, &mut Rows::new()).is_err());
        let page = json!({"reports": [{"date": "yesterday"}]});
        assert!(read_page(&page, 2, &mut Rows::new()).is_err());
    }
}
