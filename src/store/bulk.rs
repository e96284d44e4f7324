//! Bulk inserts. On PostgreSQL each chunk of rows goes as one JSON text that the server expands
//! into rows (`json_populate_recordset`, the JSON counterpart of `UNNEST`): one statement and one
//! bound value per chunk instead of one per column of every row, which made a 60,000-row
//! report's first read take ten seconds. On SQLite, in process, large multi-row statements.
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};
use serde::{Serialize, Serializer};
use serde_json::Value;

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

impl Serialize for Stamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Inserts `rows` into `table`. Each row serializes to an object whose keys are `columns`
/// (numbers, text, booleans, `YYYY-MM-DD` days, [`Stamp`]s); a column left out of `columns`
/// takes its default. On PostgreSQL each chunk of [`JSON_BATCH`] rows is one JSON value; on
/// SQLite, whose JSON functions parse the text again for every column they read, it is one
/// multi-row statement of as many rows as its bound values allow (binding is in process there).
pub(crate) async fn insert_bulk<T: Serialize + Sync>(
    conn: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
    rows: &[T],
) -> Result<(), DbErr> {
    let backend = conn.get_database_backend();
    let names = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let unreadable =
        |e: serde_json::Error| DbErr::Custom(format!("rows for {table} do not serialize: {e}"));
    if backend == DbBackend::Postgres {
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
            let Value::Object(mut row) = serde_json::to_value(row).map_err(unreadable)? else {
                return Err(DbErr::Custom(format!("a row for {table} is no object")));
            };
            for c in columns {
                values.push(match row.remove(*c) {
                    Some(Value::Bool(b)) => b.into(),
                    Some(Value::Number(n)) => n
                        .as_i64()
                        .map_or_else(|| n.as_f64().into(), sea_orm::Value::from),
                    Some(Value::String(t)) => t.into(),
                    Some(Value::Null) | None => sea_orm::Value::String(None),
                    Some(other) => other.to_string().into(),
                });
            }
        }
        conn.execute_raw(Statement::from_sql_and_values(backend, &sql, values))
            .await?;
    }
    Ok(())
}
