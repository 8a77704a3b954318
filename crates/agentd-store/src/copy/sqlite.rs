//! The SQLite end of a copy: a connection of its own. Its calls block;
//! a copy is a one-off operator command, not a serving path.

use super::{Kind, TABLES, Table, Value, misfit};
use crate::StoreError;
use crate::sqlite::{Location, configure, maintenance::MIGRATIONS, parse_url};
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OpenFlags};

pub(crate) struct Lite {
    conn: Connection,
}

impl Lite {
    pub(super) fn open(url: &str) -> Result<Self, super::CopyError> {
        match parse_url(url)? {
            Location::File(path) => {
                // Never created here: a missing source is an error, and the
                // target was created by its migration.
                let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let conn = Connection::open_with_flags(&path, flags).map_err(StoreError::from)?;
                configure(&conn).map_err(StoreError::from)?;
                Ok(Self { conn })
            }
            Location::Memory(_) => Err(super::CopyError::Unsupported {
                url: url.to_string(),
                reason: "an in-memory database lives only inside its process".into(),
            }),
        }
    }

    pub(super) async fn version(&mut self) -> Result<(usize, usize), StoreError> {
        let v: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        Ok((usize::try_from(v).unwrap_or(0), MIGRATIONS.len()))
    }

    pub(super) async fn tables(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(names)
    }

    /// Each column's name and declared type.
    pub(super) async fn columns(
        &mut self,
        table: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, upper(type) FROM pragma_table_info(?1)")?;
        let columns = stmt
            .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(columns)
    }

    pub(super) async fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        // `table` comes from TABLES, never from input.
        let n: i64 =
            self.conn
                .query_row(&format!("SELECT count(*) FROM \"{table}\""), [], |r| {
                    r.get(0)
                })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn leased(&mut self, now: i64) -> Result<u64, StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT count(*) FROM runs WHERE status = 'running' AND lease_until > ?1",
            [now],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub(super) async fn snapshot(&mut self) -> Result<(), StoreError> {
        // A deferred transaction takes its snapshot at the first read; the
        // counts read right after pin it. It ends with the connection.
        self.conn.execute_batch("BEGIN")?;
        Ok(())
    }

    pub(super) async fn page(
        &mut self,
        table: &Table,
        after: Option<&[Value]>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>, StoreError> {
        let sql = page_sql(table, after.is_some());
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut args: Vec<Sql> = after.unwrap_or_default().iter().map(to_sql).collect();
        args.push(Sql::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(table.columns.len());
            for (i, (name, kind)) in table.columns.iter().enumerate() {
                let v = from_sql(row.get_ref(i)?, *kind);
                match v {
                    Some(v) => values.push(v),
                    None => {
                        let raw = Value::Text(format!("{:?}", row.get_ref(i)?));
                        return Err(misfit(table, name, &raw));
                    }
                }
            }
            out.push(values);
        }
        Ok(out)
    }

    pub(super) async fn write(
        &mut self,
        table: &Table,
        rows: &[Vec<Value>],
    ) -> Result<(), StoreError> {
        let names: Vec<String> = table
            .columns
            .iter()
            .map(|(c, _)| format!("\"{c}\""))
            .collect();
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        let sql = format!(
            "INSERT INTO \"{}\" ({}) VALUES ({})",
            table.name,
            names.join(", "),
            marks.join(", ")
        );
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(&sql)?;
            for row in rows {
                stmt.execute(rusqlite::params_from_iter(row.iter().map(to_sql)))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) async fn clear(&mut self) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for table in TABLES {
            tx.execute(&format!("DELETE FROM \"{}\"", table.name), [])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub(super) async fn advance_identities(&mut self) -> Result<(), StoreError> {
        // `audit.id` is a plain INTEGER PRIMARY KEY: SQLite picks max + 1.
        Ok(())
    }
}

/// `SELECT` of a page in key order, after a key when `after`
/// (`?1..?k` the key, then the limit).
fn page_sql(table: &Table, after: bool) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|(c, _)| format!("\"{c}\""))
        .collect();
    let key = &cols[..table.key];
    let filter = if after {
        let marks: Vec<String> = (1..=table.key).map(|i| format!("?{i}")).collect();
        format!("WHERE ({}) > ({}) ", key.join(", "), marks.join(", "))
    } else {
        String::new()
    };
    format!(
        "SELECT {} FROM \"{}\" {filter}ORDER BY {} LIMIT ?{}",
        cols.join(", "),
        table.name,
        key.join(", "),
        if after { table.key + 1 } else { 1 }
    )
}

fn to_sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Int(i) => Sql::Integer(*i),
        Value::Real(f) => Sql::Real(*f),
        Value::Text(s) => Sql::Text(s.clone()),
        Value::Bytes(b) => Sql::Blob(b.clone()),
    }
}

/// The value of a column of `kind`; `None` when it does not fit.
fn from_sql(v: ValueRef<'_>, kind: Kind) -> Option<Value> {
    Some(match (v, kind) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), Kind::I16 | Kind::I32 | Kind::I64) => Value::Int(i),
        (ValueRef::Real(f), Kind::Real) => Value::Real(f),
        // A REAL column may hand back a whole number stored as INTEGER.
        (ValueRef::Integer(i), Kind::Real) => Value::Real(i as f64),
        (ValueRef::Text(t), Kind::Text) => Value::Text(String::from_utf8(t.to_vec()).ok()?),
        (ValueRef::Blob(b), Kind::Uuid) if b.len() == 16 => Value::Bytes(b.to_vec()),
        (ValueRef::Blob(b), Kind::Bytes) => Value::Bytes(b.to_vec()),
        _ => return None,
    })
}

/// Whether a column declared `declared` stores values of `kind` (by
/// affinity: every integer width is INTEGER).
pub(super) fn accepts(kind: Kind, declared: &str) -> bool {
    matches!(
        (kind, declared),
        (Kind::I16 | Kind::I32 | Kind::I64, "INTEGER" | "BIGINT")
            | (Kind::Real, "REAL")
            | (Kind::Text, "TEXT")
            | (Kind::Uuid | Kind::Bytes, "BLOB")
    )
}
