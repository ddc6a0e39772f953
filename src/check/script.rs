//! Checks of `script` exception tests: they must compile with rhai, may read
//! only the fields the object declares, may call the helper functions the
//! sandbox provides, and may not read the clock. Every position is mapped back into the `.handoff`
//! file, so an error points inside the script where rhai stopped.

use rhai::ParseErrorType;

use super::expr::Scope;
use super::{suggest, Checker, Loc};
use crate::diagnostic::Code;
use crate::script::skip_non_code;
use crate::syntax::{Script, Span};

/// The functions `crate::script::engine` registers for scripts. rhai
/// resolves calls only when a script runs, so a misspelled helper would
/// otherwise fail at the first event instead of at check time.
pub(crate) const HELPERS: [&str; 3] = ["days_until", "days_since", "today"];

impl Checker<'_> {
    pub(super) fn script(&mut self, s: &Script, scope: &Scope) {
        if s.source.trim().is_empty() {
            let d = self
                .diag(
                    Code::H116,
                    Loc::new(scope.file, s.span),
                    "the script is empty".to_string(),
                    "nothing to run",
                )
                .with_help(format!(
                    "write a rhai expression that is true or false, for example `{}.amount > 50000`",
                    scope.object_name
                ));
            self.diagnostics.push(d);
            return;
        }
        let mut engine = crate::script::engine();
        // The checker walks the script as written: unoptimized, no read or
        // call in dead code is folded away before it is checked.
        engine.set_optimization_level(rhai::OptimizationLevel::None);
        let ast = match crate::script::compile(&engine, &scope.object_name, &s.source) {
            Ok(ast) => ast,
            Err(err) => {
                self.script_syntax(s, scope, &err);
                return;
            }
        };
        self.helper_calls(s, scope);
        let uses = crate::script::uses(&ast, &scope.object_name);
        for (name, pos) in &uses.clock {
            self.clock_call(s, scope, name, *pos);
        }
        let Some(object) = scope.object.map(|i| &self.schema.objects[i]) else {
            return;
        };
        let mut unknown = Vec::new();
        for (field, pos) in uses.fields {
            if object.slot(&field).is_none() {
                let mut at = script_offset(&s.source, pos);
                // `deal["risks"]`: rhai points at the quote, we at the name.
                if s.source.as_bytes().get(at) == Some(&b'"') {
                    at += 1;
                }
                unknown.push((field, s.source_span.start + at));
            }
        }
        let names: Vec<String> = object.fields.iter().map(|f| f.name.clone()).collect();
        let kind = format!("field on `{}`", object.name);
        for (field, at) in unknown {
            let loc = Loc::new(scope.file, Span::new(at, at + field.len()));
            self.unknown(
                Code::H117,
                loc,
                &kind,
                &field,
                &names,
                "scripts may read only the fields the object declares",
            );
        }
    }

    /// Reports a call of rhai's clock (H121): a decision must come out the
    /// same when an event is replayed, so scripts read only the event's time.
    fn clock_call(&mut self, s: &Script, scope: &Scope, name: &str, pos: rhai::Position) {
        let start = s.source_span.start + script_offset(&s.source, pos);
        let (message, label, help) = if name == "sleep" {
            (
                "script calls `sleep`, which waits on the clock".to_string(),
                "waits on the clock",
                "a script decides at once and cannot wait: remove the call".to_string(),
            )
        } else {
            (
                format!("script calls `{name}`, which reads the clock"),
                "reads the clock",
                "a decision must come out the same when an event is replayed, so scripts \
                 cannot read the clock: use `today()`, `days_until(date)` or `days_since(date)`, \
                 which read the day of the event"
                    .to_string(),
            )
        };
        let d = self
            .diag(
                Code::H121,
                Loc::new(scope.file, Span::new(start, start + name.len())),
                message,
                label,
            )
            .with_help(help);
        self.diagnostics.push(d);
    }

    /// Reports a script rhai cannot compile, at the place rhai stopped.
    fn script_syntax(&mut self, s: &Script, scope: &Scope, err: &rhai::ParseError) {
        let offset = s.source_span.start + script_offset(&s.source, err.1);
        let object = &scope.object_name;
        let (message, len, label, help) = match &*err.0 {
            ParseErrorType::VariableUndefined(name) => {
                let fields: Vec<String> = scope
                    .object
                    .map(|i| {
                        self.schema.objects[i]
                            .fields
                            .iter()
                            .map(|f| f.name.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let help = if let Some(f) = suggest(name, fields.iter().map(String::as_str)) {
                    format!(
                        "did you mean `{object}.{f}`? a script reads fields as `{object}.FIELD`"
                    )
                } else if suggest(name, std::iter::once(object.as_str())).is_some() {
                    format!("did you mean `{object}`?")
                } else {
                    format!("a script can read only the record, `{object}`, and its fields as `{object}.FIELD`")
                };
                (
                    format!("script uses `{name}`, which is not defined"),
                    name.len(),
                    "not defined".to_string(),
                    help,
                )
            }
            other => {
                let at_end = offset >= s.source_span.end;
                (
                    format!(
                        "script does not compile: {}",
                        lowercase_first(&other.to_string())
                    ),
                    1,
                    if at_end {
                        "the script ends here".to_string()
                    } else {
                        "rhai stops here".to_string()
                    },
                    match with_rhai_operators(&s.source) {
                        // A `#` comment, as in the rules around the script.
                        _ if matches!(other, ParseErrorType::Reserved(sym) if sym == "#") => {
                            "comments inside a script start with `//`, as in rhai: `# …` is for the rules around it".to_string()
                        }
                        // Offered only when it compiles: a rewrite that
                        // fails too would send the author round again.
                        Rewrite::Fixed(fixed)
                            if crate::script::compile(
                                &crate::script::engine(),
                                object,
                                &fixed,
                            )
                            .is_ok() =>
                        {
                            format!(
                            "rhai writes `&&` for `and`, `||` for `or`, `!` for `not` and `==` for `is`: `{fixed}`"
                        )
                        }
                        Rewrite::IsSet => "a script runs only when every field it reads has a value, so `is set` has nothing to test: drop it (and `require` the field, so the handoff waits for it); rhai writes `&&`, `||`, `!` and `==` for `and`, `or`, `not` and `is`".to_string(),
                        Rewrite::Fixed(_) | Rewrite::Nothing => format!(
                            "a script is rhai code over `{object}` whose last expression is true or false (`let` lines may come first), such as `{object}.amount > 50000 && {object}.segment == \"enterprise\"`"
                        ),
                    },
                )
            }
        };
        let end = (offset + len).min(s.source_span.end).max(offset);
        let d = self
            .diag(
                Code::H116,
                Loc::new(scope.file, Span::new(offset, end)),
                message,
                label,
            )
            .with_help(help);
        self.diagnostics.push(d);
    }

    /// Reports calls of functions that look like a misspelled helper.
    fn helper_calls(&mut self, s: &Script, scope: &Scope) {
        for (name, at) in free_calls(&s.source) {
            if HELPERS.contains(&name) {
                continue;
            }
            // Only names within two edits of a helper: anything further may
            // be one of rhai's own functions, which cannot be listed here.
            let Some(helper) = HELPERS
                .iter()
                .copied()
                .filter(|h| strsim::levenshtein(h, name) <= 2)
                .min_by_key(|h| strsim::levenshtein(h, name))
            else {
                continue;
            };
            let start = s.source_span.start + at;
            let d = self
                .diag(
                    Code::H116,
                    Loc::new(scope.file, Span::new(start, start + name.len())),
                    format!("script calls `{name}`, which does not exist"),
                    "unknown function",
                )
                .with_help(format!("did you mean `{helper}`?"));
            self.diagnostics.push(d);
        }
    }
}

/// Calls of free functions (`name(`, not `x.name(`) in a script, with their
/// byte offsets; strings and comments skipped.
fn free_calls(source: &str) -> Vec<(&str, usize)> {
    let b = source.as_bytes();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if let Some(next) = skip_non_code(b, i) {
            i = next;
            continue;
        }
        match b[i] {
            c if ident(c) && !c.is_ascii_digit() => {
                let start = i;
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
                let method = source[..start].trim_end().ends_with('.');
                let call = source[i..].trim_start().starts_with('(');
                if call && !method {
                    out.push((&source[start..i], start));
                }
            }
            c if ident(c) => {
                // A number such as `14` or `1_000`: skip it whole.
                while i < b.len() && ident(b[i]) {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// rhai's messages start with a capital; ours are lowercase.
fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The byte offset in `source` of a rhai position (1-based line and column).
fn script_offset(source: &str, pos: rhai::Position) -> usize {
    let (Some(line), col) = (pos.line(), pos.position().unwrap_or(1)) else {
        return source.len();
    };
    let mut offset = 0;
    for (i, l) in source.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col_bytes = l
                .char_indices()
                .nth(col.saturating_sub(1))
                .map_or(l.trim_end_matches('\n').len(), |(b, _)| b);
            return offset + col_bytes;
        }
        offset += l.len();
    }
    source.len()
}

/// The script with the `.handoff` words written as rhai writes them (`and`
/// `&&`, `or` `||`, `not` `!`, `is` `==`, `is not` `!=`, `yes` `true`, `no`
/// `false`), on one line and without its comments (a `//` comment joined
/// onto one line would swallow the code after it), when it uses any of
/// them outside strings and comments; `None` when it does not, or when it
/// tests `is set` (a script runs only when its fields have values, so
/// there is nothing to rewrite it to).
fn with_rhai_operators(source: &str) -> Rewrite {
    let b = source.as_bytes();
    let word_char = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let word_end = |from: usize| {
        (from..b.len())
            .find(|&j| !word_char(b[j]))
            .unwrap_or(b.len())
    };
    let next_word = |from: usize| {
        let mut start = from;
        while start < b.len() {
            if b[start].is_ascii_whitespace() {
                start += 1;
            } else if b[start] == b'/' {
                match skip_non_code(b, start) {
                    Some(end) => start = end,
                    None => break,
                }
            } else {
                break;
            }
        }
        let end = word_end(start);
        (end > start).then(|| (&source[start..end], start, end))
    };
    let mut out = String::with_capacity(source.len());
    let (mut i, mut from, mut changed) = (0, 0, false);
    while i < b.len() {
        if let Some(end) = skip_non_code(b, i) {
            if b[i] == b'/' {
                // A comment: left out of the one-line suggestion.
                out.push_str(&source[from..i]);
                out.push(' ');
                from = end;
            }
            i = end;
            continue;
        }
        let starts_word = word_char(b[i]) && (i == 0 || !word_char(b[i - 1]));
        if !starts_word {
            i += 1;
            continue;
        }
        let mut end = word_end(i);
        // `deal.no` is a field called `no`, not the word.
        let after_dot = source[..i].trim_end().ends_with('.');
        let replacement = match &source[i..end] {
            _ if after_dot => None,
            "and" => Some("&&"),
            "or" => Some("||"),
            "not" => Some("!"),
            "yes" => Some("true"),
            "no" => Some("false"),
            "is" => match next_word(end) {
                Some(("set", _, _)) => return Rewrite::IsSet,
                Some(("not", _, not_end)) => {
                    if matches!(next_word(not_end), Some(("set", _, _))) {
                        return Rewrite::IsSet;
                    }
                    end = not_end;
                    Some("!=")
                }
                _ => Some("=="),
            },
            _ => None,
        };
        if let Some(r) = replacement {
            out.push_str(&source[from..i]);
            out.push_str(r);
            // `not x` reads `!x`.
            from = if r == "!" {
                (end..b.len()).find(|&j| b[j] != b' ').unwrap_or(end)
            } else {
                end
            };
            changed = true;
        }
        i = end;
    }
    out.push_str(&source[from..]);
    if changed {
        Rewrite::Fixed(out.split_whitespace().collect::<Vec<_>>().join(" "))
    } else {
        Rewrite::Nothing
    }
}

/// What [`with_rhai_operators`] makes of a script.
#[derive(Debug, PartialEq)]
enum Rewrite {
    /// The script in rhai's words.
    Fixed(String),
    /// It tests `is set` / `is not set`, which has no rhai form.
    IsSet,
    /// No `.handoff` word in it.
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers_exist_in_the_engine() {
        // If the engine stops registering a helper, this list must follow.
        let engine = crate::script::engine();
        for (helper, args) in [
            ("days_until", "(\"2026-01-01\")"),
            ("days_since", "(\"2026-01-01\")"),
            ("today", "()"),
        ] {
            assert!(HELPERS.contains(&helper));
            let ast = crate::script::compile(&engine, "deal", &format!("{helper}{args}"))
                .expect("compiles");
            let mut scope = crate::script::compile_scope("deal");
            let run = crate::script::with_clock(jiff::civil::date(2026, 1, 1), || {
                engine.eval_ast_with_scope::<rhai::Dynamic>(&mut scope, &ast)
            });
            assert!(run.is_ok(), "{helper}: {run:?}");
        }
    }

    #[test]
    fn finds_free_calls_only() {
        let src = "dayz_until(deal.start) > 1 && deal.x.len() > 0 && \"f(\" != today ( ) // g(\n";
        let calls: Vec<&str> = free_calls(src).into_iter().map(|c| c.0).collect();
        assert_eq!(calls, vec!["dayz_until", "today"]);
    }

    #[test]
    fn maps_rhai_positions_to_offsets() {
        let src = "\n    a &&& b\n";
        assert_eq!(script_offset(src, rhai::Position::new(2, 7)), 7);
        assert_eq!(&src[7..8], "&");
        assert_eq!(script_offset(src, rhai::Position::NONE), src.len());
    }

    #[test]
    fn handoff_words_become_rhai_operators() {
        assert_eq!(
            super::with_rhai_operators(r#"deal.a > 1 and not deal.b or deal.c == "x and y" // or"#),
            Rewrite::Fixed(r#"deal.a > 1 && !deal.b || deal.c == "x and y""#.into())
        );
        // A comment between lines is left out: joined onto one line, it
        // would swallow the code after it.
        assert_eq!(
            super::with_rhai_operators("deal.a > 1 // big\n  and deal.b /* flag */ is yes"),
            Rewrite::Fixed("deal.a > 1 && deal.b == true".into())
        );
        assert_eq!(
            super::with_rhai_operators(r#"deal.segment is not "smb" and deal.c is no"#),
            Rewrite::Fixed(r#"deal.segment != "smb" && deal.c == false"#.into())
        );
        // `is set` has no rhai form: no rewrite to offer.
        assert_eq!(
            super::with_rhai_operators("deal.a is set and deal.b"),
            Rewrite::IsSet
        );
        assert_eq!(
            super::with_rhai_operators("deal.a is not set or deal.b"),
            Rewrite::IsSet
        );
        assert_eq!(
            super::with_rhai_operators("deal.android && deal.order"),
            Rewrite::Nothing
        );
        // A field named like a word stays a field; `is` and `not` may be
        // on two lines.
        assert_eq!(
            super::with_rhai_operators("deal.no is \"x\" and deal.notes is\n  not \"y\""),
            Rewrite::Fixed(r#"deal.no == "x" && deal.notes != "y""#.into())
        );
        assert_eq!(
            super::with_rhai_operators("deal.a is\n set"),
            Rewrite::IsSet
        );
    }
}
