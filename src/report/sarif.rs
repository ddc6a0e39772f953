//! `--format sarif`: diagnostics as a SARIF 2.1.0 log, the format code
//! scanning services read (GitHub code scanning, Azure DevOps, IDEs).
//!
//! One run, one tool (`handoff`), a rule for each code that occurs, a result
//! for each diagnostic. Paths stay as the user gave them, as relative URI
//! references, so the service resolves them against the repository root.
//! Columns count characters (`columnKind: unicodeCodePoints`), as in every
//! other output of `handoff`.

use serde::{Deserialize, Serialize};

use crate::diagnostic::{Code, Diagnostic, Severity, SourceFile};
use crate::syntax::Span;

/// The schema a log names in `$schema`.
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// A SARIF log: the top-level object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Log {
    #[serde(rename = "$schema")]
    pub schema: String,
    pub version: String,
    pub runs: Vec<Run>,
}

/// One run of one tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Run {
    pub tool: Tool,
    pub column_kind: String,
    pub results: Vec<SarifResult>,
}

/// The tool that produced the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    pub driver: Driver,
}

/// The tool's main component: name, version and the rules it reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Driver {
    pub name: String,
    pub version: String,
    pub rules: Vec<Rule>,
}

/// A rule: one diagnostic code.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub short_description: Message,
    pub default_configuration: Configuration,
}

/// A rule's default level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Configuration {
    pub level: String,
}

/// Plain-text message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub text: String,
}

/// One diagnostic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SarifResult {
    pub rule_id: String,
    pub rule_index: usize,
    pub level: String,
    pub message: Message,
    pub locations: Vec<Location>,
    /// "declared here", "first one": the diagnostic's secondary labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_locations: Vec<Location>,
}

/// A place in a file, with an optional message (for related locations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<usize>,
    pub physical_location: PhysicalLocation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
}

/// A file and a region in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhysicalLocation {
    pub artifact_location: ArtifactLocation,
    pub region: Region,
}

/// A file, as a URI reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArtifactLocation {
    pub uri: String,
}

/// 1-based lines and columns; `end_column` is the column after the last
/// character, as SARIF defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    pub start_line: usize,
    pub start_column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// The SARIF log for `diagnostics`.
pub fn log(diagnostics: &[Diagnostic]) -> Log {
    let mut codes: Vec<Code> = diagnostics.iter().map(|d| d.code).collect();
    codes.sort();
    codes.dedup();
    let rules = codes
        .iter()
        .map(|&code| Rule {
            id: code.to_string(),
            short_description: Message {
                text: short_description(code).to_string(),
            },
            default_configuration: Configuration {
                level: default_level(code).to_string(),
            },
        })
        .collect();
    let results = diagnostics
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(help) = &d.help {
                text.push_str("\nhelp: ");
                text.push_str(help);
            }
            SarifResult {
                rule_id: d.code.to_string(),
                // `codes` holds every code of `diagnostics`.
                rule_index: codes.binary_search(&d.code).unwrap_or(0),
                level: level(d.severity).to_string(),
                message: Message { text },
                locations: vec![location(&d.file, d.span, None, None)],
                related_locations: d
                    .related
                    .iter()
                    .enumerate()
                    .map(|(i, l)| location(&d.file, l.span, Some(i + 1), Some(&l.text)))
                    .collect(),
            }
        })
        .collect();
    Log {
        schema: SCHEMA_URI.to_string(),
        version: "2.1.0".to_string(),
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "handoff".to_string(),
                    version: env!("CARGO_PKG_VERSION").to_string(),
                    rules,
                },
            },
            column_kind: "unicodeCodePoints".to_string(),
            results,
        }],
    }
}

/// The SARIF log for `diagnostics` as pretty-printed JSON.
pub fn to_json(diagnostics: &[Diagnostic]) -> String {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_string_pretty(&log(diagnostics)).unwrap_or_default()
}

fn location(file: &SourceFile, span: Span, id: Option<usize>, text: Option<&str>) -> Location {
    let (start_line, start_column) = file.line_col(span.start);
    let (end_line, end_column) = file.line_col(span.end);
    Location {
        id,
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: path_to_uri(&file.name),
            },
            region: Region {
                start_line,
                start_column,
                end_line,
                end_column,
            },
        },
        message: text.map(|t| Message {
            text: t.to_string(),
        }),
    }
}

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Warnings are the H2xx codes; everything else is an error unless
/// `--deny` says otherwise (which changes the result's level, not the rule).
fn default_level(code: Code) -> &'static str {
    if code.as_str().starts_with("H2") {
        "warning"
    } else {
        "error"
    }
}

/// A path as a URI reference: `/` separators, reserved and non-ASCII bytes
/// percent-encoded; an absolute path becomes a `file:` URI.
pub fn path_to_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~' | b'!' | b'$' | b'&')
            || matches!(
                b,
                b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' | b'@'
            );
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    // A first segment with `:` would read as a scheme; `%3A` keeps a
    // relative path relative (`:` is encoded above). Absolute paths and
    // Windows drive paths get the `file:` scheme.
    let bytes = path.as_bytes();
    let drive =
        bytes.len() >= 3 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' && bytes[2] == b'/';
    if path.starts_with('/') {
        format!("file://{out}")
    } else if drive {
        format!("file:///{}:{}", char::from(bytes[0]), &out[4..])
    } else {
        out
    }
}

/// What a code means, in one line: the rule's `shortDescription`. Mirrors
/// the doc comments on [`Code`] (a test keeps the two in step).
pub fn short_description(code: Code) -> &'static str {
    match code {
        Code::H001 => "Syntax error: the text does not fit the grammar here.",
        Code::H002 => "A string literal is not closed before the end of its line.",
        Code::H003 => "A script block is not closed before the end of the file.",
        Code::H004 => "A `{` block is never closed.",
        Code::H005 => "A literal is malformed: an impossible date, time or number, or an empty handoff name.",
        Code::H006 => "`{…}` interpolation where only plain text is allowed.",
        Code::H007 => "The file declares nothing.",
        Code::H008 => "Nested too deeply: brackets, `not`s or `list of`s past 64 levels, or an expression past 256.",
        Code::H101 => "A name is declared twice.",
        Code::H102 => "An object that is not declared.",
        Code::H103 => "A field that the object does not declare.",
        Code::H104 => {
            "A name that is neither a user, a role assigned on this path, nor a template variable."
        }
        Code::H105 => "A team that is not declared.",
        Code::H106 => "A channel that is not declared.",
        Code::H107 => "Operand types do not fit the operator.",
        Code::H108 => "A value that is not one of the field's listed values.",
        Code::H109 => "A condition that is not yes/no.",
        Code::H110 => "A handoff without a `when` trigger.",
        Code::H111 => "A statement that may appear once appears twice.",
        Code::H112 => "A field of another object than the one the handoff runs on.",
        Code::H113 => "A person reference that is not a person (user, role or user/email field).",
        Code::H114 => "Business time without a calendar.",
        Code::H115 => "A calendar that cannot work (bad timezone, no workdays, hours backwards).",
        Code::H116 => "A script that rhai cannot compile.",
        Code::H117 => "A script that reads a field the object does not declare.",
        Code::H118 => "Handoffs that trigger each other in a cycle.",
        Code::H119 => {
            "Two handoffs on the same trigger that assign the same role or set the same field."
        }
        Code::H120 => "`{missing}` or `{exception}` outside the block that defines it.",
        Code::H121 => "A script that reads or waits on the clock (`timestamp()`, `elapsed`, `sleep`).",
        Code::H201 => "A block that can never run (warning).",
        Code::H202 => "A `resume when` that can never be true (warning).",
        Code::H203 => {
            "A `done when` that is already true when the handoff starts, or never can be (warning)."
        }
        Code::H204 => "A declaration nothing uses (warning).",
        Code::H205 => "A `require` list longer than 12 fields (warning).",
        Code::H206 => "Exceptions without an `on exception` block (warning).",
        Code::H207 => "A field required twice (warning).",
        Code::H208 => "A handoff that creates tasks but has no `done when` (warning).",
        Code::H209 => "An `escalate when` that is always true, never true, or true at the trigger (warning).",
        Code::H210 => "A timezone that is a fixed offset (`EST`, `GMT`), not a place (warning).",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(code, doc comment)` for every variant of `Code`, read from the
    /// source so a code added there without a description here is caught.
    fn documented_codes() -> Vec<(String, String)> {
        let src = include_str!("../diagnostic.rs");
        let body = src
            .split("pub enum Code {")
            .nth(1)
            // The enum ends at a `}` alone on its line; docs contain braces.
            .and_then(|rest| rest.split("\n}").next())
            .expect("diagnostic.rs declares `pub enum Code { … }`");
        let mut out = Vec::new();
        let mut doc = Vec::new();
        for line in body.lines().map(str::trim) {
            if let Some(text) = line.strip_prefix("///") {
                doc.push(text.trim().to_string());
            } else if let Some(code) = line.strip_suffix(',') {
                out.push((code.to_string(), doc.join(" ")));
                doc.clear();
            }
        }
        out
    }

    #[test]
    fn every_code_has_its_documented_description() {
        let documented = documented_codes();
        assert!(documented.len() >= 35, "{documented:?}");
        let mut seen = 0;
        for (code, doc) in &documented {
            let variant = ALL
                .iter()
                .copied()
                .find(|c| c.as_str() == code)
                .unwrap_or_else(|| panic!("{code} is missing from ALL"));
            assert_eq!(short_description(variant), doc, "{code}");
            seen += 1;
        }
        assert_eq!(seen, ALL.len());
    }

    /// Every code, for the test above.
    const ALL: [Code; 39] = [
        Code::H001,
        Code::H002,
        Code::H003,
        Code::H004,
        Code::H005,
        Code::H006,
        Code::H007,
        Code::H008,
        Code::H101,
        Code::H102,
        Code::H103,
        Code::H104,
        Code::H105,
        Code::H106,
        Code::H107,
        Code::H108,
        Code::H109,
        Code::H110,
        Code::H111,
        Code::H112,
        Code::H113,
        Code::H114,
        Code::H115,
        Code::H116,
        Code::H117,
        Code::H118,
        Code::H119,
        Code::H120,
        Code::H121,
        Code::H201,
        Code::H202,
        Code::H203,
        Code::H204,
        Code::H205,
        Code::H206,
        Code::H207,
        Code::H208,
        Code::H209,
        Code::H210,
    ];

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(
            path_to_uri("workflows/crm.handoff"),
            "workflows/crm.handoff"
        );
        assert_eq!(
            path_to_uri("my flows/crm#1.handoff"),
            "my%20flows/crm%231.handoff"
        );
        assert_eq!(path_to_uri("a:b.handoff"), "a%3Ab.handoff");
        assert_eq!(path_to_uri("/tmp/x.handoff"), "file:///tmp/x.handoff");
        assert_eq!(
            path_to_uri("C:\\flows\\x.handoff"),
            "file:///C:/flows/x.handoff"
        );
        assert_eq!(path_to_uri("é.handoff"), "%C3%A9.handoff");
    }

    #[test]
    fn a_log_has_one_rule_per_code_and_exclusive_end_columns() {
        let file = SourceFile::new("w/x.handoff", "user a = \"a@x\"\nuser a = \"b@x\"\n");
        let d = Diagnostic::error(
            Code::H101,
            &file,
            Span::new(20, 21),
            "user `a` is declared twice",
            "",
        )
        .with_help("rename one")
        .with_related(Span::new(5, 6), "first declared here");
        let log = log(&[d.clone(), d]);
        let run = &log.runs[0];
        assert_eq!(run.tool.driver.rules.len(), 1);
        assert_eq!(run.tool.driver.rules[0].id, "H101");
        assert_eq!(run.results.len(), 2);
        let r = &run.results[0];
        assert_eq!(
            r.message.text,
            "user `a` is declared twice\nhelp: rename one"
        );
        assert_eq!(
            r.locations[0].physical_location.region,
            Region {
                start_line: 2,
                start_column: 6,
                end_line: 2,
                end_column: 7
            }
        );
        assert_eq!(
            r.related_locations[0].physical_location.region.start_line,
            1
        );
    }
}
