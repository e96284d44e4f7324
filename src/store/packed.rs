//! Bulk reads of a store's rows over a range of days. Each affiliate's rows come back as one JSON
//! text (`json_group_array`; joined by `string_agg` on PostgreSQL), a list of `[day, [field, …]]`, so that a store's 60
//! days are one row per affiliate instead of one per day: fetching row by row was most of a
//! sync's time and memory, and building the JSON costs SQLite a third of what casting and joining
//! the same fields as text did.
use chrono::NaiveDate;
use sea_orm::{
    ColumnTrait, ColumnType, ConnectionTrait, DbBackend, DbErr, EntityTrait, IdenStatic,
    QuerySelect, Select, sea_query::Expr,
};
use serde::de::DeserializeOwned;

use super::ledger::Key;

/// Hands `each` the rows `query` selects, one by one, as their key and `fields` read as `T` (a
/// tuple or struct of them, in order: integers, texts, and `Option`s of them for nullable
/// columns). The rows are not collected into a list of their own on the way (a store's report is
/// large); the affiliates' JSON texts are held until all are read.
pub(crate) async fn packed<E: EntityTrait, T: DeserializeOwned>(
    conn: &impl ConnectionTrait,
    query: Select<E>,
    (affiliate, day): (E::Column, E::Column),
    fields: &[E::Column],
    mut each: impl FnMut(Key, T) -> Result<(), DbErr>,
) -> Result<(), DbErr> {
    let quoted = |c: &E::Column| format!("\"{}\"", c.as_str());
    let aggregate = match conn.get_database_backend() {
        // PostgreSQL writes the same JSON text faster joined by hand than built as `json`: numbers
        // as they print, other values as `to_json` quotes them. Days in ISO whatever the
        // server's DateStyle.
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
                "'[' || string_agg('[\"' || to_char({}, 'YYYY-MM-DD') || '\",[' || {fields} || ']]', ',') || ']'",
                quoted(&day)
            )
        }
        _ => {
            let fields = fields.iter().map(quoted).collect::<Vec<_>>().join(", ");
            format!(
                "json_group_array(json_array({}, json_array({fields})))",
                quoted(&day)
            )
        }
    };
    let groups: Vec<(i64, String)> = query
        .select_only()
        .column(affiliate)
        .column_as(Expr::cust(aggregate), "packed")
        .group_by(affiliate)
        .into_tuple()
        .all(conn)
        .await?;
    for (affiliate_id, text) in groups {
        let rows: Vec<(NaiveDate, T)> = serde_json::from_str(&text).map_err(|e| {
            DbErr::Custom(format!(
                "the rows of affiliate {affiliate_id} are unreadable: {e}"
            ))
        })?;
        for (day, row) in rows {
            each((affiliate_id, day), row)?;
        }
    }
    Ok(())
}
