//! WAL checkpoints on a thread of their own, so that copying the log into
//! the database file is not paid for inside the writer's commits.
//!
//! SQLite checkpoints automatically inside the COMMIT that takes the log
//! past a threshold (1000 pages by default): that commit, and every request
//! waiting on its batch, then waits for the copy and the database file's
//! fsync. Under load that is every few batches, and it is what the p99
//! latency sees. Instead, after commits, this thread runs PASSIVE
//! checkpoints on its own connection (at most one per [`INTERVAL`]); they
//! never block the writer or a reader. The write connection keeps a larger
//! automatic threshold ([`BACKSTOP_PAGES`]) as a backstop: by then this
//! thread has copied nearly everything, so the writer's own checkpoint is
//! short, and once everything is copied the log starts over from its
//! beginning instead of growing.
//!
//! Durability does not depend on checkpoints: a commit is durable when its
//! log frames are synced, before any checkpoint.

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::Connection;

use super::db;
use crate::runtime::store::StoreError;

/// The least time between two background checkpoints: each syncs the
/// database file, which competes with the writer's log syncs for the disk,
/// and copies again a page changed since the last one. Shorter keeps the
/// log the writer's own checkpoint finds uncopied small, and that
/// checkpoint is what a slow request waits behind: under load
/// (`benches/load.sh`, 32 connections, FULL) 10 ms against 50 ms took the
/// p99 from about 10 to 7–8 ms with CRM-like traffic (same events/s) and
/// from about 18 to 14 ms with every event a close (events/s 6 % lower
/// on average, within the runs' spread), 20 ms gave 8.5–9 ms.
pub(super) const INTERVAL: Duration = Duration::from_millis(10);

/// The write connection's own automatic checkpoint threshold, in pages
/// (4 KiB each): the log's size at which the writer checkpoints itself.
pub(super) const BACKSTOP_PAGES: i64 = 4000;

#[derive(Default)]
struct Pending {
    commits: u64,
    stop: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
}

/// The checkpoint thread. Dropping it stops the thread.
pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Opens its own connection to `path` and starts the thread.
    pub(super) fn start(path: &Path, path_str: &str) -> Result<Checkpointer, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path_str.to_owned(),
            reason,
        };
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        // A checkpoint syncs the log before copying it and the database
        // after, unless its connection runs at OFF. The log is only reused
        // from its start once a checkpoint has copied all of it, so that
        // sync is what keeps acknowledged commits (synced into the log, see
        // `wal_sync`) safe when their frames are overwritten: set, not left
        // to the build's default.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| open_err(e.to_string()))?;
        let shared = Arc::new(Shared::default());
        let theirs = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("handoff-store-checkpoint".into())
            .spawn(move || run(&conn, &theirs))
            .map_err(|e| open_err(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Tells the thread a batch committed (cheap: the writer calls it after
    /// every commit).
    pub(super) fn committed(&self) {
        let mut p = self
            .shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        p.commits += 1;
        if p.commits == 1 {
            self.shared.wake.notify_one();
        }
    }

    /// Stops the thread and waits for it.
    pub(super) fn stop(&self) {
        self.shared
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stop = true;
        self.shared.wake.notify_one();
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            // The thread only checkpoints and logs; a panic there has
            // nothing to hand back.
            let _ = t.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, shared: &Shared) {
    loop {
        {
            let mut p = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
            while p.commits == 0 && !p.stop {
                p = shared.wake.wait(p).unwrap_or_else(|p| p.into_inner());
            }
            if p.stop {
                return;
            }
            p.commits = 0;
        }
        if let Err(e) = checkpoint(conn) {
            tracing::warn!(error = %e, "a background WAL checkpoint failed; the writer's own checkpoint takes over");
        }
        // Rate limit, but wake at once to stop.
        let p = shared.pending.lock().unwrap_or_else(|p| p.into_inner());
        let _ = shared
            .wake
            .wait_timeout_while(p, INTERVAL, |p| !p.stop)
            .unwrap_or_else(|p| p.into_inner());
    }
}

/// One PASSIVE checkpoint: copies what it can without waiting for anyone.
fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        .map_err(db("checkpointing the log"))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use jiff::Timestamp;

    use crate::runtime::store::{RecordRow, SqliteOptions, SqliteStore, StoreExt};

    /// Pages reach the database file only through a checkpoint; the
    /// writer's own one waits for [`super::BACKSTOP_PAGES`], far more than
    /// this test writes, so a growing file means this thread copied them.
    #[test]
    fn commits_are_copied_into_the_database_file_off_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let store = SqliteStore::open(&path, SqliteOptions::default()).unwrap();
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let before = size();
        // About 1 MiB (some 250 pages) in 8 commits.
        for i in 0..8 {
            let row = RecordRow {
                object: "deal".into(),
                record_id: format!("D-{i}"),
                state: format!("{{\"notes\":\"{}\"}}", "x".repeat(128 * 1024)),
                workflow_version: None,
                updated_at: Timestamp::UNIX_EPOCH,
            };
            store
                .write_blocking(move |tx| tx.save_record(&row))
                .unwrap();
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(20);
        while size() < before + 1024 * 1024 {
            assert!(
                Instant::now() < deadline,
                "the database file stayed at {} bytes (from {before})",
                size()
            );
            // Polled: the file's size is the condition, bounded above.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        store.close();
        // Everything is still there, read through a fresh connection.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 8);
    }
}
