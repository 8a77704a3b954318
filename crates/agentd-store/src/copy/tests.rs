#![allow(clippy::unwrap_used, clippy::panic)]

use super::*;

/// A migrated SQLite store in `dir`, and its URL.
async fn store_in(dir: &std::path::Path, name: &str) -> String {
    let url = format!("sqlite://{}", dir.join(name).display());
    crate::open(&url).await.unwrap().migrate().await.unwrap();
    url
}

fn quiet(_: &Progress) {}

#[tokio::test]
async fn every_table_and_column_of_the_migrations_is_carried_with_its_type() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_in(dir.path(), "a.db").await;
    let mut side = Side::open(&url).await.unwrap();
    check_tables(&mut side, &url).await.unwrap();
    // Every listed table exists with every listed column.
    for table in TABLES {
        let columns = side.columns(table.name).await.unwrap();
        for (name, _) in table.columns {
            assert!(
                columns.iter().any(|(c, _)| c == name),
                "{}.{name} is not in the schema",
                table.name
            );
        }
    }
}

#[tokio::test]
async fn a_column_or_table_the_copy_does_not_know_is_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (ddl, what)) in [
        (
            "ALTER TABLE runs ADD COLUMN extra TEXT",
            "column runs.extra",
        ),
        (
            "CREATE TABLE plugins (id TEXT PRIMARY KEY)",
            "table plugins",
        ),
        // A type the mapping does not expect for a known column.
        (
            "DROP TABLE circuits; \
             CREATE TABLE circuits (provider TEXT PRIMARY KEY, open_until TEXT NOT NULL)",
            "column circuits.open_until of type TEXT (expected I64)",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let from = store_in(dir.path(), &format!("from{i}.db")).await;
        let conn = rusqlite::Connection::open(dir.path().join(format!("from{i}.db"))).unwrap();
        conn.execute_batch(ddl).unwrap();
        drop(conn);
        let to = format!(
            "sqlite://{}",
            dir.path().join(format!("to{i}.db")).display()
        );
        let err = copy(&from, &to, &CopyOptions::default(), &mut quiet)
            .await
            .unwrap_err();
        assert!(matches!(err, CopyError::Unknown { .. }), "{ddl}: {err}");
        assert!(err.to_string().contains(what), "{err}");
    }
}

#[tokio::test]
async fn pages_follow_composite_keys_and_counts_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let from = store_in(dir.path(), "from.db").await;
    let conn = rusqlite::Connection::open(dir.path().join("from.db")).unwrap();
    // Messages of two tenants and conversations: a three-column key.
    for (t, c, seq) in [
        ("a", "x", 1),
        ("a", "x", 2),
        ("a", "y", 1),
        ("b", "x", 1),
        ("b", "x", 3),
    ] {
        conn.execute(
            "INSERT INTO messages (tenant, conversation_id, seq, run_id, message, created_at) \
             VALUES (?1, ?2, ?3, ?4, '{}', 0)",
            rusqlite::params![t, c, seq, uuid::Uuid::new_v4().as_bytes().to_vec()],
        )
        .unwrap();
    }
    drop(conn);
    let to = format!("sqlite://{}", dir.path().join("to.db").display());
    let mut seen = Vec::new();
    let mut record = |p: &Progress| {
        if p.table == "messages" {
            seen.push((p.copied, p.total));
        }
    };
    let options = CopyOptions {
        force: false,
        batch: 2,
    };
    let counts = copy(&from, &to, &options, &mut record).await.unwrap();
    assert_eq!(seen, [(0, 5), (2, 5), (4, 5), (5, 5)]);
    let messages = counts.iter().find(|c| c.table == "messages").unwrap();
    assert_eq!((messages.source, messages.target), (5, 5));
}
