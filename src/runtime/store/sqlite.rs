//! The SQLite backend: one file, WAL, a writer thread doing group commit on
//! the one write connection, and a few read connections for the API.
//!
//! The only file that imports rusqlite. Pragmas are read back after they are
//! set (SQLite silently ignores a pragma it does not know, which once kept a
//! job queue off WAL for good); the schema is upgraded by the numbered files
//! in `migrations/`, and a file from a newer handoff is refused.
//!
//! Reads use a small pool of our own (a `Mutex<Vec<Connection>>` and a
//! `Condvar`): the connections are opened once and never replaced, so a
//! general pool (r2d2 with its manager and maintenance thread) would add a
//! dependency for nothing we use.

use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use rusqlite_migration::{Migrations, M};

use super::{
    ActionKind, ActionRow, Appended, AuditId, Cause, DeliveryState, EventKey, EventRow,
    HandoffDetail, HandoffFilter, HandoffRow, Job, NewAction, NewEvent, NewNote, NewPending,
    NewerSet, NoteRow, Page, PageRequest, PendingRow, PendingSummary, Receipt, RecordRow,
    ReplayableJob, SessionRow, SinkDelivery, StatusChange, Store, StoreCounts, StoreError,
    WorkflowFile, WorkflowVersion, WorkflowVersionSummary, WriteTx, WriterCounters, MAX_PAGE,
};
use crate::runtime::writer::{BatchObserver, Syncer, Transactor, Writer};

// The CRM adapters' pending decisions (issue 11).
mod crm;
// The outbox worker's per-sink delivery records (issue 11).
mod delivery;
// The health report's reads and escalations (issue 12).
mod checkpoint;
// Migration 7's hook: cheaper CHECK constraints.
mod checks;
#[cfg(test)]
mod faults;
mod health;
use checkpoint::Checkpointer;
#[cfg(unix)]
mod wal_sync;
mod web;

/// The schema, one migration per step, applied in order. Never edit a
/// released step: add the next one.
fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!(
            "migrations/0001_records_handoffs_events_outbox.sql"
        )),
        M::up(include_str!(
            "migrations/0002_assignment_versions_notes.sql"
        )),
        M::up(include_str!("migrations/0003_delivery_sinks.sql")),
        M::up(include_str!("migrations/0004_crm_pending_decisions.sql")),
        M::up(include_str!("migrations/0005_escalations_health.sql")),
        M::up(include_str!("migrations/0006_web_sessions.sql")),
        M::up_with_hook(
            include_str!("migrations/0007_checks_without_parsing.sql"),
            checks::rewrite,
        ),
        M::up(include_str!("migrations/0008_records_in_a_rowid_table.sql")),
    ])
}

/// Prepared statements each connection keeps (every statement the write
/// path or a read uses, with room to spare).
const STATEMENT_CACHE: usize = 64;

/// The write connection's page cache, in KiB (as `PRAGMA cache_size`
/// takes it: negative means KiB). Bigger is not better here: at every
/// commit SQLite walks the cache's whole hash table (`pcache1Truncate`,
/// while the file is under 1 GiB), so under load 64 MiB served 2,800
/// events/s, 16 MiB 2,700, 8 MiB 3,800 and SQLite's default 2 MiB 3,300
/// (`benches/load.sh`, idle machine). New rows go to the right edge of
/// every index (ids sort by time), so the hot pages are few.
const WRITER_CACHE_KIB: i64 = -8 * 1024;

/// The schema version this build writes: the number of steps in
/// [`migrations`] (a test holds the two together).
pub const SCHEMA_VERSION: usize = 8;

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Every commit reaches the disk before it is acknowledged: a power cut
    /// loses nothing acknowledged. The default.
    Full,
    /// In WAL mode a power cut may lose the last commits (never corrupts);
    /// a process crash loses nothing. Faster.
    Normal,
}

impl Synchronous {
    /// The level the write connection itself runs at. On unix, NORMAL
    /// either way: FULL's one addition in WAL mode, an fsync inside every
    /// COMMIT, is made by the writer's sync thread instead (see
    /// `wal_sync`), before any answer, so the writer does not wait through
    /// it. Elsewhere SQLite makes it.
    fn connection_pragma(self) -> (&'static str, i64) {
        match self {
            Synchronous::Full if !cfg!(unix) => ("FULL", 2),
            _ => ("NORMAL", 1),
        }
    }

    /// Whether the writer syncs the log itself before answering.
    fn syncs_commits(self) -> bool {
        self == Synchronous::Full && cfg!(unix)
    }
}

/// How to open the store.
#[derive(Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// How long a statement waits for a lock another process holds.
    pub busy_timeout: Duration,
    /// The most jobs one transaction carries.
    pub max_batch: usize,
    /// Read connections for the API.
    pub readers: usize,
    /// Called after every batch, for metrics.
    pub on_batch: Option<BatchObserver>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Full,
            busy_timeout: Duration::from_secs(5),
            max_batch: 512,
            readers: 4,
            on_batch: None,
        }
    }
}

impl std::fmt::Debug for SqliteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteOptions")
            .field("synchronous", &self.synchronous)
            .field("busy_timeout", &self.busy_timeout)
            .field("max_batch", &self.max_batch)
            .field("readers", &self.readers)
            .field("on_batch", &self.on_batch.is_some())
            .finish()
    }
}

/// The pragmas as read back from the write connection after opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pragmas {
    pub journal_mode: String,
    pub synchronous: Synchronous,
    pub busy_timeout: Duration,
    pub foreign_keys: bool,
}

/// A store in one SQLite file.
pub struct SqliteStore {
    path: String,
    pragmas: Pragmas,
    writer: Writer,
    readers: ReadPool,
    checkpointer: Arc<Checkpointer>,
    /// The longest a read waits for the disk to confirm what it saw.
    durable_wait: Duration,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("pragmas", &self.pragmas)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, upgrades its
    /// schema, checks its pragmas and starts the writer thread.
    pub fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let path_str = path.as_ref().display().to_string();
        let open_err = |e: rusqlite::Error| StoreError::Open {
            path: path_str.clone(),
            reason: e.to_string(),
        };
        let mut conn = Connection::open(path.as_ref()).map_err(open_err)?;
        let pragmas = set_write_pragmas(&conn, &path_str, &options)?;
        upgrade(&mut conn, &path_str)?;

        let readers = (0..options.readers.max(1))
            .map(|_| open_reader(path.as_ref(), &path_str, options.busy_timeout))
            .collect::<Result<Vec<_>, _>>()?;

        let (write_conn, checkpointer) =
            WriteConn::new(conn, path.as_ref(), &path_str, options.synchronous)?;
        let writer = Writer::start(write_conn, options.max_batch, options.on_batch.clone())
            .map_err(|e| match e {
                StoreError::Open { reason, .. } => StoreError::Open {
                    path: path_str.clone(),
                    reason,
                },
                e => e,
            })?;
        Ok(SqliteStore {
            path: path_str,
            pragmas,
            writer,
            readers: ReadPool::new(readers),
            checkpointer,
            durable_wait: options.busy_timeout,
        })
    }

    /// The file's path, as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The write connection's pragmas, as read back when opening.
    pub fn pragmas(&self) -> &Pragmas {
        &self.pragmas
    }

    /// Lets the writer commit what is queued and stops it; later writes get
    /// [`StoreError::WriterStopped`]. Reads go on working.
    pub fn close(&self) {
        self.writer.shutdown();
        self.checkpointer.stop();
    }

    fn read<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.readers.get();
        let value = f(&conn).map_err(db(doing))?;
        // The query is over: wait for the disk without holding a reader.
        drop(conn);
        self.durable_reads()?;
        Ok(value)
    }

    /// Runs `f` in one read transaction, so its queries see one snapshot.
    fn read_snapshot<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let mut conn = self.readers.get();
        let tx = conn.transaction().map_err(db(doing))?;
        let value = f(&tx).map_err(db(doing))?;
        // A read transaction has nothing to keep; ending it frees the snapshot.
        tx.finish().map_err(db(doing))?;
        drop(conn);
        self.durable_reads()?;
        Ok(value)
    }

    /// With `synchronous=FULL`, a read has seen commits the sync thread may
    /// not have synced yet (COMMIT no longer waits for the disk, see
    /// `wal_sync`): it returns only once they are durable, so no page, API
    /// answer or outside system is shown a write a power cut could take
    /// back. Waits only while writes are coming in, for the sync under way
    /// and the next one at most; fails after `busy_timeout`, and at once
    /// after a sync failed. (Within this process: another process reading
    /// the file, such as `handoff outbox list`, sees commits as they are.)
    fn durable_reads(&self) -> Result<(), StoreError> {
        match self.writer.durability() {
            Some(d) => d.wait(self.durable_wait),
            None => Ok(()),
        }
    }
}

fn db(doing: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Backend {
        doing,
        reason: e.to_string(),
    }
}

fn set_write_pragmas(
    conn: &Connection,
    path: &str,
    options: &SqliteOptions,
) -> Result<Pragmas, StoreError> {
    let err = db("setting pragmas");
    let mismatch = |pragma: &'static str, wanted: &str, got: String| StoreError::Pragma {
        path: path.to_owned(),
        pragma,
        wanted: wanted.to_owned(),
        got,
    };
    // First, so that switching to WAL (an exclusive lock) waits for
    // another process opening the file at the same moment.
    conn.busy_timeout(options.busy_timeout).map_err(&err)?;
    let got: i64 = conn
        .pragma_query_value(None, "busy_timeout", |r| r.get(0))
        .map_err(&err)?;
    let wanted = i64::try_from(options.busy_timeout.as_millis()).unwrap_or(i64::MAX);
    if got != wanted.min(i64::from(i32::MAX)) {
        return Err(mismatch(
            "busy_timeout",
            &wanted.to_string(),
            got.to_string(),
        ));
    }
    let journal_mode = switch_to_wal(conn, options.busy_timeout).map_err(&err)?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(mismatch("journal_mode", "WAL", journal_mode));
    }
    let (sync_name, sync_value) = options.synchronous.connection_pragma();
    conn.pragma_update(None, "synchronous", sync_name)
        .map_err(&err)?;
    let got: i64 = conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .map_err(&err)?;
    if got != sync_value {
        return Err(mismatch("synchronous", sync_name, got.to_string()));
    }
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(&err)?;
    let got: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .map_err(&err)?;
    if got != 1 {
        return Err(mismatch("foreign_keys", "ON", got.to_string()));
    }
    Ok(Pragmas {
        journal_mode: journal_mode.to_ascii_lowercase(),
        synchronous: options.synchronous,
        busy_timeout: options.busy_timeout,
        foreign_keys: true,
    })
}

/// Switches the file to WAL and answers the mode now in force.
///
/// Two processes creating the same new file at once (`serve` starting while
/// `handoff health` runs) both hold a shared lock and ask for an exclusive
/// one to switch: SQLite refuses one of them "database is locked" at once,
/// without calling the busy handler, because waiting could deadlock. The
/// refused one has let go of its lock when the statement failed, so trying
/// again (the other has switched the file by then, or will) succeeds; this
/// tries until the busy timeout is spent, pausing as SQLite's own busy
/// handler does.
fn switch_to_wal(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + busy_timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            answered => return answered,
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], refusing a newer file.
fn upgrade(conn: &mut Connection, path: &str) -> Result<(), StoreError> {
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db("reading the schema version"))?;
    let found = usize::try_from(found).unwrap_or(usize::MAX);
    if found > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_owned(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    // Write-locked from its first statement: a deferred transaction that
    // read the schema and then found another process had committed could
    // not take the lock (SQLITE_BUSY_SNAPSHOT, no waiting helps).
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    let migrated = migrations().to_latest(conn);
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Deferred);
    let Err(e) = migrated else { return Ok(()) };
    // Another process opening the file at the same time (`handoff health`
    // as a new release starts) may have upgraded it between our reading
    // its version and our taking the lock: then the migrations it ran are
    // why ours failed ("already exists"), and there is nothing left to do.
    let now: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db("reading the schema version"))?;
    match usize::try_from(now) {
        Ok(now) if now == SCHEMA_VERSION && found < SCHEMA_VERSION => Ok(()),
        Ok(now) if now > SCHEMA_VERSION => Err(StoreError::TooNew {
            path: path.to_owned(),
            found: now,
            known: SCHEMA_VERSION,
        }),
        _ => Err(StoreError::Migrate {
            path: path.to_owned(),
            to: SCHEMA_VERSION,
            reason: e.to_string(),
        }),
    }
}

fn open_reader(path: &Path, path_str: &str, busy: Duration) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| StoreError::Open {
        path: path_str.to_owned(),
        reason: e.to_string(),
    })?;
    conn.busy_timeout(busy)
        .map_err(db("setting a reader's busy timeout"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// A fixed set of read connections; `get` waits for a free one.
struct ReadPool {
    idle: Mutex<Vec<Connection>>,
    freed: Condvar,
}

struct Lease<'a> {
    pool: &'a ReadPool,
    conn: Option<Connection>,
}

impl ReadPool {
    fn new(conns: Vec<Connection>) -> ReadPool {
        ReadPool {
            idle: Mutex::new(conns),
            freed: Condvar::new(),
        }
    }

    fn get(&self) -> Lease<'_> {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = idle.pop() {
                return Lease {
                    pool: self,
                    conn: Some(conn),
                };
            }
            idle = self.freed.wait(idle).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl Deref for Lease<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Present from `get` until `drop`.
        self.conn.as_ref().expect("a lease holds its connection")
    }
}

impl DerefMut for Lease<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("a lease holds its connection")
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            self.pool.freed.notify_one();
        }
    }
}

// ---- values in and out of rows ----

fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

fn ts(row: &Row<'_>, idx: &str) -> rusqlite::Result<Timestamp> {
    let v: i64 = row.get(idx)?;
    Timestamp::from_microsecond(v).map_err(|e| conversion(idx, e))
}

fn ts_opt(row: &Row<'_>, idx: &str) -> rusqlite::Result<Option<Timestamp>> {
    let v: Option<i64> = row.get(idx)?;
    v.map(|v| Timestamp::from_microsecond(v).map_err(|e| conversion(idx, e)))
        .transpose()
}

fn conversion(column: &str, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, Type::Integer, format!("{column}: {e}").into())
}

#[derive(Debug)]
struct Unknown(&'static str, String);
impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} `{}`", self.0, self.1)
    }
}
impl std::error::Error for Unknown {}

fn plus(t: Timestamp, d: Duration) -> i64 {
    let micros = i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
    us(t).saturating_add(micros)
}

const HANDOFF_COLUMNS: &str = "seq, id, workflow, object, record_id, status, workflow_version, \
     triggered_at, updated_at, done_at, missing, exceptions, orphaned";

fn handoff_row(row: &Row<'_>) -> rusqlite::Result<HandoffRow> {
    Ok(HandoffRow {
        id: row.get("id")?,
        workflow: row.get("workflow")?,
        object: row.get("object")?,
        record_id: row.get("record_id")?,
        status: row.get("status")?,
        workflow_version: row.get("workflow_version")?,
        triggered_at: ts(row, "triggered_at")?,
        updated_at: ts(row, "updated_at")?,
        done_at: ts_opt(row, "done_at")?,
        missing: row.get("missing")?,
        exceptions: row.get("exceptions")?,
        orphaned: row.get("orphaned")?,
    })
}

const ACTION_COLUMNS: &str = "seq, id, handoff_id, kind, payload, idempotency_key, created_at, \
     state, lease_until, attempts, next_attempt_at, last_error, delivered_at";

fn action_row(row: &Row<'_>) -> rusqlite::Result<ActionRow> {
    let kind: String = row.get("kind")?;
    let state: String = row.get("state")?;
    Ok(ActionRow {
        id: row.get("id")?,
        handoff_id: row.get("handoff_id")?,
        kind: ActionKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                Type::Text,
                Box::new(Unknown("action kind", kind.clone())),
            )
        })?,
        payload: row.get("payload")?,
        idempotency_key: row.get("idempotency_key")?,
        created_at: ts(row, "created_at")?,
        state: DeliveryState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                7,
                Type::Text,
                Box::new(Unknown("delivery state", state.clone())),
            )
        })?,
        lease_until: ts_opt(row, "lease_until")?,
        attempts: row.get("attempts")?,
        next_attempt_at: ts(row, "next_attempt_at")?,
        last_error: row.get("last_error")?,
        delivered_at: ts_opt(row, "delivered_at")?,
    })
}

const EVENT_COLUMNS: &str = "audit_id, source, event_id, content_hash, received_at, object, \
     record_id, raw_body, normalized, workflow_version, outcome, field_errors";

/// An event row; its `handoff_ids` are filled by [`with_handoff_ids`].
fn event_row(row: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        audit_id: row.get("audit_id")?,
        event: NewEvent {
            source: row.get("source")?,
            event_id: row.get("event_id")?,
            content_hash: row.get("content_hash")?,
            received_at: ts(row, "received_at")?,
            object: row.get("object")?,
            record_id: row.get("record_id")?,
            raw_body: row.get("raw_body")?,
            normalized: row.get("normalized")?,
            workflow_version: row.get("workflow_version")?,
            outcome: row.get("outcome")?,
            field_errors: row.get("field_errors")?,
            handoff_ids: Vec::new(),
        },
    })
}

fn with_handoff_ids(conn: &Connection, mut event: EventRow) -> rusqlite::Result<EventRow> {
    let mut stmt = conn.prepare_cached(
        "SELECT handoff_id FROM event_handoffs WHERE audit_id = ?1 ORDER BY rowid",
    )?;
    event.event.handoff_ids = stmt
        .query_map([event.audit_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(event)
}

fn record_row(row: &Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        object: row.get("object")?,
        record_id: row.get("record_id")?,
        state: row.get("state")?,
        workflow_version: row.get("workflow_version")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn status_change_row(row: &Row<'_>) -> rusqlite::Result<StatusChange> {
    let event: Option<AuditId> = row.get("cause_event")?;
    let person: Option<String> = row.get("cause_person")?;
    let cause = match (event, person) {
        (Some(id), _) => Cause::Event(id),
        (None, Some(p)) => Cause::Person(p),
        // The table's CHECK makes exactly one of them set.
        (None, None) => {
            return Err(rusqlite::Error::FromSqlConversionFailure(
                5,
                Type::Null,
                Box::new(Unknown("status change cause", "none".into())),
            ))
        }
    };
    Ok(StatusChange {
        handoff_id: row.get("handoff_id")?,
        from: row.get("from_status")?,
        to: row.get("to_status")?,
        at: ts(row, "at")?,
        cause,
        note: row.get("note")?,
    })
}

fn note_row(row: &Row<'_>) -> rusqlite::Result<NoteRow> {
    Ok(NoteRow {
        seq: row.get("seq")?,
        note: NewNote {
            handoff_id: row.get("handoff_id")?,
            kind: row.get("kind")?,
            who: row.get("who")?,
            at: ts(row, "at")?,
            text: row.get("text")?,
            data: row.get("data")?,
        },
    })
}

// ---- cursors ----

/// Cursors are the last row's `seq` with a letter naming the list, so a
/// cursor from one list is refused by another.
fn encode_cursor(list: char, seq: i64) -> String {
    format!("{list}{seq:x}")
}

fn decode_cursor(list: char, page: &PageRequest) -> Result<Option<i64>, StoreError> {
    let Some(cursor) = &page.cursor else {
        return Ok(None);
    };
    cursor
        .strip_prefix(list)
        .and_then(|hex| i64::from_str_radix(hex, 16).ok())
        .filter(|seq| *seq > 0)
        .map(Some)
        .ok_or_else(|| StoreError::BadCursor(cursor.clone()))
}

fn limit(page: &PageRequest) -> usize {
    page.limit.clamp(1, MAX_PAGE)
}

/// Turns `limit + 1` rows (newest first) into a page and its cursor.
fn paginate<T>(list: char, mut rows: Vec<(i64, T)>, limit: usize) -> Page<T> {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().map(|(seq, _)| encode_cursor(list, *seq))
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(|(_, item)| item).collect(),
        next,
    }
}

// ---- the write connection ----

struct WriteConn {
    conn: Connection,
    /// Told of every commit, to checkpoint off this thread.
    checkpointer: Arc<Checkpointer>,
    /// The log to sync before answering (`synchronous=FULL`), for the
    /// writer's sync thread.
    wal: Option<std::path::PathBuf>,
}

impl WriteConn {
    /// The write connection, tuned for the writer, with its checkpoint
    /// thread (also returned, for the store to stop).
    fn new(
        conn: Connection,
        path: &Path,
        path_str: &str,
        synchronous: Synchronous,
    ) -> Result<(WriteConn, Arc<Checkpointer>), StoreError> {
        // Every statement of an ingest job stays prepared: rusqlite keeps 16
        // by default, fewer than one event uses, so each batch evicted and
        // re-parsed some.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // A page cache sized for the hot right edges of the indexes (see
        // WRITER_CACHE_KIB for why not larger).
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)
            .map_err(db("setting the writer's page cache"))?;
        // A job that may fail alone runs in a savepoint (see `writer`), and
        // SQLite copies every page a job first touches into a statement
        // journal so the job can roll back alone. In a temp file those
        // copies were a pwrite each, about a fifth of the writer's time
        // under load; in memory they are a memcpy (a batch's journal is a
        // few hundred pages at most).
        conn.pragma_update(None, "temp_store", "MEMORY")
            .map_err(db("keeping statement journals in memory"))?;
        // Checkpoints run on their own thread; the writer's automatic one
        // stays as a backstop (see `checkpoint`).
        conn.pragma_update(None, "wal_autocheckpoint", checkpoint::BACKSTOP_PAGES)
            .map_err(db("setting the checkpoint threshold"))?;
        let checkpointer = Arc::new(Checkpointer::start(path, path_str)?);
        // SQLite names the log after the database's full path.
        let wal = synchronous.syncs_commits().then(|| {
            let db = conn
                .path()
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| path.to_path_buf());
            let mut name = db.into_os_string();
            name.push("-wal");
            std::path::PathBuf::from(name)
        });

        Ok((
            WriteConn {
                conn,
                checkpointer: Arc::clone(&checkpointer),
                wal,
            },
            checkpointer,
        ))
    }

    fn exec(&self, doing: &'static str, sql: &str) -> Result<(), StoreError> {
        self.conn.execute_batch(sql).map_err(db(doing))
    }

    /// One statement from the statement cache: the savepoint and commit
    /// statements run for every job, and `execute_batch` would parse them
    /// again each time.
    fn exec_cached(&self, doing: &'static str, sql: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(db(doing))
    }

    fn claim_due_inner(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> rusqlite::Result<Vec<ActionRow>> {
        let sql = format!(
            "UPDATE actions SET state = 'leased', lease_until = ?2, attempts = attempts + 1 \
             WHERE seq IN (SELECT seq FROM actions WHERE state = 'pending' \
                 AND next_attempt_at <= ?1 ORDER BY next_attempt_at, seq LIMIT ?3) \
             RETURNING {ACTION_COLUMNS}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query_map(params![us(now), plus(now, lease), limit], |r| {
                Ok((r.get::<_, i64>("seq")?, action_row(r)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        // RETURNING gives rows in no promised order.
        rows.sort_by_key(|(seq, a)| (a.next_attempt_at, *seq));
        Ok(rows.into_iter().map(|(_, a)| a).collect())
    }
}

impl Transactor for WriteConn {
    fn begin(&mut self) -> Result<(), StoreError> {
        // IMMEDIATE takes the write lock now, so a busy file fails here, once
        // for the batch, not in the middle of some job.
        self.exec_cached("starting a batch", "BEGIN IMMEDIATE")
    }
    fn savepoint(&mut self) -> Result<(), StoreError> {
        self.exec_cached("starting a job", "SAVEPOINT job")
    }
    fn release(&mut self) -> Result<(), StoreError> {
        self.exec_cached("finishing a job", "RELEASE job")
    }
    fn rollback_savepoint(&mut self) -> Result<(), StoreError> {
        self.exec("undoing a failed job", "ROLLBACK TO job; RELEASE job")
    }
    fn tx(&mut self) -> &mut dyn WriteTx {
        self
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        self.exec_cached("committing a batch", "COMMIT")?;
        self.checkpointer.committed();
        Ok(())
    }
    fn syncer(&mut self) -> Result<Option<Box<dyn Syncer>>, StoreError> {
        #[cfg(unix)]
        if let Some(wal) = self.wal.clone() {
            return Ok(Some(Box::new(wal_sync::WalSyncer::open(wal)?)));
        }
        Ok(None)
    }
    fn rollback(&mut self) {
        // After a failed COMMIT SQLite may already have rolled back; a
        // second ROLLBACK then fails harmlessly. What must not happen is a
        // transaction left open: every later BEGIN would fail.
        if let Err(e) = self.conn.execute_batch("ROLLBACK") {
            if !self.conn.is_autocommit() {
                tracing::error!(
                    error = %e,
                    "a batch could not be rolled back; writes fail until the server restarts"
                );
            }
        }
    }
}

impl WriteTx for WriteConn {
    fn processed(&mut self, key: &EventKey<'_>) -> Result<Option<AuditId>, StoreError> {
        let err = db("looking up an event");
        match key.event_id {
            Some(id) => self
                .conn
                .prepare_cached("SELECT audit_id FROM events WHERE source = ?1 AND event_id = ?2")
                .and_then(|mut s| {
                    s.query_row(params![key.source, id], |r| r.get(0))
                        .optional()
                }),
            None => self
                .conn
                .prepare_cached(
                    "SELECT audit_id FROM events \
                     WHERE source = ?1 AND content_hash = ?2 AND event_id IS NULL",
                )
                .and_then(|mut s| {
                    s.query_row(params![key.source, key.content_hash], |r| r.get(0))
                        .optional()
                }),
        }
        .map_err(err)
    }

    fn append_event(&mut self, e: &NewEvent) -> Result<Appended, StoreError> {
        let err = db("storing an event");
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO events (source, event_id, content_hash, received_at, object, \
                 record_id, raw_body, normalized, workflow_version, outcome, field_errors) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    e.source,
                    e.event_id,
                    e.content_hash,
                    us(e.received_at),
                    e.object,
                    e.record_id,
                    e.raw_body,
                    e.normalized,
                    e.workflow_version,
                    e.outcome,
                    e.field_errors,
                ])
            })
            .map_err(&err)?;
        if inserted == 0 {
            let key = EventKey {
                source: &e.source,
                event_id: e.event_id.as_deref(),
                content_hash: &e.content_hash,
            };
            return match self.processed(&key)? {
                Some(id) => Ok(Appended::Duplicate(id)),
                None => Err(StoreError::Backend {
                    doing: "storing an event",
                    reason: "the insert was ignored but no earlier copy exists".into(),
                }),
            };
        }
        let audit_id = self.conn.last_insert_rowid();
        let mut link = self
            .conn
            .prepare_cached(
                "INSERT INTO event_handoffs (audit_id, handoff_id) VALUES (?1, ?2) \
                 ON CONFLICT DO NOTHING",
            )
            .map_err(&err)?;
        for h in &e.handoff_ids {
            link.execute(params![audit_id, h]).map_err(&err)?;
        }
        Ok(Appended::New(audit_id))
    }

    fn load_record(
        &mut self,
        object: &str,
        record_id: &str,
    ) -> Result<Option<RecordRow>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT object, record_id, state, workflow_version, updated_at FROM records \
                 WHERE object = ?1 AND record_id = ?2",
            )
            .and_then(|mut s| {
                s.query_row(params![object, record_id], record_row)
                    .optional()
            })
            .map_err(db("loading a record"))
    }

    fn save_record(&mut self, r: &RecordRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO records (object, record_id, state, workflow_version, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (object, record_id) DO UPDATE SET \
                 state = excluded.state, workflow_version = excluded.workflow_version, \
                 updated_at = excluded.updated_at",
            )
            .and_then(|mut s| {
                s.execute(params![
                    r.object,
                    r.record_id,
                    r.state,
                    r.workflow_version,
                    us(r.updated_at)
                ])
            })
            .map(drop)
            .map_err(db("saving a record"))
    }

    fn load_instance(&mut self, id: &str) -> Result<Option<HandoffRow>, StoreError> {
        let sql = format!("SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = ?1");
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| s.query_row([id], handoff_row).optional())
            .map_err(db("loading a handoff"))
    }

    fn instances_of_record(
        &mut self,
        object: &str,
        record_id: &str,
    ) -> Result<Vec<HandoffRow>, StoreError> {
        let sql = format!(
            "SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE object = ?1 AND record_id = ?2 \
             ORDER BY seq"
        );
        self.conn
            .prepare_cached(&sql)
            .and_then(|mut s| {
                s.query_map(params![object, record_id], handoff_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(db("loading a record's handoffs"))
    }

    fn upsert_instance(&mut self, h: &HandoffRow) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO handoffs (id, workflow, object, record_id, status, \
                 workflow_version, triggered_at, updated_at, done_at, missing, exceptions, \
                 orphaned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT (id) DO UPDATE SET workflow = excluded.workflow, \
                 object = excluded.object, record_id = excluded.record_id, \
                 status = excluded.status, workflow_version = excluded.workflow_version, \
                 triggered_at = excluded.triggered_at, updated_at = excluded.updated_at, \
                 done_at = excluded.done_at, missing = excluded.missing, \
                 exceptions = excluded.exceptions, orphaned = excluded.orphaned",
            )
            .and_then(|mut s| {
                s.execute(params![
                    h.id,
                    h.workflow,
                    h.object,
                    h.record_id,
                    h.status,
                    h.workflow_version,
                    us(h.triggered_at),
                    us(h.updated_at),
                    h.done_at.map(us),
                    h.missing,
                    h.exceptions,
                    h.orphaned,
                ])
            })
            .map(drop)
            .map_err(db("saving a handoff"))
    }

    fn status_change(&mut self, c: &StatusChange) -> Result<(), StoreError> {
        let (event, person) = match &c.cause {
            Cause::Event(id) => (Some(*id), None),
            Cause::Person(p) => (None, Some(p.as_str())),
        };
        self.conn
            .prepare_cached(
                "INSERT INTO status_changes (handoff_id, from_status, to_status, at, \
                 cause_event, cause_person, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    c.handoff_id,
                    c.from,
                    c.to,
                    us(c.at),
                    event,
                    person,
                    c.note
                ])
            })
            .map(drop)
            .map_err(db("recording a status change"))
    }

    fn mark_orphans(&mut self, live: &[(&str, &str)]) -> Result<u64, StoreError> {
        let err = db("marking orphaned handoffs");
        let live = serde_json::to_string(live).map_err(|e| StoreError::Backend {
            doing: "marking orphaned handoffs",
            reason: e.to_string(),
        })?;
        self.conn
            .execute(
                "UPDATE handoffs SET orphaned = \
                 (status NOT IN ('done', 'withdrawn') AND NOT EXISTS \
                   (SELECT 1 FROM json_each(?1) \
                    WHERE json_extract(value, '$[0]') = workflow \
                      AND json_extract(value, '$[1]') = object))",
                [&live],
            )
            .map_err(&err)?;
        self.conn
            .query_row(
                "SELECT count(*) FROM handoffs WHERE orphaned = 1",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n.max(0) as u64)
            .map_err(err)
    }

    fn enqueue_action(&mut self, a: &NewAction) -> Result<bool, StoreError> {
        let state = match a.kind {
            ActionKind::EmailDraft => DeliveryState::Draft,
            _ => DeliveryState::Pending,
        };
        self.conn
            .prepare_cached(
                "INSERT INTO actions (id, handoff_id, kind, payload, idempotency_key, \
                 created_at, state, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?6) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| {
                s.execute(params![
                    a.id,
                    a.handoff_id,
                    a.kind.as_str(),
                    a.payload,
                    a.idempotency_key,
                    us(a.created_at),
                    state.as_str(),
                ])
            })
            .map(|n| n == 1)
            .map_err(db("adding an action to the outbox"))
    }

    fn edit_draft(&mut self, id: &str, payload: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("UPDATE actions SET payload = ?2 WHERE id = ?1 AND state = 'draft'")
            .and_then(|mut s| s.execute(params![id, payload]))
            .map(|n| n == 1)
            .map_err(db("editing a draft"))
    }

    fn approve_draft(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'pending', next_attempt_at = ?2 \
                 WHERE id = ?1 AND state = 'draft'",
            )
            .and_then(|mut s| s.execute(params![id, us(at)]))
            .map(|n| n == 1)
            .map_err(db("approving a draft"))
    }

    fn next_cursor(&mut self, team: &str) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO team_cursors (team, next) VALUES (?1, 1) \
                 ON CONFLICT (team) DO UPDATE SET next = next + 1 RETURNING next - 1",
            )
            .and_then(|mut s| s.query_row([team], |r| r.get::<_, i64>(0)))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(db("moving a team's round-robin cursor"))
    }

    fn open_tasks(&mut self, person: &str) -> Result<u32, StoreError> {
        self.conn
            .prepare_cached("SELECT count FROM open_tasks WHERE person = ?1")
            .and_then(|mut s| s.query_row([person], |r| r.get::<_, i64>(0)).optional())
            .map(|n| u32::try_from(n.unwrap_or(0)).unwrap_or(u32::MAX))
            .map_err(db("reading open tasks"))
    }

    fn adjust_open_tasks(&mut self, person: &str, delta: i64) -> Result<u32, StoreError> {
        // Clamped so `count + delta` cannot overflow into a REAL in SQLite.
        let delta = delta.clamp(-i64::from(u32::MAX), i64::from(u32::MAX));
        self.conn
            .prepare_cached(
                "INSERT INTO open_tasks (person, count) VALUES (?1, max(?2, 0)) \
                 ON CONFLICT (person) DO UPDATE SET count = max(count + ?2, 0) \
                 RETURNING count",
            )
            .and_then(|mut s| s.query_row(params![person, delta], |r| r.get::<_, i64>(0)))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
            .map_err(db("counting open tasks"))
    }

    fn save_workflow_version(&mut self, v: &WorkflowVersion) -> Result<bool, StoreError> {
        let err = db("keeping a workflow version");
        let inserted = self
            .conn
            .prepare_cached(
                "INSERT INTO workflow_versions (id, first_loaded_at) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .and_then(|mut s| s.execute(params![v.id, us(v.first_loaded_at)]))
            .map_err(&err)?;
        if inserted == 0 {
            return Ok(false);
        }
        let mut file = self
            .conn
            .prepare_cached(
                "INSERT INTO workflow_files (version_id, position, name, text) \
                 VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(&err)?;
        for (i, f) in v.files.iter().enumerate() {
            let position = i64::try_from(i).unwrap_or(i64::MAX);
            file.execute(params![v.id, position, f.name, f.text])
                .map_err(&err)?;
        }
        Ok(true)
    }

    fn add_note(&mut self, n: &NewNote) -> Result<i64, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO notes (handoff_id, kind, who, at, text, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    n.handoff_id,
                    n.kind,
                    n.who,
                    us(n.at),
                    n.text,
                    n.data
                ])
            })
            .map(|_| self.conn.last_insert_rowid())
            .map_err(db("adding a note"))
    }

    fn claim_due(
        &mut self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ActionRow>, StoreError> {
        self.claim_due_inner(now, lease, limit)
            .map_err(db("claiming due actions"))
    }

    fn mark_delivered(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'delivered', delivered_at = ?2, \
                 lease_until = NULL, last_error = NULL WHERE id = ?1 AND state = 'leased'",
            )
            .and_then(|mut s| s.execute(params![id, us(at)]))
            .map(|n| n == 1)
            .map_err(db("marking an action delivered"))
    }

    fn newer_set(&mut self, id: &str) -> Result<Option<NewerSet>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT b.id, b.state = 'delivered' FROM actions a \
                 JOIN handoffs ha ON ha.id = a.handoff_id \
                 JOIN actions b ON b.kind = 'set' AND b.seq > a.seq \
                   AND (b.state = 'delivered' OR b.state = 'pending' OR b.state = 'leased') \
                 JOIN handoffs hb ON hb.id = b.handoff_id \
                 WHERE a.id = ?1 AND a.kind = 'set' \
                 AND hb.object = ha.object AND hb.record_id = ha.record_id \
                 AND json_extract(b.payload, '$.field') = json_extract(a.payload, '$.field') \
                 ORDER BY b.seq DESC LIMIT 1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok(NewerSet {
                        id: r.get(0)?,
                        delivered: r.get(1)?,
                    })
                })
                .optional()
            })
            .map_err(db("looking for a newer set of the same field"))
    }

    fn schedule_retry(&mut self, id: &str, at: Timestamp, error: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'pending', next_attempt_at = ?2, last_error = ?3, \
                 lease_until = NULL WHERE id = ?1 AND state = 'leased'",
            )
            .and_then(|mut s| s.execute(params![id, us(at), error]))
            .map(|n| n == 1)
            .map_err(db("scheduling a retry"))
    }

    fn throttled(&mut self, id: &str, at: Timestamp, error: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'pending', next_attempt_at = ?2, last_error = ?3, \
                 lease_until = NULL, attempts = max(attempts - 1, 0) \
                 WHERE id = ?1 AND state = 'leased'",
            )
            .and_then(|mut s| s.execute(params![id, us(at), error]))
            .map(|n| n == 1)
            .map_err(db("putting back a rate-limited action"))
    }

    fn dead_letter(&mut self, id: &str, error: &str) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'dead', last_error = ?2, lease_until = NULL \
                 WHERE id = ?1 AND state = 'leased'",
            )
            .and_then(|mut s| s.execute(params![id, error]))
            .map(|n| n == 1)
            .map_err(db("dead-lettering an action"))
    }

    fn redrive(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'pending', next_attempt_at = ?2, attempts = 0, \
                 lease_until = NULL WHERE id = ?1 AND state = 'dead'",
            )
            .and_then(|mut s| s.execute(params![id, us(at)]))
            .map(|n| n == 1)
            .map_err(db("redriving an action"))
    }

    fn release_expired_leases(
        &mut self,
        now: Timestamp,
        retry_at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE actions SET state = 'pending', lease_until = NULL, \
                 next_attempt_at = MAX(next_attempt_at, ?2) \
                 WHERE state = 'leased' AND lease_until <= ?1",
            )
            .and_then(|mut s| s.execute([us(now), us(retry_at)]))
            .map(|n| n as u64)
            .map_err(db("releasing expired leases"))
    }

    // --- health ---
    fn record_escalation(
        &mut self,
        escalation: &crate::health::EscalationFact,
    ) -> Result<i64, StoreError> {
        health::record_escalation(&self.conn, escalation)
    }
    // --- crm ---
    fn crm_has_pending(&mut self, object: &str, record_id: &str) -> Result<bool, StoreError> {
        crm::has_pending(&self.conn, object, record_id)
    }
    fn crm_add_pending(&mut self, pending: &NewPending) -> Result<bool, StoreError> {
        crm::add_pending(&self.conn, pending)
    }
    fn crm_remove_pending(&mut self, seq: i64) -> Result<bool, StoreError> {
        crm::remove_pending(&self.conn, seq)
    }
    fn crm_pending_failed(
        &mut self,
        seq: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError> {
        crm::pending_failed(&self.conn, seq, next_attempt_at, error)
    }
    // --- delivery ---
    fn sink_deliveries(&mut self, action_id: &str) -> Result<Vec<SinkDelivery>, StoreError> {
        delivery::sink_deliveries(&self.conn, action_id).map_err(db("reading an action's sinks"))
    }

    fn sink_delivered(&mut self, d: &SinkDelivery) -> Result<bool, StoreError> {
        delivery::sink_delivered(&self.conn, d).map_err(db("recording a sink's delivery"))
    }
    fn start_session(&mut self, session: &SessionRow, keep: usize) -> Result<(), StoreError> {
        web::start_session(&self.conn, session, keep).map_err(db("keeping a web session"))
    }
    fn end_session(&mut self, key: &[u8; 32]) -> Result<bool, StoreError> {
        web::end_session(&self.conn, key).map_err(db("ending a web session"))
    }
}

// ---- reads ----

/// The handoffs list's query for `filter`, the page after `after`, and its
/// values in order.
fn handoffs_query(
    filter: &HandoffFilter,
    after: Option<i64>,
    limit: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    // Only the filters that are set go into the query: written as
    // `(?1 IS NULL OR status = ?1)`, one statement served every filter
    // and SQLite could use none of the indexes (`handoffs_by_status`,
    // `handoffs_by_workflow`), so a rare status walked the whole table.
    let mut clauses: Vec<&str> = Vec::new();
    let mut values: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(status) = &filter.status {
        clauses.push("status = ?");
        values.push(status.clone().into());
    }
    if let Some(workflow) = &filter.workflow {
        clauses.push("workflow = ?");
        values.push(workflow.clone().into());
    }
    if let Some(record_id) = &filter.record_id {
        clauses.push("record_id = ?");
        values.push(record_id.clone().into());
    }
    if let Some(orphaned) = filter.orphaned {
        clauses.push("orphaned = ?");
        values.push(i64::from(orphaned).into());
    }
    if let Some(after) = after {
        clauses.push("seq < ?");
        values.push(after.into());
    }
    if let Some(before) = filter.stuck_before {
        clauses.push("status IN ('paused', 'review', 'proceeded') AND triggered_at < ?");
        values.push(us(before).into());
    }
    values.push(((limit + 1) as i64).into());
    let where_clause = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    (
        format!("SELECT {HANDOFF_COLUMNS} FROM handoffs {where_clause} ORDER BY seq DESC LIMIT ?"),
        values,
    )
}

fn page_actions(
    conn: &Connection,
    where_clause: &str,
    after: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Vec<(i64, ActionRow)>> {
    let sql = format!(
        "SELECT {ACTION_COLUMNS} FROM actions WHERE {where_clause} \
         AND (?1 IS NULL OR seq < ?1) ORDER BY seq DESC LIMIT ?2"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(params![after, (limit + 1) as i64], |r| {
            Ok((r.get("seq")?, action_row(r)?))
        })?
        .collect();
    rows
}

impl Store for SqliteStore {
    fn submit(&self, job: Job) -> Receipt {
        self.writer.submit(job)
    }

    fn submit_replayable(&self, job: ReplayableJob) -> Receipt {
        self.writer.submit_replayable(job)
    }

    fn writer_counters(&self) -> WriterCounters {
        self.writer.counters()
    }

    fn list_handoffs(
        &self,
        filter: &HandoffFilter,
        page: &PageRequest,
    ) -> Result<Page<HandoffRow>, StoreError> {
        let after = decode_cursor('h', page)?;
        let limit = limit(page);
        let (sql, values) = handoffs_query(filter, after, limit);
        let rows = self.read("listing handoffs", |conn| {
            let mut stmt = conn.prepare_cached(&sql)?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                    Ok((r.get("seq")?, handoff_row(r)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>();
            rows
        })?;
        Ok(paginate('h', rows, limit))
    }

    fn handoff(&self, id: &str) -> Result<Option<HandoffDetail>, StoreError> {
        self.read_snapshot("reading a handoff", |conn| {
            let sql = format!("SELECT {HANDOFF_COLUMNS} FROM handoffs WHERE id = ?1");
            let Some(handoff) = conn
                .prepare_cached(&sql)?
                .query_row([id], handoff_row)
                .optional()?
            else {
                return Ok(None);
            };
            let history = conn
                .prepare_cached(
                    "SELECT handoff_id, from_status, to_status, at, cause_event, cause_person, \
                     note FROM status_changes WHERE handoff_id = ?1 ORDER BY seq",
                )?
                .query_map([id], status_change_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let record = conn
                .prepare_cached(
                    "SELECT object, record_id, state, workflow_version, updated_at \
                     FROM records WHERE object = ?1 AND record_id = ?2",
                )?
                .query_row(params![handoff.object, handoff.record_id], record_row)
                .optional()?;
            let sql = format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE audit_id IN \
                 (SELECT audit_id FROM event_handoffs WHERE handoff_id = ?1) ORDER BY audit_id"
            );
            let events = conn
                .prepare_cached(&sql)?
                .query_map([id], event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?
                .into_iter()
                .map(|e| with_handoff_ids(conn, e))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let sql =
                format!("SELECT {ACTION_COLUMNS} FROM actions WHERE handoff_id = ?1 ORDER BY seq");
            let actions = conn
                .prepare_cached(&sql)?
                .query_map([id], action_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let notes = conn
                .prepare_cached(
                    "SELECT seq, handoff_id, kind, who, at, text, data FROM notes \
                     WHERE handoff_id = ?1 ORDER BY seq",
                )?
                .query_map([id], note_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(HandoffDetail {
                handoff,
                history,
                record,
                events,
                actions,
                notes,
            }))
        })
    }

    fn event(&self, audit_id: AuditId) -> Result<Option<EventRow>, StoreError> {
        self.read_snapshot("reading an event", |conn| {
            let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE audit_id = ?1");
            conn.prepare_cached(&sql)?
                .query_row([audit_id], event_row)
                .optional()?
                .map(|e| with_handoff_ids(conn, e))
                .transpose()
        })
    }

    fn event_by_source_id(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError> {
        self.read_snapshot("reading an event", |conn| {
            let sql =
                format!("SELECT {EVENT_COLUMNS} FROM events WHERE source = ?1 AND event_id = ?2");
            conn.prepare_cached(&sql)?
                .query_row(params![source, event_id], event_row)
                .optional()?
                .map(|e| with_handoff_ids(conn, e))
                .transpose()
        })
    }

    fn list_tasks(&self, page: &PageRequest) -> Result<Page<ActionRow>, StoreError> {
        let after = decode_cursor('t', page)?;
        let limit = limit(page);
        let rows = self.read("listing tasks", |conn| {
            page_actions(conn, "kind = 'task'", after, limit)
        })?;
        Ok(paginate('t', rows, limit))
    }

    fn dead_letters(&self, page: &PageRequest) -> Result<Page<ActionRow>, StoreError> {
        let after = decode_cursor('d', page)?;
        let limit = limit(page);
        let rows = self.read("listing dead letters", |conn| {
            page_actions(conn, "state = 'dead'", after, limit)
        })?;
        Ok(paginate('d', rows, limit))
    }

    fn workflow_versions(&self) -> Result<Vec<WorkflowVersionSummary>, StoreError> {
        self.read("listing workflow versions", |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT v.id, v.first_loaded_at, f.name FROM workflow_versions v \
                 LEFT JOIN workflow_files f ON f.version_id = v.id \
                 ORDER BY v.first_loaded_at, v.id, f.position",
            )?;
            let mut rows = stmt.query([])?;
            let mut out: Vec<WorkflowVersionSummary> = Vec::new();
            while let Some(row) = rows.next()? {
                let id: String = row.get(0)?;
                let name: Option<String> = row.get(2)?;
                if out.last().is_none_or(|v| v.id != id) {
                    out.push(WorkflowVersionSummary {
                        id,
                        first_loaded_at: ts(row, "first_loaded_at")?,
                        file_names: Vec::new(),
                    });
                }
                if let (Some(name), Some(v)) = (name, out.last_mut()) {
                    v.file_names.push(name);
                }
            }
            Ok(out)
        })
    }

    fn workflow_version(&self, id: &str) -> Result<Option<WorkflowVersion>, StoreError> {
        self.read_snapshot("reading a workflow version", |conn| {
            let Some(first_loaded_at) = conn
                .prepare_cached("SELECT first_loaded_at FROM workflow_versions WHERE id = ?1")?
                .query_row([id], |r| ts(r, "first_loaded_at"))
                .optional()?
            else {
                return Ok(None);
            };
            let files = conn
                .prepare_cached(
                    "SELECT name, text FROM workflow_files WHERE version_id = ?1 \
                     ORDER BY position",
                )?
                .query_map([id], |r| {
                    Ok(WorkflowFile {
                        name: r.get(0)?,
                        text: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Some(WorkflowVersion {
                id: id.to_owned(),
                first_loaded_at,
                files,
            }))
        })
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        let (outbox, events_by_source, handoffs_by_status) =
            self.read_snapshot("counting for metrics", |conn| {
                let group = |sql: &str| -> rusqlite::Result<BTreeMap<String, u64>> {
                    conn.prepare_cached(sql)?
                        .query_map([], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
                        })?
                        .collect()
                };
                Ok((
                    group("SELECT state, count(*) FROM actions GROUP BY state")?,
                    group("SELECT source, count(*) FROM events GROUP BY source")?,
                    group("SELECT status, count(*) FROM handoffs GROUP BY status")?,
                ))
            })?;
        let mut by_state = BTreeMap::new();
        for (state, n) in outbox {
            let state = DeliveryState::parse(&state).ok_or(StoreError::Corrupt {
                what: "an outbox state",
                value: state,
            })?;
            by_state.insert(state, n);
        }
        Ok(StoreCounts {
            outbox: by_state,
            events_by_source,
            handoffs_by_status,
        })
    }

    // --- web ---
    fn drafts(&self, page: &PageRequest) -> Result<Page<ActionRow>, StoreError> {
        web::drafts(self, page)
    }

    fn open_counts(&self) -> Result<Vec<super::StatusCount>, StoreError> {
        web::open_counts(self)
    }

    fn session(&self, key: &[u8; 32], now: Timestamp) -> Result<Option<SessionRow>, StoreError> {
        self.read("reading a web session", |conn| web::session(conn, key, now))
    }

    // --- health ---
    fn health_rows(&self, since: Timestamp) -> Result<crate::health::HealthRows, StoreError> {
        self.read_snapshot("reading the health report's rows", |conn| {
            health::rows(conn, since)
        })
    }
    // --- crm ---
    fn crm_record(&self, object: &str, record_id: &str) -> Result<Option<RecordRow>, StoreError> {
        self.read("reading a record", |conn| {
            crm::record(conn, object, record_id)
        })
    }
    fn crm_due_pending(&self, now: Timestamp, limit: usize) -> Result<Vec<PendingRow>, StoreError> {
        self.read("listing pending CRM events", |conn| {
            crm::due(conn, now, limit)
        })
    }
    fn crm_pending_count(&self) -> Result<u64, StoreError> {
        self.read("counting pending CRM events", crm::count)
    }
    fn crm_pending_summary(&self) -> Result<PendingSummary, StoreError> {
        self.read("summing up pending CRM events", crm::summary)
    }
    // --- delivery ---
    fn action(&self, id: &str) -> Result<Option<ActionRow>, StoreError> {
        self.read("reading an action", |conn| delivery::action(conn, id))
    }

    fn sink_deliveries(&self, action_id: &str) -> Result<Vec<SinkDelivery>, StoreError> {
        self.read("reading an action's sinks", |conn| {
            delivery::sink_deliveries(conn, action_id)
        })
    }
    // --- load ---
    fn outbox_depth(&self) -> Result<u64, StoreError> {
        // Two ranges of the `actions_due` index (state first): the cost is
        // the depth, however many delivered rows the table holds.
        self.read("counting the outbox", |conn| {
            conn.prepare_cached(
                "SELECT count(*) FROM actions WHERE state IN ('pending', 'leased')",
            )?
            .query_row([], |r| r.get::<_, i64>(0))
        })
        .map(|n| u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    //! What only a SQLite file has: migrations, pragmas, version refusal.
    use super::*;

    #[test]
    fn migrations_validate() {
        migrations()
            .validate()
            .expect("the migrations apply cleanly");
    }

    /// Pages of `table` (or index) that hold the spill of rows too long
    /// for their b-tree page.
    fn overflow_pages(conn: &Connection, name: &str) -> i64 {
        conn.query_row(
            "SELECT count(*) FROM dbstat WHERE name = ?1 AND pagetype = 'overflow'",
            [name],
            |r| r.get(0),
        )
        .unwrap()
    }

    /// What SQLite plans for `sql`: the `detail` column of each step.
    fn plan(conn: &Connection, sql: &str, values: &[rusqlite::types::Value]) -> String {
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap()
            .query_map(rusqlite::params_from_iter(values.iter()), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .join("; ")
    }

    #[test]
    fn the_handoffs_list_reads_by_the_index_of_its_filter() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        SqliteStore::open(&path, SqliteOptions::default())
            .unwrap()
            .close();
        let conn = Connection::open(&path).unwrap();
        let filter = |f: HandoffFilter| {
            let (sql, values) = handoffs_query(&f, Some(100), 50);
            plan(&conn, &sql, &values)
        };
        let by_status = filter(HandoffFilter {
            status: Some("review".into()),
            ..Default::default()
        });
        assert!(by_status.contains("handoffs_by_status"), "{by_status}");
        let by_workflow = filter(HandoffFilter {
            workflow: Some("Sales to Delivery".into()),
            ..Default::default()
        });
        assert!(
            by_workflow.contains("handoffs_by_workflow"),
            "{by_workflow}"
        );
        // No filter: newest first by the table's own order, no sort.
        let all = filter(HandoffFilter::default());
        assert!(!all.contains("TEMP B-TREE"), "{all}");
    }

    #[test]
    fn the_dashboard_counts_open_handoffs_by_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("counts.db");
        SqliteStore::open(&path, SqliteOptions::default())
            .unwrap()
            .close();
        let conn = Connection::open(&path).unwrap();
        let plan = plan(&conn, web::OPEN_COUNTS, &[]);
        assert!(plan.contains("handoffs_by_status"), "{plan}");
        let rows = [
            ("S", "proceeded"),
            ("S", "proceeded"),
            ("S", "review"),
            ("S", "done"),
            ("S", "withdrawn"),
            ("M", "paused"),
            ("M", "done"),
        ];
        for (i, (workflow, status)) in rows.iter().enumerate() {
            conn.execute(
                "INSERT INTO handoffs (id, workflow, object, record_id, status, \
                 triggered_at, updated_at) VALUES (?1, ?2, 'deal', ?1, ?3, 0, 0)",
                rusqlite::params![format!("h-{i}"), workflow, status],
            )
            .unwrap();
        }
        drop(conn);
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let mut counts: Vec<(String, String, u64)> = store
            .open_counts()
            .unwrap()
            .into_iter()
            .map(|c| (c.workflow, c.status, c.count))
            .collect();
        counts.sort();
        let want = |w: &str, s: &str, n| (w.to_string(), s.to_string(), n);
        assert_eq!(
            counts,
            [
                want("M", "paused", 1),
                want("S", "proceeded", 2),
                want("S", "review", 1)
            ]
        );
        store.close();
    }

    #[test]
    fn a_version_7_database_keeps_its_records_on_their_own_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v7.db");
        // About the size of a closed deal's state (1.4 KB).
        fn state(i: usize) -> String {
            format!(
                r#"{{"snapshot":{{"name":"Deal {i}","notes":"{}"}}}}"#,
                "x".repeat(1400)
            )
        }
        let insert =
            "INSERT INTO records (object, record_id, state, workflow_version, updated_at) \
                      VALUES ('deal', ?1, ?2, 'v1', ?3)";
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 7).unwrap();
            for i in 0..50 {
                conn.execute(
                    insert,
                    rusqlite::params![format!("D-{i}"), state(i), i as i64],
                )
                .unwrap();
            }
            // What the step is for: version 7 spilled every such row.
            assert_eq!(overflow_pages(&conn, "records"), 50);
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        crate::runtime::store::StoreExt::write_blocking(&store, |tx| {
            let kept = tx
                .load_record("deal", "D-7")?
                .expect("the version-7 row is kept");
            assert_eq!(
                (kept.state, kept.workflow_version.as_deref()),
                (state(7), Some("v1"))
            );
            // Saving a record again replaces its row: the key is still unique.
            tx.save_record(&RecordRow {
                state: state(1000),
                updated_at: Timestamp::from_microsecond(99).unwrap(),
                ..kept
            })?;
            for i in 50..100 {
                tx.save_record(&RecordRow {
                    object: "deal".into(),
                    record_id: format!("D-{i}"),
                    state: state(i),
                    workflow_version: None,
                    updated_at: Timestamp::UNIX_EPOCH,
                })?;
            }
            Ok(())
        })
        .unwrap();
        store.close();
        let conn = Connection::open(&path).unwrap();
        let (rows, of_d7): (i64, String) = conn
            .query_row(
                "SELECT count(*), (SELECT state FROM records WHERE record_id = 'D-7') FROM records",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((rows, of_d7), (100, state(1000)));
        assert_eq!(
            overflow_pages(&conn, "records"),
            0,
            "copied and new rows fit their pages"
        );
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_schema WHERE name = 'records'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(
            !sql.contains("WITHOUT ROWID") && sql.contains("UNIQUE (object, record_id)"),
            "{sql}"
        );
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_version_1_database_is_upgraded_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let mut conn = Connection::open(&path).unwrap();
            migrations().to_version(&mut conn, 1).unwrap();
            conn.execute(
                "INSERT INTO records (object, record_id, state, updated_at) \
                 VALUES ('deal', 'D-1', '{\"stage\":\"Won\"}', 0)",
                [],
            )
            .unwrap();
            let v: i64 = conn
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .unwrap();
            assert_eq!(v, 1);
        }
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let record = crate::runtime::store::StoreExt::write_blocking(&store, |tx| {
            // A table from version 2 answers too.
            assert_eq!(tx.next_cursor("ops")?, 0);
            tx.load_record("deal", "D-1")
        })
        .unwrap()
        .expect("the version-1 row is still there");
        assert_eq!(record.state, r#"{"stage":"Won"}"#);
        store.close();
        let conn = Connection::open(&path).unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v as usize, SCHEMA_VERSION);
    }

    /// The functions an INSERT into `table` runs, from its compiled program.
    fn functions_run_by_insert(conn: &Connection, table: &str, columns: &str) -> Vec<String> {
        let n = columns.split(',').count();
        let values = (1..=n)
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut explain = conn
            .prepare(&format!(
                "EXPLAIN INSERT INTO {table} ({columns}) VALUES ({values})"
            ))
            .unwrap();
        let rows = explain
            .query_map(
                rusqlite::params_from_iter(std::iter::repeat_n(rusqlite::types::Null, n)),
                |r| {
                    let p4 = r.get_ref(5)?.as_str().ok().map(str::to_owned);
                    Ok((r.get::<_, String>(1)?, p4))
                },
            )
            .unwrap();
        rows.map(Result::unwrap)
            .filter(|(opcode, _)| opcode == "Function" || opcode == "PureFunc")
            .filter_map(|(_, p4)| p4)
            .collect()
    }

    #[test]
    fn the_connection_that_upgrades_runs_the_checks_of_the_new_schema() {
        // The writer is the connection that ran migration 7: had it kept the
        // table definitions it parsed before, it would go on parsing every
        // stored JSON value that the migration stopped checking.
        let events = "source, event_id, content_hash, received_at, object, record_id, \
                      raw_body, normalized, workflow_version, outcome, field_errors";
        let dir = tempfile::tempdir().unwrap();
        for from in [0, 6] {
            let path = dir.path().join(format!("from-{from}.db"));
            let mut conn = Connection::open(&path).unwrap();
            if from > 0 {
                migrations().to_version(&mut conn, from).unwrap();
                // The probe sees the check while it is there.
                let run = functions_run_by_insert(&conn, "events", events);
                assert!(run.iter().any(|f| f.starts_with("json_valid")), "{run:?}");
            }
            upgrade(&mut conn, "test").unwrap();
            let run = functions_run_by_insert(&conn, "events", events);
            assert!(
                !run.iter().any(|f| f.starts_with("json_valid")),
                "from version {from}: {run:?}"
            );
        }
    }

    /// Two threads open the store at `path` at the same instant; both must.
    fn two_open_at_once(path: &std::path::Path, round: usize) {
        let start = std::sync::Arc::new(std::sync::Barrier::new(2));
        let openers: Vec<_> = (0..2)
            .map(|_| {
                let (path, start) = (path.to_path_buf(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    SqliteStore::open(&path, SqliteOptions::default()).map(|s| s.close())
                })
            })
            .collect();
        for opener in openers {
            let opened = opener.join().unwrap();
            assert!(opened.is_ok(), "round {round}: {opened:?}");
        }
    }

    #[test]
    fn two_processes_upgrading_a_file_at_once_both_succeed() {
        // Two openers race on a version-6 file (as `handoff health` may
        // when a new release starts): both read version 6, one migrates,
        // the other then finds the edits made. Twenty rounds, each a file.
        let dir = tempfile::tempdir().unwrap();
        for round in 0..20 {
            let path = dir.path().join(format!("race-{round}.db"));
            {
                let mut conn = Connection::open(&path).unwrap();
                let mode: String = conn
                    .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
                    .unwrap();
                assert_eq!(mode, "wal");
                migrations().to_version(&mut conn, 6).unwrap();
            }
            two_open_at_once(&path, round);
        }
    }

    #[test]
    fn two_processes_creating_a_file_at_once_both_succeed() {
        // Both find no file, create it and switch it to WAL: each holds a
        // shared lock and asks for an exclusive one, and SQLite answers one
        // of them "database is locked" at once (no busy timeout waits out
        // that deadlock). Rounds, each a new file.
        let dir = tempfile::tempdir().unwrap();
        for round in 0..100 {
            let path = dir.path().join(format!("new-{round}.db"));
            two_open_at_once(&path, round);
        }
    }

    #[test]
    fn a_database_from_a_newer_handoff_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION as i64 + 1)
                .unwrap();
        }
        let err = SqliteStore::open(&path, SqliteOptions::default()).unwrap_err();
        assert!(
            matches!(err, StoreError::TooNew { found, known, .. }
                if found == SCHEMA_VERSION + 1 && known == SCHEMA_VERSION),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(&format!("schema version {}", SCHEMA_VERSION + 1)),
            "{text}"
        );
        assert!(text.contains(&format!("up to {SCHEMA_VERSION}")), "{text}");
        let help = miette::Diagnostic::help(&err).unwrap().to_string();
        assert!(
            help.contains("upgrade handoff") && help.contains("--db"),
            "{help}"
        );
    }

    #[test]
    fn pragmas_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        for sync in [Synchronous::Full, Synchronous::Normal] {
            let path = dir.path().join(format!("{sync:?}.db"));
            let options = SqliteOptions {
                synchronous: sync,
                ..SqliteOptions::default()
            };
            let store = SqliteStore::open(&path, options).unwrap();
            let p = store.pragmas();
            assert_eq!(p.journal_mode, "wal");
            assert_eq!(p.synchronous, sync);
            assert!(p.foreign_keys);
            // WAL is a property of the file: a fresh connection sees it.
            let conn = Connection::open(&path).unwrap();
            let mode: String = conn
                .pragma_query_value(None, "journal_mode", |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }

    #[test]
    fn full_syncs_the_databases_own_log_outside_commit() {
        let dir = tempfile::tempdir().unwrap();
        for sync in [Synchronous::Full, Synchronous::Normal] {
            let path = dir.path().join(format!("{sync:?}.db"));
            let mut conn = Connection::open(&path).unwrap();
            let options = SqliteOptions {
                synchronous: sync,
                ..SqliteOptions::default()
            };
            set_write_pragmas(&conn, "test", &options).unwrap();
            upgrade(&mut conn, "test").unwrap();
            // COMMIT itself never waits for the disk (NORMAL)...
            let level: i64 = conn
                .pragma_query_value(None, "synchronous", |r| r.get(0))
                .unwrap();
            assert_eq!(level, 1);
            let (mut write, checkpointer) = WriteConn::new(conn, &path, "test", sync).unwrap();
            // ...so with FULL the writer gets a syncer for the log SQLite
            // writes, and syncs it before answering.
            match sync {
                Synchronous::Full => {
                    let wal = write.wal.clone().unwrap();
                    assert_eq!(wal, path.canonicalize().unwrap().with_extension("db-wal"));
                    assert!(wal.exists(), "{}", wal.display());
                    let mut syncer = write.syncer().unwrap().expect("a syncer");
                    syncer.sync().unwrap();
                }
                Synchronous::Normal => assert!(write.syncer().unwrap().is_none()),
            }
            checkpointer.stop();
        }
    }

    #[test]
    fn full_answers_and_reads_after_its_own_sync_also_on_a_reopened_file() {
        use crate::runtime::store::{RecordRow, Store};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.db");
        let save = |store: &SqliteStore, id: &str| {
            let id = id.to_owned();
            store
                .submit(Box::new(move |tx| {
                    tx.save_record(&RecordRow {
                        object: "deal".into(),
                        record_id: id.clone(),
                        state: "{}".into(),
                        workflow_version: None,
                        updated_at: jiff::Timestamp::UNIX_EPOCH,
                    })?;
                    Ok(Box::new(()))
                }))
                .wait_blocking()
                .unwrap();
        };
        // Twice: the second open finds the file its first server closed
        // (and whose log SQLite deleted on that close).
        for round in 1..=2 {
            let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
            save(&store, &format!("d-{round}"));
            assert!(store.writer_counters().syncs >= 1);
            let d = store
                .writer
                .durability()
                .expect("FULL syncs on its own thread");
            assert!(!d.unsettled(), "answered, so synced");
            assert!(store.crm_record("deal", "d-1").unwrap().is_some());
            store.close();
        }
        let normal = SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open(dir.path().join("normal.db"), normal).unwrap();
        save(&store, "n");
        assert_eq!(store.writer_counters().syncs, 0);
        assert!(store.writer.durability().is_none());
    }

    #[test]
    fn a_database_that_cannot_use_wal_is_refused() {
        // An in-memory database keeps journal_mode=memory whatever is asked.
        let err = SqliteStore::open(":memory:", SqliteOptions::default()).unwrap_err();
        assert!(
            matches!(&err, StoreError::Pragma { pragma: "journal_mode", got, .. } if got == "memory"),
            "{err:?}"
        );
    }
}
