//! The PostgreSQL end of a copy: one connection of its own, in the URL's
//! `schema=` when it names one.

use super::{Kind, TABLES, Table, Value, misfit};
use crate::postgres::maintenance::MIGRATIONS;
use crate::{PgOptions, StoreError};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgRow};
use sqlx::query::Query;
use sqlx::{Connection, PgConnection, Postgres, Row};
use std::str::FromStr;

pub(crate) struct Pg {
    conn: PgConnection,
}

type PgQuery<'q> = Query<'q, Postgres, PgArguments>;

impl Pg {
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let opts = PgOptions::parse(url)?;
        let mut connect =
            PgConnectOptions::from_str(&opts.url).map_err(|e| StoreError::BadUrl {
                url: agentd_core::redact_url(url),
                reason: e.to_string(),
            })?;
        if let Some(schema) = &opts.schema {
            connect = connect.options([("search_path", schema.as_str())]);
        }
        Ok(Self {
            conn: PgConnection::connect_with(&connect).await?,
        })
    }

    pub(super) async fn version(&mut self) -> Result<(usize, usize), StoreError> {
        // A schema never migrated has no `agentd_migrations` table.
        let v: Option<i32> = sqlx::query_scalar(
            "SELECT CASE WHEN to_regclass('agentd_migrations') IS NULL THEN 0 \
             ELSE (SELECT COALESCE(max(version), 0) FROM agentd_migrations) END",
        )
        .fetch_one(&mut self.conn)
        .await?;
        Ok((
            usize::try_from(v.unwrap_or(0)).unwrap_or(0),
            MIGRATIONS.len(),
        ))
    }

    pub(super) async fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
        )
        .fetch_all(&mut self.conn)
        .await?)
    }

    /// Each column's name and type.
    pub(super) async fn columns(
        &mut self,
        table: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1",
        )
        .bind(table)
        .fetch_all(&mut self.conn)
        .await?)
    }

    pub(super) async fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        // `table` comes from TABLES, never from input.
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM \"{table}\""
        )))
        .fetch_one(&mut self.conn)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn leased(&mut self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM runs WHERE status = 'running' AND lease_until > $1",
        )
        .bind(now)
        .fetch_one(&mut self.conn)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn snapshot(&mut self) -> Result<(), StoreError> {
        // One snapshot for every later read; it ends with the connection.
        sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut self.conn)
            .await?;
        Ok(())
    }

    pub(super) async fn page(
        &mut self,
        table: &Table,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let sql = page_sql(table, after.is_some());
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(key) = after {
            for ((name, kind), v) in table.columns.iter().zip(key) {
                q = bind(q, table, name, *kind, v)?;
            }
        }
        q = q.bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows = q.fetch_all(&mut self.conn).await?;
        rows.iter().map(|row| read_row(table, row)).collect()
    }

    pub(super) async fn write(
        &mut self,
        table: &Table,
        rows: &[Vec<Value>],
    ) -> Result<(), StoreError> {
        // Multi-row INSERTs, as many rows each as PostgreSQL's limit of
        // bind parameters allows: one round trip per chunk, not per row.
        let per_insert = (MAX_PARAMS / table.columns.len()).max(1);
        let mut tx = self.conn.begin().await?;
        for chunk in rows.chunks(per_insert) {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(insert_sql(table, chunk.len())));
            for row in chunk {
                for ((name, kind), v) in table.columns.iter().zip(row) {
                    q = bind(q, table, name, *kind, v)?;
                }
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn clear(&mut self) -> Result<(), StoreError> {
        let mut tx = self.conn.begin().await?;
        for table in TABLES {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DELETE FROM \"{}\"",
                table.name
            )))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn advance_identities(&mut self) -> Result<(), StoreError> {
        // Rows were inserted with their ids (OVERRIDING SYSTEM VALUE), which
        // does not move the sequence: the next generated id must come
        // after the largest copied one.
        for table in TABLES {
            let Some(column) = table.identity else {
                continue;
            };
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), \
                 COALESCE((SELECT max(\"{column}\") FROM \"{t}\"), 0) + 1, false)",
                t = table.name
            )))
            .execute(&mut self.conn)
            .await?;
        }
        Ok(())
    }
}

/// Whether a column of type `declared` is read and bound as `kind`.
pub(super) fn accepts(kind: Kind, declared: &str) -> bool {
    matches!(
        (kind, declared),
        (Kind::I16, "smallint")
            | (Kind::I32, "integer")
            | (Kind::I64, "bigint")
            | (Kind::Real, "double precision")
            | (Kind::Text, "text")
            | (Kind::Uuid, "uuid")
            | (Kind::Bytes, "bytea")
    )
}

fn quoted(table: &Table) -> Vec<String> {
    table
        .columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect()
}

/// `SELECT` of a page in key order, after a key when `after`
/// (`$1..$k` the key, then the limit).
fn page_sql(table: &Table, after: bool) -> String {
    let cols = quoted(table);
    let key = &cols[..table.key];
    let filter = if after {
        let marks: Vec<String> = (1..=table.key).map(|i| format!("${i}")).collect();
        format!("WHERE ({}) > ({}) ", key.join(", "), marks.join(", "))
    } else {
        String::new()
    };
    format!(
        "SELECT {} FROM \"{}\" {filter}ORDER BY {} LIMIT ${}",
        cols.join(", "),
        table.name,
        key.join(", "),
        if after { table.key + 1 } else { 1 }
    )
}

/// PostgreSQL's limit of bind parameters in one statement.
const MAX_PARAMS: usize = 65_535;

/// `INSERT` of `rows` rows of `table`'s columns.
fn insert_sql(table: &Table, rows: usize) -> String {
    let cols = quoted(table);
    let n = cols.len();
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let marks: Vec<String> = (1..=n).map(|i| format!("${}", r * n + i)).collect();
            format!("({})", marks.join(", "))
        })
        .collect();
    let overriding = if table.identity.is_some() {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    format!(
        "INSERT INTO \"{}\" ({}){overriding} VALUES {}",
        table.name,
        cols.join(", "),
        values.join(", ")
    )
}

/// Binds `v` with the Rust type of the column's PostgreSQL type.
fn bind<'q>(
    q: PgQuery<'q>,
    table: &Table,
    name: &str,
    kind: Kind,
    v: &Value,
) -> Result<PgQuery<'q>, StoreError> {
    let bad = || misfit(table, name, v);
    let int = |v: &Value| match v {
        Value::Null => Ok(None),
        Value::Int(i) => Ok(Some(*i)),
        _ => Err(bad()),
    };
    Ok(match kind {
        Kind::I16 => q.bind(int(v)?.map(i16::try_from).transpose().map_err(|_| bad())?),
        Kind::I32 => q.bind(int(v)?.map(i32::try_from).transpose().map_err(|_| bad())?),
        Kind::I64 => q.bind(int(v)?),
        Kind::Real => q.bind(match v {
            Value::Null => None,
            Value::Real(f) => Some(*f),
            _ => return Err(bad()),
        }),
        Kind::Text => q.bind(match v {
            Value::Null => None,
            Value::Text(s) => Some(s.clone()),
            _ => return Err(bad()),
        }),
        Kind::Uuid => q.bind(match v {
            Value::Null => None,
            Value::Bytes(b) => Some(uuid::Uuid::from_slice(b).map_err(|_| bad())?),
            _ => return Err(bad()),
        }),
        Kind::Bytes => q.bind(match v {
            Value::Null => None,
            Value::Bytes(b) => Some(b.clone()),
            _ => return Err(bad()),
        }),
    })
}

fn read_row(table: &Table, row: &PgRow) -> Result<Vec<Value>, StoreError> {
    let mut out = Vec::with_capacity(table.columns.len());
    for (i, (_, kind)) in table.columns.iter().enumerate() {
        let v = match kind {
            Kind::I16 => row
                .try_get::<Option<i16>, _>(i)?
                .map(|n| Value::Int(n.into())),
            Kind::I32 => row
                .try_get::<Option<i32>, _>(i)?
                .map(|n| Value::Int(n.into())),
            Kind::I64 => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
            Kind::Real => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
            Kind::Text => row.try_get::<Option<String>, _>(i)?.map(Value::Text),
            Kind::Uuid => row
                .try_get::<Option<uuid::Uuid>, _>(i)?
                .map(|u| Value::Bytes(u.as_bytes().to_vec())),
            Kind::Bytes => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Bytes),
        };
        out.push(v.unwrap_or(Value::Null));
    }
    Ok(out)
}
