//! The commit's fsync, made on the writer's sync thread (see
//! [`crate::runtime::writer::Syncer`]) instead of inside COMMIT.
//!
//! With `synchronous=FULL` SQLite fsyncs the log at every COMMIT, and the
//! writer thread waits through it. The write connection runs at NORMAL
//! instead, which in WAL mode differs from FULL only there: it still syncs
//! the log before every checkpoint, the database after, and a restarted
//! log's header before any frame follows it. [`WalSyncer`] then makes the
//! missing sync itself, on a descriptor of its own for the `-wal` file:
//! Linux syncs a file's pages whichever descriptor wrote them. It uses
//! `fdatasync`, which covers the data and the file's size (this build of
//! SQLite calls `fsync`, which also flushes the timestamps). The writer
//! answers a batch only after a sync that began once the batch had
//! committed, so what is acknowledged is on the disk exactly as with FULL.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::runtime::store::StoreError;
use crate::runtime::writer::Syncer;

/// Syncs one database's `-wal` file.
pub(super) struct WalSyncer {
    path: PathBuf,
    file: File,
    /// The open file's (device, inode).
    id: (u64, u64),
}

impl WalSyncer {
    /// Opens the log at `path` (`<database>-wal`). It exists once the write
    /// connection has opened the database in WAL mode.
    pub(super) fn open(path: PathBuf) -> Result<WalSyncer, StoreError> {
        // Written only through SQLite's descriptor; ours is for the sync
        // (read-write, since some systems refuse to sync a read-only
        // descriptor). SQLite takes no locks on the log file, so opening
        // and closing another descriptor of it cannot drop any.
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .and_then(|file| file.metadata().map(|m| (file, (m.dev(), m.ino()))));
        let (file, id) = opened.map_err(|e| sync_error(&path, "opening", e))?;
        // FULL syncs the log's folder once per connection, so that the
        // log's own name survives a power cut; NORMAL does it only when it
        // starts a log, which a log left by an earlier run skips. Once here
        // covers both.
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            File::open(folder)
                .and_then(|d| d.sync_all())
                .map_err(|e| sync_error(&path, "syncing its folder", e))?;
        }
        Ok(WalSyncer { path, file, id })
    }
}

fn sync_error(path: &std::path::Path, doing: &str, e: std::io::Error) -> StoreError {
    StoreError::Sync {
        path: path.display().to_string(),
        reason: format!("{doing}: {e}"),
    }
}

impl Syncer for WalSyncer {
    fn sync(&mut self) -> Result<(), StoreError> {
        // SQLite reuses, truncates and grows the log in place while a
        // connection has it open; only something outside SQLite can put
        // another file at its path. SQLite would go on writing the file it
        // has open, and syncing either one would then vouch for nothing:
        // refuse, which stops acknowledgements until a restart.
        let at_path = std::fs::metadata(&self.path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|e| sync_error(&self.path, "reading", e))?;
        if at_path != self.id {
            return Err(sync_error(
                &self.path,
                "checking",
                std::io::Error::other(
                    "another file was put in the log's place while the server had it open",
                ),
            ));
        }
        self.file
            .sync_data()
            .map_err(|e| sync_error(&self.path, "syncing", e))
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_log_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.db-wal");
        let err = WalSyncer::open(path.clone()).err().expect("no log to open");
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(matches!(err, StoreError::Sync { .. }), "{err:?}");
    }

    #[test]
    fn a_log_replaced_on_disk_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.db-wal");
        std::fs::write(&path, b"first").unwrap();
        let mut syncer = WalSyncer::open(path.clone()).unwrap();
        syncer.sync().unwrap();
        // A new file renamed over the old one: a new inode at the same path.
        let other = dir.path().join("new");
        std::fs::write(&other, b"second").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let err = syncer.sync().unwrap_err();
        assert!(err.to_string().contains("another file"), "{err}");
        // And a log deleted from under it.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(syncer.sync(), Err(StoreError::Sync { .. })));
    }
}
