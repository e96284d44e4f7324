//! Bulk inserts. On PostgreSQL each chunk of rows goes as one typed array per column that the
//! server expands into rows (`UNNEST`): one statement and a value per column per chunk instead of
//! one per column of every row, which made a 60,000-row report's first read take ten seconds.
//! On SQLite, in process, large multi-row statements.
use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value, sea_query::ArrayType};
use serde::{Serialize, Serializer};

/// Rows a caller hands [`insert_bulk`] at a time, and rows per PostgreSQL statement: a few MB,
/// so memory stays bounded whatever the count.
pub const CHUNK_ROWS: usize = 5_000;
/// Bound values per SQLite statement, under its limit of 32,766.
const SQLITE_VALUES: usize = 30_000;

/// An instant written exactly as the driver writes one bound as a value, so that rows inserted
/// in bulk compare and sort like the others: on SQLite RFC 3339 text with `+00:00` and 0, 3, 6
/// or 9 decimals (sqlx's `AutoSi`); on PostgreSQL cut to the microsecond as sqlx cuts it (the
/// server would round the text it is cast from instead).
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
    /// The columns, each a key of the row's JSON object (which tests compare with the values);
    /// a column left out takes its default.
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

/// Inserts `rows` into `table`. On PostgreSQL each chunk of [`CHUNK_ROWS`] rows is one
/// statement of one array per column (see [`unnest`]); on SQLite it is one multi-row statement
/// of as many rows as its bound values allow (binding is in process there). Both bind the
/// values of [`BulkRow::cells`].
pub(crate) async fn insert_bulk<T: BulkRow + Sync>(
    conn: &impl ConnectionTrait,
    table: &str,
    rows: &[T],
) -> Result<(), DbErr> {
    upsert_bulk(conn, table, rows, "").await
}

/// [`insert_bulk`] with an `ON CONFLICT …` clause (`on_conflict`) after each statement. A
/// statement must not meet one key twice (PostgreSQL refuses to update a row twice).
pub(crate) async fn upsert_bulk<T: BulkRow + Sync>(
    conn: &impl ConnectionTrait,
    table: &str,
    rows: &[T],
    on_conflict: &str,
) -> Result<(), DbErr> {
    let columns = T::COLUMNS;
    let backend = conn.get_database_backend();
    let names = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    if backend == DbBackend::Postgres {
        if rows.is_empty() {
            return Ok(());
        }
        let types = column_types(conn, table, columns).await?;
        for chunk in rows.chunks(CHUNK_ROWS) {
            let (sql, arrays) = unnest(table, columns, &types, chunk)?;
            let sql = format!("{sql} {on_conflict}");
            conn.execute_raw(Statement::from_sql_and_values(backend, sql, arrays))
                .await?;
        }
        return Ok(());
    }
    let per_statement = (SQLITE_VALUES / columns.len().max(1)).max(1);
    let one = format!("({})", vec!["?"; columns.len()].join(", "));
    for chunk in rows.chunks(per_statement) {
        let sql = format!(
            "INSERT INTO \"{table}\" ({names}) VALUES {} {on_conflict}",
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

/// The SQL type of each of `columns` of `table` on PostgreSQL (`date`, `timestamp with time
/// zone`, …), in their order, without a length (`character varying`, not `(3)`): each array is
/// cast to it, as text days and instants must be, and the insert itself still refuses a value
/// too long for its column (an explicit cast to a length would cut it silently).
async fn column_types(
    conn: &impl ConnectionTrait,
    table: &str,
    columns: &[&str],
) -> Result<Vec<String>, DbErr> {
    let found = conn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT attname, format_type(atttypid, NULL) AS type FROM pg_attribute \
             WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            [format!("\"{table}\"").into()],
        ))
        .await?;
    if found.is_empty() {
        return Err(DbErr::Custom(format!("no table {table}")));
    }
    let mut by_name = std::collections::HashMap::new();
    for row in found {
        let name: String = row.try_get("", "attname")?;
        by_name.insert(name, row.try_get::<String>("", "type")?);
    }
    columns
        .iter()
        .map(|c| {
            by_name
                .remove(*c)
                .ok_or_else(|| DbErr::Custom(format!("{table} has no column {c}")))
        })
        .collect()
}

/// One `INSERT … SELECT … FROM UNNEST($1::text[], $2::int8[], …)` of `rows`, and its bound
/// arrays: one per column, typed by the column's cells (text, `bigint` or boolean; days and
/// instants are text) and cast to the column's type in `types`. A column whose cells are not
/// all of one of those kinds, or holds a null, is an error, not a panic in the driver.
fn unnest<T: BulkRow>(
    table: &str,
    columns: &[&str],
    types: &[String],
    rows: &[T],
) -> Result<(String, Vec<Value>), DbErr> {
    let mut arrays: Vec<Vec<Value>> = columns
        .iter()
        .map(|_| Vec::with_capacity(rows.len()))
        .collect();
    let mut cells = Vec::with_capacity(columns.len());
    for row in rows {
        row.cells(&mut cells);
        if cells.len() != columns.len() {
            return Err(DbErr::Custom(format!(
                "a row for {table} has {} values for {} columns",
                cells.len(),
                columns.len()
            )));
        }
        for (array, cell) in arrays.iter_mut().zip(cells.drain(..)) {
            array.push(cell);
        }
    }
    let mut params = Vec::with_capacity(columns.len());
    let mut selected = Vec::with_capacity(columns.len());
    let mut bound = Vec::with_capacity(columns.len());
    for (i, ((column, ty), array)) in columns.iter().zip(types).zip(arrays).enumerate() {
        let Some((kind, sql_type)) = array.first().and_then(kind_of) else {
            return Err(DbErr::Custom(format!(
                "{table}.{column}: a null, or values of a kind bulk inserts do not bind"
            )));
        };
        if array
            .iter()
            .any(|cell| kind_of(cell) != Some((kind.clone(), sql_type)))
        {
            return Err(DbErr::Custom(format!(
                "{table}.{column}: a null, or values of more than one kind"
            )));
        }
        params.push(format!("${}::{sql_type}", i + 1));
        selected.push(format!("u.\"{column}\"::{ty}"));
        bound.push(Value::Array(kind, Some(Box::new(array))));
    }
    let names = columns
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO \"{table}\" ({names}) SELECT {} FROM UNNEST({}) AS u({names})",
        selected.join(", "),
        params.join(", ")
    );
    Ok((sql, bound))
}

/// The array a non-null cell goes into on PostgreSQL, and its SQL type; `None` for a null and
/// for the kinds bulk rows do not use.
fn kind_of(cell: &Value) -> Option<(ArrayType, &'static str)> {
    match cell {
        Value::String(Some(_)) => Some((ArrayType::String, "text[]")),
        Value::BigInt(Some(_)) => Some((ArrayType::BigInt, "int8[]")),
        Value::Bool(Some(_)) => Some((ArrayType::Bool, "bool[]")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row whose one value is text or a number, as the test wants.
    #[derive(Serialize)]
    struct Either(Option<i64>);

    impl BulkRow for Either {
        const COLUMNS: &'static [&'static str] = &["v"];
        fn cells(&self, out: &mut Vec<Value>) {
            out.push(self.0.map_or_else(|| "text".into(), Value::from));
        }
    }

    /// A row whose one value is a null.
    #[derive(Serialize)]
    struct Null;

    impl BulkRow for Null {
        const COLUMNS: &'static [&'static str] = &["v"];
        fn cells(&self, out: &mut Vec<Value>) {
            out.push(Value::BigInt(None));
        }
    }

    #[test]
    fn postgres_takes_one_typed_array_per_column_cast_to_its_type() {
        let types = ["bigint".to_owned()];
        let (sql, arrays) = unnest("t", &["v"], &types, &[Either(Some(1)), Either(Some(2))])
            .expect("one kind of value");
        assert_eq!(
            sql,
            "INSERT INTO \"t\" (\"v\") SELECT u.\"v\"::bigint FROM UNNEST($1::int8[]) AS u(\"v\")"
        );
        assert_eq!(
            arrays,
            [Value::Array(
                ArrayType::BigInt,
                Some(Box::new(vec![1i64.into(), 2i64.into()]))
            )]
        );
        // Mixed kinds would make the driver panic: they are an error instead.
        let mixed = unnest("t", &["v"], &types, &[Either(Some(1)), Either(None)]);
        assert!(matches!(mixed, Err(DbErr::Custom(m)) if m.contains("more than one kind")));
        // So would a null in an array.
        let null = unnest("t", &["v"], &types, &[Null, Null]);
        assert!(matches!(null, Err(DbErr::Custom(m)) if m.contains("a null")));
    }
}
