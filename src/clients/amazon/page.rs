//! One report page's rows as the reader sees them: each field a [`Scalar`] borrowed from the
//! page's text where it can be. A page is read straight from its text into these ([`parse`]),
//! without building a `serde_json::Value` tree first (that was most of a sync's reading time and
//! memory). Anything this strict shape does not take (a duplicated key, a `reports` that is not a
//! list, a row that is not an object) is left to the `Value` reader in `report`, whose lenient
//! rules it shares through [`Fields`]; the two agree on every page this one reads
//! (`tests/api/fuzz/parsers.rs`).
use std::{borrow::Cow, fmt, marker::PhantomData};

use serde::{
    Deserialize, Deserializer,
    de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::{Number, Value};

/// A field's value as the reader needs it: text, a number, or something else (a boolean, a
/// list, an object). `null` reads as absent (`None` around it): every rule treats both alike.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Text(Cow<'a, str>),
    Number(Number),
    Other,
}

impl<'a> Scalar<'a> {
    /// The field of a `Value` row, `None` when absent or `null`.
    pub fn of(v: Option<&'a Value>) -> Option<Self> {
        Some(match v? {
            Value::Null => return None,
            Value::String(s) => Self::Text(Cow::Borrowed(s)),
            Value::Number(n) => Self::Number(n.clone()),
            _ => Self::Other,
        })
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(PhantomData))
    }
}

struct ScalarVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Scalar::Text(Cow::Owned(s)))
    }

    // The same `Number`s `serde_json::Value` keeps, so that both readers print them alike.
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Number(n.into()))
    }

    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
        Number::from_f64(n)
            .map(Scalar::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }

    // Read as values, not skipped, so that a field nested too deep is refused as before.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<Value>()?.is_some() {}
        Ok(Scalar::Other)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, Value>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// The fields of one report row the reader uses (DESIGN §4.3): its day, campaign, ad group and
/// publisher (an ADGROUP report's rows are per publisher), and the metrics in the order of
/// [`METRIC_NAMES`].
#[derive(Debug, Default)]
pub struct Fields<'a> {
    pub date: Option<Scalar<'a>>,
    pub campaign: Option<Scalar<'a>>,
    pub ad_group: Option<Scalar<'a>>,
    pub publisher: Option<Scalar<'a>>,
    pub metrics: [Option<Scalar<'a>>; 10],
}

/// The metrics of a row, in the order of [`Fields::metrics`] (and of `report::METRICS`).
pub const METRIC_NAMES: [&str; 10] = [
    "Click-throughs",
    "attributedDetailPageViewsClicks14d",
    "attributedAddToCartClicks14d",
    "attributedPurchases14d",
    "unitsSold14d",
    "attributedSales14d",
    "attributedTotalPurchases14d",
    "totalUnitsSold14d",
    "totalAttributedSales14d",
    "brb_bonus_amount",
];

impl<'a> Fields<'a> {
    /// The fields of a `Value` row (each `None` when the row is no object).
    pub fn of(row: &'a Value) -> Self {
        let get = |k: &str| Scalar::of(row.get(k));
        Self {
            date: get("date"),
            campaign: get("campaignId"),
            ad_group: get("adGroupId"),
            publisher: get("publisher"),
            metrics: std::array::from_fn(|i| get(METRIC_NAMES[i])),
        }
    }
}

/// Which field of a row a key names: an index of [`ROW_FIELDS`], or none the reader uses.
struct FieldOf(Option<usize>);

/// The fields of a row the reader uses: `date`, `campaignId`, `adGroupId`, `publisher`, then the
/// metrics.
const ROW_FIELDS: [&str; 14] = [
    "date",
    "campaignId",
    "adGroupId",
    "publisher",
    METRIC_NAMES[0],
    METRIC_NAMES[1],
    METRIC_NAMES[2],
    METRIC_NAMES[3],
    METRIC_NAMES[4],
    METRIC_NAMES[5],
    METRIC_NAMES[6],
    METRIC_NAMES[7],
    METRIC_NAMES[8],
    METRIC_NAMES[9],
];

impl<'de> Deserialize<'de> for FieldOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FieldOf;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E>(self, k: &str) -> Result<FieldOf, E> {
                Ok(FieldOf(ROW_FIELDS.iter().position(|f| *f == k)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A row, read only from a JSON object (a list is no row): each field the reader uses, the last
/// one where a key repeats (as a `Value` keeps it); the others skipped however deep they nest
/// (the `Value` reader refused a page nested beyond 128 levels anywhere).
struct Row<'a>(Fields<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Row<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Row<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a report row")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Row<'a>, A::Error> {
                let mut row = Fields::default();
                while let Some(FieldOf(field)) = map.next_key()? {
                    let slot = match field {
                        Some(0) => &mut row.date,
                        Some(1) => &mut row.campaign,
                        Some(2) => &mut row.ad_group,
                        Some(3) => &mut row.publisher,
                        Some(i) => &mut row.metrics[i - 4],
                        None => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value()?;
                }
                Ok(Row(row))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A page, read only from a JSON object: its `reports` (which must be there, a list of rows) and
/// its `cursorId`, the last of each where a key repeats.
struct Page<'a> {
    reports: Vec<Row<'a>>,
    cursor: Option<Scalar<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Page<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Page<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a report page")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Page<'a>, A::Error> {
                let (mut reports, mut cursor) = (None, None);
                while let Some(key) = map.next_key::<Cow<'_, str>>()? {
                    match &*key {
                        "reports" => reports = Some(map.next_value()?),
                        "cursorId" => cursor = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                let reports = reports.ok_or_else(|| A::Error::missing_field("reports"))?;
                Ok(Page { reports, cursor })
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// A page's `cursorId`: the next page's cursor, text or a whole number read as its text (as ids
/// are); `Ok(None)` on the last page (empty, blank, `null` or absent). `Err` when it is anything
/// else, a fraction or a number beyond 64 bits too (its text would not be the one Amazon sent):
/// it names no page, and the pages after it must not read as "no sales" (DESIGN §4.3).
pub fn cursor_of(value: Option<&Scalar<'_>>) -> Result<Option<String>, NoPage> {
    match value {
        None => Ok(None),
        Some(Scalar::Text(s)) if s.trim().is_empty() => Ok(None),
        Some(Scalar::Text(s)) => Ok(Some(s.clone().into_owned())),
        Some(Scalar::Number(n)) if n.is_u64() || n.is_i64() => Ok(Some(n.to_string())),
        Some(Scalar::Number(_) | Scalar::Other) => Err(NoPage),
    }
}

/// A `cursorId` that names no page ([`cursor_of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the page's `cursorId` is neither text nor a number")]
pub struct NoPage;

/// The next page's cursor as [`parse`] would read it, found without reading the rows: the value
/// of the last `"cursorId"` key in the text (a quote inside a JSON string is escaped, so the
/// quoted name followed by `:` is a key), as [`cursor_of`] reads it. What the sync
/// fetches next while this page is read: a guess only (the key could be a row's), which the
/// page's full reading confirms or overrules.
pub fn cursor_hint(text: &str) -> Option<String> {
    const KEY: &str = "\"cursorId\"";
    let value = memchr::memmem::rfind_iter(text.as_bytes(), KEY)
        .find_map(|at| text[at + KEY.len()..].trim_start().strip_prefix(':'))?;
    let value = Option::<Scalar<'_>>::deserialize(&mut serde_json::Deserializer::from_str(value));
    cursor_of(value.ok()?.as_ref()).ok().flatten()
}

/// A page's rows and its next cursor, read from the page's text; `None` when the page is not of
/// the shape this reader takes (the `Value` reader then reads it, or says what is wrong).
pub fn parse(text: &str) -> Option<(Vec<Fields<'_>>, Option<String>)> {
    let page: Page<'_> = serde_json::from_str(text).ok()?;
    let cursor = cursor_of(page.cursor.as_ref()).ok()?;
    Some((page.reports.into_iter().map(|r| r.0).collect(), cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cursor_is_guessed_from_the_last_cursor_key_of_the_text() {
        let hint = |text: &str| cursor_hint(text);
        assert_eq!(
            hint(r#"{"reports": [], "cursorId": "b"}"#).as_deref(),
            Some("b")
        );
        assert_eq!(
            hint(r#"{"cursorId" :  "a", "reports": [{}]}"#).as_deref(),
            Some("a")
        );
        assert_eq!(hint(r#"{"cursorId": "a\u0031"}"#).as_deref(), Some("a1"));
        // A number is a cursor too, read as its text.
        assert_eq!(hint(r#"{"cursorId": 7}"#).as_deref(), Some("7"));
        // The last page, or no cursor at all: nothing to fetch on a guess.
        for last in [
            r#"{"cursorId": ""}"#,
            r#"{"cursorId": " "}"#,
            r#"{"cursorId": null}"#,
            r#"{"cursorId": true}"#,
            r#"{"reports": []}"#,
            r#"{"cursorId": "#,
            "not json",
        ] {
            assert_eq!(hint(last), None, "{last}");
        }
        // The last key decides, even when it says nothing.
        let text = r#"{"reports": [{"cursorId": "row's"}], "cursorId": null}"#;
        assert_eq!(hint(text), None);
        // The name inside a string is no key; a later key wins, a row's too (a guess only).
        let text = r#"{"cursorId": "real", "reports": [{"note": "\"cursorId\": \"no\""}]}"#;
        assert_eq!(hint(text).as_deref(), Some("real"));
        let text = r#"{"cursorId": "real", "reports": [{"cursorId": "row's"}]}"#;
        assert_eq!(hint(text).as_deref(), Some("row's"));
        assert_eq!(
            parse(text).unwrap().1.as_deref(),
            Some("real"),
            "the reading says"
        );
    }

    #[test]
    fn a_page_of_rows_is_read_from_its_text_with_its_cursor() {
        let text = r#"{"reports": [{"date": "20261101", "campaignId": 7, "adGroupId": "a\u0031",
            "attributedSales14d": "1.00", "attributedSales14d": "50.00", "publisher": [[{}]],
            "Click-throughs": null}], "size": 1, "cursorId": "next"}"#;
        let (rows, cursor) = parse(text).expect("a page");
        assert_eq!(cursor.as_deref(), Some("next"));
        assert_eq!(cursor_hint(text), cursor, "the skim finds the same cursor");
        let row = &rows[0];
        assert_eq!(row.campaign, Some(Scalar::Number(7.into())));
        assert_eq!(row.ad_group, Some(Scalar::Text("a1".into())));
        // The last of a repeated key counts, as in a `Value`; `null` reads as absent.
        assert_eq!(row.metrics[5], Some(Scalar::Text("50.00".into())));
        assert_eq!(row.metrics[0], None);
    }

    #[test]
    fn only_objects_are_pages_and_rows() {
        for text in [
            "[[]]",
            r#"[[{"date": "20261101"}], "c"]"#,
            r#"{"reports": [["20261101", "ab", "a1"]]}"#,
            r#"{"reports": null}"#,
            r#"{"size": 0}"#,
            r#"{"reports": {}}"#,
            // A cursor that names no page: the `Value` reader refuses the page.
            r#"{"reports": [], "cursorId": true}"#,
            r#"{"reports": [], "cursorId": {"next": "b"}}"#,
        ] {
            assert!(parse(text).is_none(), "{text}");
        }
    }
}
