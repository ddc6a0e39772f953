//! Migration 7: the ingest tables' CHECK constraints made cheap to run.
//!
//! Two kinds of constraint cost the writer about a tenth of its time for an
//! event that closes a deal (benches/README, "Sixth round"):
//!
//! - `json_valid(x)` parses the whole value again on every insert and
//!   update: the 4.4 KB outcome, the normalized event, the record's state,
//!   each outbox payload. The engine writes these columns only with
//!   serde_json, from typed values, so the check could not fail; it only
//!   proved that again at the writer's expense.
//! - `kind IN ('task', 'notify', …)` with more than two values makes SQLite
//!   build a temporary b-tree of the list on every execution, twice for each
//!   outbox row. The same constraint as `kind = 'task' OR …` compares in
//!   place, and still refuses a value outside the list.
//!
//! SQLite 3.51 cannot alter a constraint, and rebuilding `events` would
//! copy the whole audit log. So this follows SQLite's documented procedure
//! for removing CHECK constraints (lang_altertable.html, "Making Other Kinds
//! Of Table Schema Changes"): inside the migration's transaction, rewrite
//! each table's CREATE text in `sqlite_schema` with `writable_schema` on,
//! then bump `schema_version` so every connection parses the schema again.
//! No row moves, and every row already stored satisfies the new constraints
//! (they are the old ones, or fewer).
//!
//! Each edit must find its text exactly once: a schema that is not the one
//! migrations 1 to 6 left fails the migration (rolled back, the file as it
//! was) instead of being half edited.

use rusqlite::config::DbConfig;
use rusqlite::{OptionalExtension, Transaction};
use rusqlite_migration::{HookError, HookResult};

/// (table, text in its CREATE statement, what replaces it).
const EDITS: &[(&str, &str, &str)] = &[
    ("records", " CHECK (json_valid(state))", ""),
    ("handoffs", " CHECK (json_valid(missing))", ""),
    ("handoffs", " CHECK (json_valid(exceptions))", ""),
    ("events", " CHECK (json_valid(normalized))", ""),
    ("events", " CHECK (json_valid(outcome))", ""),
    ("events", " CHECK (json_valid(field_errors))", ""),
    ("actions", " CHECK (json_valid(payload))", ""),
    (
        "actions",
        "CHECK (kind IN ('task', 'notify', 'email_draft', 'set', 'assign'))",
        "CHECK (kind = 'task' OR kind = 'notify' OR kind = 'email_draft' \
         OR kind = 'set' OR kind = 'assign')",
    ),
    (
        "actions",
        "CHECK (state IN ('pending', 'leased', 'delivered', 'dead', 'draft'))",
        "CHECK (state = 'pending' OR state = 'leased' OR state = 'delivered' \
         OR state = 'dead' OR state = 'draft')",
    ),
];

/// The hook of migration 7 (see the module docs).
pub(super) fn rewrite(tx: &Transaction) -> HookResult {
    let version: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    let mut tables: Vec<(&str, String)> = Vec::new();
    for &(table, from, to) in EDITS {
        let at = match tables.iter().position(|(t, _)| *t == table) {
            Some(at) => at,
            None => {
                let sql: Option<String> = tx
                    .query_row(
                        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                        [table],
                        |r| r.get(0),
                    )
                    .optional()?;
                tables.push((table, sql.unwrap_or_default()));
                tables.len() - 1
            }
        };
        let sql = &mut tables[at].1;
        if sql.matches(from).count() != 1 {
            return Err(not_as_left(table, from));
        }
        *sql = sql.replacen(from, to, 1);
    }
    // A build of SQLite with SQLITE_DEFAULT_DEFENSIVE refuses writes to
    // sqlite_schema (and ignores a new schema_version without a word): lift
    // it for this transaction only.
    let defensive = tx.db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE)?;
    tx.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, false)?;
    let edited = edit(tx, &tables, version);
    tx.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, defensive)?;
    edited
}

fn edit(tx: &Transaction, tables: &[(&str, String)], version: i64) -> HookResult {
    tx.pragma_update(None, "writable_schema", "ON")?;
    for (table, sql) in tables {
        tx.execute(
            "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2",
            [sql.as_str(), table],
        )?;
    }
    // A new schema_version makes SQLite parse the schema again, on this
    // connection and any other, before its next statement.
    tx.pragma_update(None, "schema_version", version + 1)?;
    tx.pragma_update(None, "writable_schema", "OFF")?;
    let now: i64 = tx.query_row("PRAGMA schema_version", [], |r| r.get(0))?;
    if now != version + 1 {
        return Err(HookError::Hook(format!(
            "SQLite kept schema version {now} instead of {}: the tables' new definitions \
             would not be read",
            version + 1
        )));
    }
    // Read the new definitions now, inside the transaction: one SQLite
    // cannot parse fails the migration (rolled back) instead of leaving a
    // file no statement can use.
    // (Run, not only prepared: a statement finds the schema changed, and
    // reads it again, when it starts.)
    for (table, _) in tables {
        tx.prepare(&format!("SELECT 1 FROM \"{table}\" LIMIT 0"))?
            .exists([])?;
    }
    Ok(())
}

fn not_as_left(table: &str, from: &str) -> HookError {
    HookError::Hook(format!(
        "table `{table}` is not as schema version 6 left it (`{}` should appear once in \
         its definition); restore the database from a backup made by handoff, or open it \
         with the release that made it",
        from.trim()
    ))
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::super::{migrations, SqliteOptions, SqliteStore, SCHEMA_VERSION};

    fn table_sql(conn: &Connection, table: &str) -> String {
        conn.query_row(
            "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap()
    }

    fn quick_check(conn: &Connection) -> String {
        conn.query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap()
    }

    const HANDOFF: &str = "INSERT INTO handoffs (id, workflow, object, record_id, status, \
         triggered_at, updated_at) VALUES ('h-1', 'W', 'deal', 'D-1', 'paused', 0, 0)";

    fn action(kind: &str, state: &str, payload: &str) -> String {
        format!(
            "INSERT INTO actions (id, handoff_id, kind, payload, idempotency_key, created_at, \
             state, next_attempt_at) VALUES ('a-{kind}-{state}', 'h-1', '{kind}', '{payload}', \
             'k', 0, '{state}', 0)"
        )
    }

    #[test]
    fn a_new_database_has_the_cheap_checks_and_they_still_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        SqliteStore::open(&path, SqliteOptions::default())
            .unwrap()
            .close();
        let conn = Connection::open(&path).unwrap();
        for table in ["records", "handoffs", "events", "actions"] {
            let sql = table_sql(&conn, table);
            assert!(!sql.contains("json_valid"), "{sql}");
            // (`orphaned IN (0, 1)` stays: two values compare in place.)
            assert!(!sql.contains(" IN ('"), "{sql}");
        }
        assert_eq!(quick_check(&conn), "ok");

        // The point of the change: an outbox insert builds no temporary
        // b-tree for its checks.
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN {}", action("task", "pending", "{}")))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(plan.iter().any(|op| op == "Insert"), "{plan:?}");
        assert!(!plan.iter().any(|op| op == "OpenEphemeral"), "{plan:?}");

        // What the checks still refuse, and what they let in.
        conn.execute(HANDOFF, []).unwrap();
        conn.execute(&action("task", "pending", "{}"), []).unwrap();
        conn.execute(&action("email_draft", "draft", "{}"), [])
            .unwrap();
        for (kind, state) in [("tsk", "pending"), ("task", "sent"), ("", "draft")] {
            let err = conn
                .execute(&action(kind, state, "{}"), [])
                .expect_err("a kind or state outside the list is refused");
            assert!(err.to_string().contains("CHECK constraint failed"), "{err}");
        }
    }

    #[test]
    fn a_version_6_database_keeps_its_rows_and_loses_only_the_costly_checks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v6.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 6).unwrap();
            // Version 6 still parses JSON and refuses a bad payload.
            conn.execute(HANDOFF, []).unwrap();
            assert!(conn
                .execute(&action("notify", "dead", "{half"), [])
                .is_err());
            conn.execute(&action("notify", "dead", r#"{"to":"x"}"#), [])
                .unwrap();
        }
        SqliteStore::open(&path, SqliteOptions::default())
            .unwrap()
            .close();
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn) as usize, SCHEMA_VERSION);
        assert_eq!(quick_check(&conn), "ok");
        let kept: (String, String) = conn
            .query_row("SELECT kind, payload FROM actions", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(kept, ("notify".into(), r#"{"to":"x"}"#.into()));
        // Only the listed constraints changed: the rest of each definition
        // (columns, keys, the other checks) is as version 6 had it.
        let actions = table_sql(&conn, "actions");
        assert!(actions.contains("CHECK (kind = 'task' OR kind = 'notify'"));
        assert!(actions.contains("REFERENCES handoffs (id)"), "{actions}");
        assert!(table_sql(&conn, "handoffs").contains("CHECK (orphaned IN (0, 1))"));
        let notes = table_sql(&conn, "notes");
        assert!(notes.contains("json_valid(data)"), "{notes}");
    }

    /// A version-6 file whose `table` the test replaced with `create`.
    fn v6_with(path: &std::path::Path, table: &str, create: &str) {
        let mut conn = Connection::open(path).unwrap();
        migrations().to_version(&mut conn, 6).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA foreign_keys = OFF; DROP TABLE {table}; {create}"
        ))
        .unwrap();
    }

    fn user_version(conn: &Connection) -> i64 {
        conn.pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn an_edit_sqlite_cannot_parse_is_rolled_back_and_the_file_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.db");
        // The check as the table's last clause: removing it leaves `, )`.
        v6_with(
            &path,
            "records",
            "CREATE TABLE records (object TEXT NOT NULL, record_id TEXT NOT NULL, \
             state TEXT NOT NULL, workflow_version TEXT, updated_at INTEGER NOT NULL, \
             PRIMARY KEY (object, record_id), CHECK (json_valid(state))) WITHOUT ROWID;",
        );
        let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("malformed"), "{text}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn), 6, "the migration rolled back");
        assert_eq!(quick_check(&conn), "ok");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0, "the table is readable");
    }

    #[test]
    fn a_connection_in_defensive_mode_migrates_and_stays_defensive() {
        use rusqlite::config::DbConfig::SQLITE_DBCONFIG_DEFENSIVE;
        let dir = tempfile::tempdir().unwrap();
        let mut conn = Connection::open(dir.path().join("defensive.db")).unwrap();
        migrations().to_version(&mut conn, 6).unwrap();
        // As a build with SQLITE_DEFAULT_DEFENSIVE opens every connection.
        conn.set_db_config(SQLITE_DBCONFIG_DEFENSIVE, true).unwrap();
        migrations().to_latest(&mut conn).unwrap();
        assert_eq!(user_version(&conn) as usize, SCHEMA_VERSION);
        assert!(!table_sql(&conn, "events").contains("json_valid"));
        assert!(conn.db_config(SQLITE_DBCONFIG_DEFENSIVE).unwrap());
        assert_eq!(quick_check(&conn), "ok");
    }

    #[test]
    fn a_missing_table_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.db");
        v6_with(&path, "event_handoffs", "DROP TABLE events;");
        let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("table `events` is not as"), "{text}");
        assert_eq!(user_version(&Connection::open(&path).unwrap()), 6);
    }

    #[test]
    fn a_schema_edited_by_hand_fails_the_migration_and_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edited.db");
        // Someone replaced the outbox table with one of their own.
        v6_with(
            &path,
            "action_sinks",
            "DROP TABLE actions; \
             CREATE TABLE actions (seq INTEGER PRIMARY KEY, id TEXT, payload TEXT);",
        );
        let before = table_sql(&Connection::open(&path).unwrap(), "events");
        let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("`actions`"), "{text}");
        assert!(text.contains("json_valid(payload)"), "{text}");
        let conn = Connection::open(&path).unwrap();
        assert_eq!(user_version(&conn), 6, "the migration rolled back");
        // `events` comes before `actions` in the edits, and is untouched.
        assert_eq!(table_sql(&conn, "events"), before);
        assert!(before.contains("json_valid(outcome)"));
        assert_eq!(quick_check(&conn), "ok");
    }
}
