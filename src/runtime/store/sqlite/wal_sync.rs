//! The commit's fsync, made on the writer's sync thread (see
//! [`crate::runtime::writer::Syncer`]) instead of inside COMMIT.
//!
//! With `synchronous=FULL` SQLite fsyncs the log at every COMMIT, and the
//! writer thread waits through it. The write connection runs at NORMAL
//! instead, which in WAL mode differs from FULL only there: it still syncs
//! the log before every checkpoint, the database after, and a restarted
//! log's header before any frame follows it. [`WalSyncer`] then makes the
//! missing sync itself: `fdatasync` of the `-wal` file, the call SQLite
//! makes, through a descriptor of its own. Linux syncs a file's pages
//! whichever descriptor wrote them, and the writer answers a batch only
//! after a sync that began once the batch had committed, so what is
//! acknowledged is on the disk exactly as with FULL.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::runtime::store::StoreError;
use crate::runtime::writer::Syncer;

/// Syncs one database's `-wal` file.
pub(super) struct WalSyncer {
    path: PathBuf,
    /// The open log and its (device, inode), opened at the first sync.
    file: Option<(File, (u64, u64))>,
}

impl WalSyncer {
    /// A syncer for the log at `path` (`<database>-wal`).
    pub(super) fn new(path: PathBuf) -> WalSyncer {
        WalSyncer { path, file: None }
    }

    fn error(&self, doing: &str, e: std::io::Error) -> StoreError {
        StoreError::Sync {
            path: self.path.display().to_string(),
            reason: format!("{doing}: {e}"),
        }
    }
}

impl Syncer for WalSyncer {
    fn sync(&mut self) -> Result<(), StoreError> {
        // The log the connection writes is the file at `path` now. SQLite
        // deletes and recreates it only when its last connection closes,
        // which the writer's never does while it runs; checking costs a
        // stat and makes sure a stale descriptor is never what vouches for
        // a commit.
        let on_disk = std::fs::metadata(&self.path).map_err(|e| self.error("reading", e))?;
        let id = (on_disk.dev(), on_disk.ino());
        let file = match &self.file {
            Some((file, open_id)) if *open_id == id => file,
            _ => {
                // Written only through SQLite's descriptor; ours is for the
                // sync (read-write, since some systems refuse to sync a
                // read-only descriptor).
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.path)
                    .map_err(|e| self.error("opening", e))?;
                &self.file.insert((file, id)).0
            }
        };
        file.sync_data().map_err(|e| self.error("syncing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_log_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.db-wal");
        let err = WalSyncer::new(path.clone()).sync().unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(matches!(err, StoreError::Sync { .. }), "{err:?}");
    }

    #[test]
    fn a_log_replaced_on_disk_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("handoff.db-wal");
        std::fs::write(&path, b"first").unwrap();
        let mut syncer = WalSyncer::new(path.clone());
        syncer.sync().unwrap();
        let first = syncer.file.as_ref().map(|(_, id)| *id).unwrap();
        // A new file renamed over the old one: a new inode at the same path.
        let other = dir.path().join("new");
        std::fs::write(&other, b"second").unwrap();
        std::fs::rename(&other, &path).unwrap();
        syncer.sync().unwrap();
        let second = syncer.file.as_ref().map(|(_, id)| *id).unwrap();
        assert_ne!(first, second);
        let on_disk = std::fs::metadata(&path).unwrap();
        assert_eq!(second, (on_disk.dev(), on_disk.ino()));
    }
}
