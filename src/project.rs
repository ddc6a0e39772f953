//! Finding and reading `.handoff` files.
//!
//! A project is every `*.handoff` file under the paths given (a directory is
//! searched recursively; a file is taken as it is). Problems reading files are
//! typed [`LoadError`]s, kept apart from diagnostics about a file's contents:
//! the CLI exits 2 for them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::SourceFile;

/// Why a path could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LoadError {
    /// The path does not exist.
    #[error("`{0}` does not exist")]
    #[diagnostic(
        code(io::not_found),
        help("check the path; by default handoff looks in `workflows/`")
    )]
    NotFound(String),
    /// A directory held no `.handoff` file.
    #[error("no `.handoff` files under `{0}`")]
    #[diagnostic(code(io::empty), help("workflow files must end in `.handoff`"))]
    NoFiles(String),
    /// The file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(io::read))]
    Read { path: String, reason: String },
    /// The file is not UTF-8 text.
    #[error("`{path}` is not UTF-8 text: invalid byte at line {line}, column {column}")]
    #[diagnostic(code(io::encoding), help("save the file as UTF-8"))]
    NotUtf8 {
        path: String,
        line: usize,
        column: usize,
    },
}

/// The result of loading paths: the files that could be read, and a
/// [`LoadError`] for each that could not.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: Vec<Arc<SourceFile>>,
    pub errors: Vec<LoadError>,
}

/// Lists the `.handoff` files under `paths`, in a stable order (sorted within
/// each directory), each once.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<LoadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if !path.exists() {
            errors.push(LoadError::NotFound(display(path)));
        } else if path.is_dir() {
            let before = files.len();
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                match entry {
                    Ok(e) if e.file_type().is_file() && is_handoff(e.path()) => {
                        files.push(e.into_path())
                    }
                    Ok(_) => {}
                    Err(err) => errors.push(LoadError::Read {
                        path: err.path().map_or_else(|| display(path), display),
                        reason: err
                            .io_error()
                            .map_or_else(|| err.to_string(), |e| e.to_string()),
                    }),
                }
            }
            if files.len() == before {
                errors.push(LoadError::NoFiles(display(path)));
            }
        } else {
            files.push(path.clone());
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    (files, errors)
}

/// Reads every `.handoff` file under `paths`.
pub fn load(paths: &[PathBuf]) -> Loaded {
    let (files, mut errors) = discover(paths);
    let mut sources = Vec::new();
    for f in files {
        match read(&f) {
            Ok(s) => sources.push(s),
            Err(e) => errors.push(e),
        }
    }
    Loaded { sources, errors }
}

/// Reads one file as UTF-8.
pub fn read(path: &Path) -> Result<Arc<SourceFile>, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::Read {
        path: display(path),
        reason: e.to_string(),
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(display(path), text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.as_bytes()[..valid]);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            Err(LoadError::NotUtf8 {
                path: display(path),
                line,
                column,
            })
        }
    }
}

fn is_handoff(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "handoff")
}

/// A path as shown in messages: as given, with `/` separators.
pub fn display(p: &Path) -> String {
    p.display().to_string()
}
