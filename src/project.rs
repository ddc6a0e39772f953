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
    /// Every path given was a workflow test, none a workflow file.
    #[error("`{0}` is a workflow test, not a workflow file")]
    #[diagnostic(
        code(io::test_file),
        help("run it with `handoff test {0}`; this command reads workflow files (`.handoff`)")
    )]
    TestFile(String),
    /// The path is a symbolic link to nothing.
    #[error("cannot read `{path}`: it is a symbolic link to `{target}`, which does not exist")]
    #[diagnostic(
        code(io::read),
        help("point the link at an existing file, or remove it")
    )]
    BrokenLink { path: String, target: String },
    /// The file could not be read.
    #[error("cannot read `{path}`: {reason}")]
    #[diagnostic(code(io::read))]
    Read { path: String, reason: String },
    /// The file is not UTF-8 text.
    #[error(
        "`{path}` is not UTF-8 text: invalid byte 0x{byte:02X} at line {line}, column {column}"
    )]
    #[diagnostic(code(io::encoding), help("{hint}"))]
    NotUtf8 {
        path: String,
        byte: u8,
        line: usize,
        column: usize,
        /// What the byte suggests about the file's real encoding.
        hint: String,
    },
}

impl LoadError {
    /// The path the error is about, as shown.
    pub fn path(&self) -> &str {
        match self {
            LoadError::NotFound(p) | LoadError::NoFiles(p) | LoadError::TestFile(p) => p,
            LoadError::BrokenLink { path, .. }
            | LoadError::Read { path, .. }
            | LoadError::NotUtf8 { path, .. } => path,
        }
    }

    /// The 1-based line and column the error points at, when it has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            LoadError::NotUtf8 { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

/// The result of loading paths: the files that could be read, and a
/// [`LoadError`] for each that could not.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: Vec<Arc<SourceFile>>,
    pub errors: Vec<LoadError>,
}

/// Lists the `.handoff` files under `paths`, in a stable order (sorted within
/// each directory), each once. A file named on its own is taken whatever
/// its name, except a workflow test (`*.handoff-test`): `check
/// workflows/*` names the tests beside the workflows, and is about the
/// workflows. Only tests named is an error that points at `handoff test`.
pub fn discover(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<LoadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let tests: Vec<&PathBuf> = paths.iter().filter(|p| is_test(p)).collect();
    if !tests.is_empty() && tests.len() == paths.len() {
        errors.extend(tests.iter().map(|p| LoadError::TestFile(display(p))));
        return (files, errors);
    }
    for path in paths {
        if is_test(path) {
            continue;
        }
        if !path.exists() {
            errors.push(missing(path));
        } else if path.is_dir() {
            let before = files.len();
            for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
                match entry {
                    // A symbolic link is taken like a file: reading it
                    // follows it, and reports it if it leads nowhere.
                    Ok(e)
                        if (e.file_type().is_file() || e.path_is_symlink())
                            && is_handoff(e.path()) =>
                    {
                        files.push(e.into_path())
                    }
                    Ok(_) => {}
                    Err(err) => errors.push(LoadError::Read {
                        path: err.path().map_or_else(|| display(path), display),
                        reason: err.io_error().map_or_else(|| err.to_string(), reason),
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
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            missing(path)
        } else {
            LoadError::Read {
                path: display(path),
                reason: reason(&e),
            }
        }
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(SourceFile::new(display(path), text)),
        Err(e) => {
            let bytes = e.as_bytes();
            let valid = e.utf8_error().valid_up_to();
            // The prefix up to the bad byte is valid UTF-8 by definition.
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or("");
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let byte = bytes.get(valid).copied().unwrap_or(0);
            Err(LoadError::NotUtf8 {
                path: display(path),
                byte,
                line,
                column,
                hint: encoding_hint(bytes, byte),
            })
        }
    }
}

/// A path that does not exist, or a symbolic link to nothing.
fn missing(path: &Path) -> LoadError {
    match std::fs::read_link(path) {
        Ok(target) => LoadError::BrokenLink {
            path: display(path),
            target: display(&target),
        },
        Err(_) => LoadError::NotFound(display(path)),
    }
}

/// An I/O error as a reason, without the `(os error 13)` noise.
fn reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied => "permission denied".to_string(),
        ErrorKind::IsADirectory => "it is a directory".to_string(),
        ErrorKind::NotFound => "it does not exist".to_string(),
        _ => {
            let s = e.to_string();
            match s.find(" (os error") {
                Some(i) => s[..i].to_string(),
                None => s,
            }
        }
    }
}

/// Advice for a file that is not UTF-8, from what its bytes look like.
fn encoding_hint(bytes: &[u8], byte: u8) -> String {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return "the file is UTF-16 (as Windows Notepad sometimes saves it); save it as UTF-8"
            .to_string();
    }
    // Text has no NUL bytes (UTF-16 aside, above): a program, an image or
    // an archive does.
    if bytes.iter().take(8192).any(|&b| b == 0) {
        return "the file holds NUL bytes: it is a binary file (a program, an image, an archive), not workflow text; check the path".to_string();
    }
    match windows_1252(byte) {
        Some(c) => format!(
            "save the file as UTF-8; this byte is `{c}` in Windows-1252 (Latin-1), so the file was probably saved in that encoding"
        ),
        None => "save the file as UTF-8".to_string(),
    }
}

/// The character a byte stands for in Windows-1252, for the printable
/// non-ASCII bytes.
fn windows_1252(byte: u8) -> Option<char> {
    const HIGH: [char; 32] = [
        '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0',
        '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
    ];
    match byte {
        0x80..=0x9F => Some(HIGH[usize::from(byte - 0x80)]).filter(|c| *c != '\0'),
        0xA1..=0xFF => Some(char::from(byte)),
        _ => None,
    }
}

fn is_handoff(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "handoff")
}

/// A workflow test file that is there (a path that does not exist is
/// reported as missing, whatever its name).
fn is_test(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "handoff-test") && p.is_file()
}

/// A path as shown in messages: as given, with `/` separators.
pub fn display(p: &Path) -> String {
    p.display().to_string()
}
