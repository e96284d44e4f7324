//! Bulk inserts. On PostgreSQL each chunk of rows goes as one JSON text that the server expands
//! into rows (`json_populate_recordset`, the JSON counterpart of `UNNEST`): one statement and one
//! bound value per chunk instead of one per column of every row, which made a 60,000-row
//! report's first read take ten seconds. On SQLite, in process, large multi-row statements.
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde::{Serialize, Serializer};

/// Rows per PostgreSQL statement: a few MB of JSON, so memory stays bounded whatever the count.
pub const JSON_BATCH: usize = 5_000;
/// Bound values per SQLite statement, under its limit of 32,766.
const SQLITE_VALUES: usize = 30_000;

/// An instant written exactly as the driver writes one bound as a value, so that rows inserted
/// in bulk compare and sort like the others: on SQLite RFC 3339 text with `+00:00` and 0, 3, 6
/// or 9 decimals (sqlx's `AutoSi`); on PostgreSQL cut to the microsecond as sqlx cuts it (the
/// server would round the text instead).
pub struct Stamp(String);

impl Stamp {
    pub fn new(backend: DbBackend, t: DateTime<Utc>) -> Self {
        let t = match backend {
            DbBackend::Postgres => t.trunc_subsecs(6),
            _ => t,
        };
        Self(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false))
    }
}

impl Stamp {
    /// The instant as SQLite binds it.
    pub fn cell(&self) -> sea_orm::Value {
        self.0.as_str().into()
    }
}

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A row that [`insert_bulk`] writes: its columns, and its values in their order.
pub(crate) trait BulkRow: Serialize {
    /// The columns, each a key of the row's JSON object; a column left out takes its default.
    const COLUMNS: &'static [&'static str];
    /// Pushes the row's values, one per column in the order of [`Self::COLUMNS`], each as its
    /// JSON value reads (integers as `i64`, text, booleans, `YYYY-MM-DD` days, [`Stamp`]s).
    fn cells(&self, out: &mut Vec<sea_orm::Value>);
}

/// The value SQLite binds for a JSON value of a row: what [`BulkRow::cells`] must give.
#[cfg(test)]
pub(crate) fn cell_of_json(v: serde_json::Value) -> sea_orm::Value {
    use serde_json::Value;
    match v {
        Value::Bool(b) => b.into(),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| n.as_f64().into(), sea_orm::Value::from),
        Value::String(t) => t.into(),
        Value::Null => sea_orm::Value::String(None),
        other => other.to_string().into(),
    }
}

/// Inserts `rows` into `table`. On PostgreSQL each chunk of [`JSON_BATCH`] rows is one JSON
/// value; on SQLite, whose JSON functions parse the text again for every column they read, it
/// is one multi-row statement of as many rows as its bound values allow (binding is in process
/// there), bound from [`BulkRow::cells`].
pub(crate) async fn insert_bulk<T: BulkRow + Sync>(
    conn: &impl ConnectionTrait,
    table: &str,
    rows: &[T],
) -> Result<(), DbErr> {
    let columns = T::COLUMNS;
    let backend = conn.get_database_backend();
    let names = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if backend == DbBackend::Postgres {
        let unreadable =
            |e: serde_json::Error| DbErr::Custom(format!("rows for {table} do not serialize: {e}"));
        let sql = format!(
            "INSERT INTO \"{table}\" ({names}) SELECT {names} \
             FROM json_populate_recordset(NULL::\"{table}\", $1::json)"
        );
        for chunk in rows.chunks(JSON_BATCH) {
            let json = serde_json::to_string(chunk).map_err(unreadable)?;
            conn.execute_raw(Statement::from_sql_and_values(backend, &sql, [json.into()]))
                .await?;
        }
        return Ok(());
    }
    let per_statement = (SQLITE_VALUES / columns.len().max(1)).max(1);
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    for chunk in rows.chunks(per_statement) {
        let sql = format!(
            "INSERT INTO \"{table}\" ({names}) VALUES {}",
            vec![one.as_str(); chunk.len()].join(", ")
        );
        let mut values = Vec::with_capacity(chunk.len() * columns.len());
        for row in chunk {
            row.cells(&mut values);
        }
        conn.execute_raw(Statement::from_sql_and_values(backend, &sql, values))
            .await?;
    }
    Ok(())
}
