//! Bulk reads of a store's rows over a range of days. All the rows come back as one JSON text
//! (`json_group_array`; joined by `string_agg` on PostgreSQL), a list of `[affiliate, day,
//! [field, …]]`: fetching row by row was most of a sync's time and memory, and building the JSON
//! costs SQLite a third of what casting and joining the same fields as text did. One text, not
//! one per affiliate, so that the database builds it while the caller does other work: the
//! statement is sent at the first poll and its one row waits in the driver's channel (a driver
//! holds back a result of many rows until it is read).
use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ColumnType, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic,
    QuerySelect, Select, sea_query::Expr,
};
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use super::ledger::Key;
use crate::domain::figures::Figures;

/// Hands `each` the rows `query` selects, one by one, as their key and `fields` read as `T` (a
/// tuple or struct of them, in order: integers, texts, and `Option`s of them for nullable
/// columns). The rows are not collected into a list of their own on the way (a store's report is
/// large); the JSON text is held until all are read.
pub(crate) async fn packed<E: EntityTrait, T: DeserializeOwned>(
    conn: &impl ConnectionTrait,
    query: Select<E>,
    (affiliate, day): (E::Column, E::Column),
    fields: &[E::Column],
    each: impl FnMut(Key, T) -> Result<(), DbErr>,
) -> Result<(), DbErr> {
    let quoted = |c: &E::Column| format!("\"{}\"", c.as_str());
    let aggregate = match conn.get_database_backend() {
        // PostgreSQL writes the same JSON text faster joined by hand than built as `json`: numbers
        // as they print, other values as `to_json` quotes them. Days in ISO whatever the
        // server's DateStyle. No rows: no text, read as none.
        DbBackend::Postgres => {
            let fields = fields
                .iter()
                .map(|c| {
                    let value = match c.def().get_column_type() {
                        ColumnType::BigInteger | ColumnType::Integer | ColumnType::SmallInteger => {
                            quoted(c)
                        }
                        _ => format!("to_json({})", quoted(c)),
                    };
                    format!("COALESCE(CAST({value} AS TEXT), 'null')")
                })
                .collect::<Vec<_>>()
                .join(" || ',' || ");
            format!(
                "'[' || string_agg('[' || {} || ',\"' || to_char({}, 'YYYY-MM-DD') || '\",[' || {fields} || ']]', ',') || ']'",
                quoted(&affiliate),
                quoted(&day)
            )
        }
        _ => {
            let fields = fields.iter().map(quoted).collect::<Vec<_>>().join(", ");
            format!(
                "json_group_array(json_array({}, {}, json_array({fields})))",
                quoted(&affiliate),
                quoted(&day)
            )
        }
    };
    let text: Option<Option<String>> = query
        .select_only()
        .column_as(Expr::cust(aggregate), "packed")
        .into_tuple()
        .one(conn)
        .await?;
    let Some(text) = text.flatten() else {
        return Ok(());
    };
    let mut reader = serde_json::Deserializer::from_str(&text);
    Each {
        each,
        row: std::marker::PhantomData,
    }
    .deserialize(&mut reader)
    .and_then(|done| reader.end().map(|()| done))
    .map_err(|e| DbErr::Custom(format!("the packed rows are unreadable: {e}")))?
}

/// Reads a packed list row by row into a callback: no list of the rows is built.
struct Each<F, T> {
    each: F,
    row: std::marker::PhantomData<T>,
}

impl<'de, F, T> DeserializeSeed<'de> for Each<F, T>
where
    F: FnMut(Key, T) -> Result<(), DbErr>,
    T: DeserializeOwned,
{
    /// What `each` said: a row it refused stops the reading.
    type Value = Result<(), DbErr>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, F, T> Visitor<'de> for Each<F, T>
where
    F: FnMut(Key, T) -> Result<(), DbErr>,
    T: DeserializeOwned,
{
    type Value = Result<(), DbErr>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of [affiliate, day, [field, …]]")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Self::Value, A::Error> {
        while let Some((affiliate_id, day, row)) = seq.next_element::<(i64, NaiveDate, T)>()? {
            if let Err(e) = (self.each)((affiliate_id, day), row) {
                // The rest is skipped, so that the list ends where the reader expects it and
                // this error, not "trailing characters", is the one told.
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }
}

/// The ten figure columns of a table that keeps [`Figures`] (`daily_figures`, `report_rows`), in
/// field order: `figure_columns!(Column)`.
macro_rules! figure_columns {
    ($c:ident) => {
        [
            $c::Clicks,
            $c::DetailPageViews,
            $c::AddToCarts,
            $c::Purchases,
            $c::Units,
            $c::SalesMinor,
            $c::TotalPurchases,
            $c::TotalUnits,
            $c::TotalSalesMinor,
            $c::BrbMinor,
        ]
    };
}
pub(super) use figure_columns;

/// A packed row of one field `H` and then the ten [`figure_columns!`]: `[head, clicks, …]`.
pub(super) struct Headed<H>(pub H, pub Figures);

impl<'de, H: serde::Deserialize<'de>> serde::Deserialize<'de> for Headed<H> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Row<H>(std::marker::PhantomData<H>);
        impl<'de, H: serde::Deserialize<'de>> Visitor<'de> for Row<H> {
            type Value = Headed<H>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[field, and ten figures]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let missing = |n| serde::de::Error::invalid_length(n, &"11 fields");
                let head = seq.next_element()?.ok_or_else(|| missing(0))?;
                let mut figures = [0i64; 10];
                for (i, f) in figures.iter_mut().enumerate() {
                    *f = seq.next_element()?.ok_or_else(|| missing(i + 1))?;
                }
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(12, &"11 fields"));
                }
                Ok(Headed(head, figures.into()))
            }
        }
        d.deserialize_seq(Row(std::marker::PhantomData))
    }
}
