//! `handoff check` as a program: exit codes, output formats and the paths it
//! is given. (What the diagnostics say is `tests/syntax_errors.rs`'s job.)
//!
//! Exit codes: 0 clean, 1 problems found, 2 could not run (a path missing,
//! unreadable or not UTF-8; the other files are still checked).

mod common;

use std::path::{Path, PathBuf};

use common::{handoff, root, Run};
use handoff::report::JsonDiagnostic;

/// A temporary project: files to write, then `handoff` runs in it.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(self, name: &str, text: impl AsRef<[u8]>) -> Self {
        let path = self.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the folder");
        }
        std::fs::write(path, text).expect("write the file");
        self
    }

    fn run(&self, args: &[&str]) -> Run {
        handoff_in(self.path(), args)
    }
}

fn handoff_in(dir: &Path, args: &[&str]) -> Run {
    Run::of(handoff().current_dir(dir).args(args))
}

/// A file that is fine on its own (an object nothing uses is no warning).
const OK: &str = "object deal {\n  name: text\n}\n";
const BROKEN: &str = "user founder \"maya@example.com\"\n";

const CRM: &str = r#"object deal {
  name:       text
  stage:      one of "Lead", "Closed Won"
  kickoff_at: datetime
}
"#;
const DIRECTORY: &str = r##"user founder = "maya@example.com"
team delivery = "ana@example.com", "raj@example.com"
channel delivery_feed = "#delivery"
"##;
const SALES: &str = r#"handoff "Sales to Delivery" {
  when deal.stage becomes "Closed Won"
  require name
  then {
    assign delivery_owner from team delivery by round robin
    task "Kickoff: {deal.name}" for delivery_owner due in 2 days
    notify channel delivery_feed "New client {deal.name}"
    notify founder "Won: {deal.name}"
  }
  done when deal.kickoff_at is set
}
"#;

/// Three files that check clean together.
fn valid_project() -> Project {
    Project::new()
        .file("workflows/crm.handoff", CRM)
        .file("workflows/directory.handoff", DIRECTORY)
        .file("workflows/sales.handoff", SALES)
}

#[test]
fn the_repository_workflows_are_clean() {
    let run = handoff_in(root(), &["check", "workflows/"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let last = run.stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("checked ") && last.ends_with(" files: no problems found"),
        "{}",
        run.stderr
    );
}

#[test]
fn clean_project_exits_0_with_a_summary() {
    let run = valid_project().run(&["check", "workflows/"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.stderr, "checked 3 files: no problems found\n");
    assert_eq!(run.stdout, "");
}

#[test]
fn default_path_is_workflows() {
    let run = valid_project().run(&["check"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "checked 3 files: no problems found\n");

    let run = Project::new().run(&["check"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text().contains("`workflows` does not exist"),
        "{}",
        run.stderr
    );
}

#[test]
fn syntax_error_exits_1() {
    let run = Project::new()
        .file("bad.handoff", BROKEN)
        .run(&["check", "bad.handoff"]);
    assert_eq!(run.code, 1);
    assert!(run
        .text()
        .contains("× expected `=`, found `\"maya@example.com\"`"));
    assert!(
        run.stderr.ends_with("checked 1 file: 1 error\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_path_exits_2_and_the_other_paths_are_still_checked() {
    let p = Project::new()
        .file("bad.handoff", BROKEN)
        .file("ok.handoff", OK);
    let run = p.run(&["check", "nope.handoff", "bad.handoff", "ok.handoff"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text().contains("`nope.handoff` does not exist"),
        "{}",
        run.stderr
    );
    assert!(run.text().contains("bad.handoff:1:14"), "{}", run.stderr);
    assert!(
        run.stderr
            .ends_with("checked 2 files: 1 error; 1 path could not be read\n"),
        "{}",
        run.stderr
    );
}

/// `check workflows/*` names the tests beside the workflows: they are
/// skipped; naming only tests points at `handoff test`.
#[test]
fn workflow_tests_named_beside_workflows_are_skipped() {
    let p = Project::new()
        .file("w/crm.handoff", "object deal {\n  name: text\n}\n")
        .file("w/won.handoff-test", "[[test]]\nname = \"x\"\n");
    let run = p.run(&["check", "w/crm.handoff", "w/won.handoff-test"]);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.text().contains("checked 1 file"), "{}", run.text());
    let run = p.run(&["fmt", "--check", "w/crm.handoff", "w/won.handoff-test"]);
    assert_eq!(run.code, 0, "{}", run.text());
    // A test path that is not there is missing, named or not beside others.
    let run = p.run(&["check", "w/crm.handoff", "w/nope.handoff-test"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.text().contains("`w/nope.handoff-test` does not exist"),
        "{}",
        run.text()
    );
    let run = p.run(&["check", "w/won.handoff-test"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text().contains("is a workflow test")
            && run.text().contains("handoff test w/won.handoff-test"),
        "{}",
        run.text()
    );
}

#[test]
fn directory_without_handoff_files_exits_2() {
    let p = Project::new().file("empty/notes.txt", "not a workflow");
    let run = p.run(&["check", "empty"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text().contains("no `.handoff` files under `empty`"),
        "{}",
        run.stderr
    );
    assert!(run.text().contains("workflow files must end in `.handoff`"));
    assert!(run
        .stderr
        .ends_with("nothing checked: 1 path could not be read\n"));
}

#[test]
fn not_utf8_exits_2_with_the_position_of_the_bad_byte() {
    // "Café" saved in Windows-1252: the é is the single byte 0xE9.
    let p = Project::new()
        .file(
            "latin1.handoff",
            b"object deal {\n  name: text \"Caf\xe9 name\"\n}\n",
        )
        .file("ok.handoff", OK)
        .file("bad.handoff", BROKEN);
    let run = p.run(&["check", "latin1.handoff", "ok.handoff", "bad.handoff"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text()
            .contains("`latin1.handoff` is not UTF-8 text: invalid byte 0xE9 at line 2, column 18"),
        "{}",
        run.stderr
    );
    assert!(run.text().contains("this byte is `é` in Windows-1252"));
    // The others were still checked.
    assert!(run.text().contains("bad.handoff:1:14"));
    assert!(run
        .stderr
        .ends_with("checked 2 files: 1 error; 1 path could not be read\n"));
}

#[test]
fn utf16_file_is_named_as_such() {
    let mut bytes = vec![0xFF, 0xFE];
    for unit in OK.encode_utf16() {
        bytes.extend(unit.to_le_bytes());
    }
    let run = Project::new()
        .file("notepad.handoff", bytes)
        .run(&["check", "notepad.handoff"]);
    assert_eq!(run.code, 2);
    assert!(run.text().contains("at line 1, column 1"), "{}", run.stderr);
    assert!(run.text().contains("the file is UTF-16"), "{}", run.stderr);
}

#[test]
fn binary_file_is_named_as_such() {
    // The start of an ELF program: NUL bytes, then bytes that are not UTF-8.
    let mut bytes = b"\x7fELF\x02\x01\x01\x00\x00\x00".to_vec();
    bytes.extend([0x80, 0x81, 0x00, 0xff]);
    let run = Project::new()
        .file("a.handoff", bytes)
        .run(&["check", "a.handoff"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text().contains("it is a binary file") && !run.text().contains("Windows-1252"),
        "{}",
        run.stderr
    );
}

#[cfg(unix)]
#[test]
fn unreadable_file_exits_2() {
    use std::os::unix::fs::PermissionsExt;

    let p = Project::new()
        .file("locked.handoff", OK)
        .file("ok.handoff", OK);
    let locked = p.path().join("locked.handoff");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod 000");
    // Root reads a mode-000 file anyway; then only the other ways of being
    // unreadable below are tested.
    if std::fs::read(&locked).is_err() {
        let run = p.run(&["check", "locked.handoff", "ok.handoff"]);
        assert_eq!(run.code, 2);
        assert!(
            run.text()
                .contains("cannot read `locked.handoff`: permission denied"),
            "{}",
            run.stderr
        );
        assert!(run
            .stderr
            .ends_with("checked 1 file: no problems found; 1 path could not be read\n"));
    }
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o644)).expect("chmod");
}

#[cfg(unix)]
#[test]
fn dangling_symlink_exits_2_whether_named_or_found_in_a_folder() {
    let p = Project::new().file("workflows/ok.handoff", OK);
    std::os::unix::fs::symlink("gone.handoff", p.path().join("workflows/link.handoff"))
        .expect("make a symlink");

    let run = p.run(&["check", "workflows/link.handoff"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text().contains(
            "cannot read `workflows/link.handoff`: it is a symbolic link to `gone.handoff`, which does not exist"
        ),
        "{}",
        run.stderr
    );

    // Found while walking a folder: not silently skipped.
    let run = p.run(&["check", "workflows"]);
    assert_eq!(run.code, 2);
    assert!(
        run.text()
            .contains("`workflows/link.handoff`: it is a symbolic link"),
        "{}",
        run.stderr
    );
    assert!(run
        .stderr
        .ends_with("checked 1 file: no problems found; 1 path could not be read\n"));
}

#[cfg(unix)]
#[test]
fn symlinked_file_in_a_folder_is_checked() {
    let p = Project::new()
        .file("shared/users.handoff", BROKEN)
        .file("workflows/ok.handoff", OK);
    std::os::unix::fs::symlink(
        "../shared/users.handoff",
        p.path().join("workflows/users.handoff"),
    )
    .expect("make a symlink");
    let run = p.run(&["check", "workflows"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.ends_with("checked 2 files: 1 error\n"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_folder_named_like_a_file_is_not_read_as_one() {
    // `handoff check x.handoff` where x.handoff is a folder: it is searched.
    let p = Project::new().file("x.handoff/inner.handoff", OK);
    let run = p.run(&["check", "x.handoff"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr, "checked 1 file: no problems found\n");
}

#[test]
fn multiple_paths_are_all_checked_once() {
    let p = valid_project().file("extra/bad.handoff", BROKEN);
    let run = p.run(&[
        "check",
        "workflows",
        "extra",
        "workflows/crm.handoff",
        "--format",
        "json",
    ]);
    assert_eq!(run.code, 1);
    let diags = run.json();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].file, "extra/bad.handoff");
    // The same file named twice counts once.
    assert_eq!(run.stderr, "");
}

#[test]
fn json_format_is_typed_and_complete() {
    let text = "object deal {\n  amount: mony\n}\n\nuser founder \"maya@example.com\"\n";
    let run =
        Project::new()
            .file("two.handoff", text)
            .run(&["check", "--format", "json", "two.handoff"]);
    assert_eq!(run.code, 1);
    // Human output goes to stderr only; JSON alone on stdout.
    assert_eq!(run.stderr, "");
    let diags = run.json();
    assert_eq!(
        diags,
        vec![
            JsonDiagnostic {
                file: "two.handoff".into(),
                line: 2,
                column: 11,
                end_line: 2,
                end_column: 15,
                severity: "error".into(),
                code: "H001".into(),
                message: "expected a field type, found `mony`".into(),
                help: Some("did you mean `money`?".into()),
            },
            JsonDiagnostic {
                file: "two.handoff".into(),
                line: 5,
                column: 14,
                end_line: 5,
                end_column: 32,
                severity: "error".into(),
                code: "H001".into(),
                message: "expected `=`, found `\"maya@example.com\"`".into(),
                help: Some(
                    "write `=` between the name and its value: `user founder = \"maya@example.com\"`"
                        .into()
                ),
            },
        ]
    );
}

#[test]
fn json_format_of_a_clean_project_is_an_empty_array() {
    let run = valid_project().run(&["check", "--format", "json"]);
    assert_eq!(run.code, 0);
    assert_eq!(run.json(), vec![]);
}

#[test]
fn github_format_writes_one_escaped_command_per_diagnostic() {
    // A name with `,` and `:` must be escaped in the `file` property, and a
    // `%` and the help's line break in the message.
    let text = "user founder = \"maya@example.com\" \"50% off\"\n";
    let p = Project::new().file("a,b:c.handoff", text);
    let run = p.run(&["check", "--format", "github", "a,b:c.handoff"]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stdout);
    let line = lines[0];
    assert!(
        line.starts_with(
            "::error file=a%2Cb%3Ac.handoff,line=1,col=35,endLine=1,endColumn=44,title=H001::"
        ),
        "{line}"
    );
    let message = line
        .split_once("::")
        .and_then(|(_, m)| m.split_once("::"))
        .map(|(_, m)| m);
    let message = message.expect("a message after the properties");
    assert!(message.contains("`\"50%25 off\"`"), "{message}");
    assert!(message.contains("%0Ahelp: "), "{message}");
    assert!(!message.contains('\n'));
}

#[test]
fn github_format_warns_and_reports_unreadable_paths() {
    let p = Project::new()
        .file("empty.handoff", "")
        .file("latin1.handoff", b"user x = \"\xe9\"\n");
    let run = p.run(&[
        "check",
        "--format",
        "github",
        "empty.handoff",
        "latin1.handoff",
    ]);
    assert_eq!(run.code, 2);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    assert!(
        lines[0].starts_with("::error file=latin1.handoff,line=1,col=11,title=cannot read::`latin1.handoff` is not UTF-8 text"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].starts_with("::warning file=empty.handoff,line=1,col=1,endLine=1,endColumn=1,title=H007::this file declares nothing"),
        "{}",
        lines[1]
    );
}

#[test]
fn deny_warnings_makes_the_empty_file_warning_fail() {
    let p = Project::new()
        .file("empty.handoff", "")
        .file("ok.handoff", OK);
    let run = p.run(&["check", "empty.handoff", "ok.handoff"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.text().contains("⚠ this file declares nothing"));
    assert!(run.stderr.ends_with("checked 2 files: 1 warning\n"));

    let run = p.run(&["check", "--deny", "warnings", "empty.handoff", "ok.handoff"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.ends_with("checked 2 files: 1 error\n"),
        "{}",
        run.stderr
    );
    let run = p.run(&[
        "check",
        "--deny",
        "warnings",
        "--format",
        "json",
        "empty.handoff",
    ]);
    assert_eq!(run.json()[0].severity, "error");
}

#[test]
fn comment_only_file_warns_that_it_declares_nothing() {
    let p = Project::new().file("todo.handoff", "# TODO: the sales handoff\n");
    let run = p.run(&["check", "--format", "json", "todo.handoff"]);
    assert_eq!(run.code, 0);
    let d = run.json();
    assert_eq!(
        (d[0].code.as_str(), d[0].severity.as_str()),
        ("H007", "warning")
    );
    assert_eq!(
        d[0].message,
        "this file declares nothing: it holds only comments"
    );
    assert_eq!((d[0].line, d[0].column), (1, 1));
}

#[test]
fn errors_in_several_files_are_all_reported_in_path_order() {
    let p = Project::new()
        .file("workflows/b.handoff", BROKEN)
        .file("workflows/a.handoff", "object deal {\n  amount: mony\n}\n");
    let run = p.run(&["check", "--format", "json"]);
    assert_eq!(run.code, 1);
    let files: Vec<PathBuf> = run.json().iter().map(|d| PathBuf::from(&d.file)).collect();
    assert_eq!(
        files,
        [
            PathBuf::from("workflows/a.handoff"),
            PathBuf::from("workflows/b.handoff")
        ]
    );
}
