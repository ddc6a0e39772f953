//! Replacing a file the user owns (a formatted `.handoff` file, a `run`
//! state file) so that no crash leaves it half written or empty.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Writes `bytes` to a temporary file beside `path`, syncs it, keeps the
/// original's permissions, and renames it over `path`.
///
/// A symlink is followed: its target is replaced, and the link stays a
/// link (a workflow folder may link files shared with another project).
/// The temporary name appends to the whole file name, so it cannot be a
/// file of the user's (`run.json` -> `run.json.handoff-tmp`).
pub(super) fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let target = match std::fs::canonicalize(path) {
        Ok(real) => real,
        // Not there yet: written where it was asked for.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".handoff-tmp");
    let tmp: PathBuf = target.with_file_name(tmp_name);
    let written = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        if let Ok(meta) = std::fs::metadata(&target) {
            // A read-only file stays read-only.
            file.set_permissions(meta.permissions())?;
        }
        // On the disk before the rename makes it the file: else a power
        // cut could leave the new name pointing at nothing written.
        file.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::replace;

    #[test]
    fn a_file_is_replaced_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        // A file of the user's that a `with_extension("tmp")` would take.
        std::fs::write(dir.path().join("run.tmp"), "mine").unwrap();
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("run.tmp")).unwrap(),
            "mine"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_stays_a_link_and_its_target_is_replaced() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared.handoff");
        std::fs::write(&shared, "old").unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.handoff");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        replace(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&shared).unwrap(), "new");
        let mode = std::fs::metadata(&shared).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
