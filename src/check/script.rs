//! Checks of `script` exception tests: they must compile with rhai, and may
//! read only the fields the object declares.

use super::expr::Scope;
use super::{Checker, Loc};
use crate::diagnostic::Code;
use crate::syntax::{Script, Span};

impl Checker<'_> {
    pub(super) fn script(&mut self, s: &Script, scope: &Scope) {
        let engine = crate::script::engine();
        if let Err(err) = crate::script::compile(&engine, &scope.object_name, &s.source) {
            let offset = s.source_span.start + script_offset(&s.source, err.1);
            let end = (offset + 1).min(s.source_span.end).max(offset);
            let d = self
                .diag(
                    Code::H116,
                    Loc::new(scope.file, Span::new(offset, end)),
                    format!("script does not compile: {}", err.0),
                    "here",
                )
                .with_help(format!(
                    "scripts are rhai expressions over `{}`; see grammar/README.md",
                    scope.object_name
                ));
            self.diagnostics.push(d);
            return;
        }
        let Some(object) = scope.object.map(|i| &self.schema.objects[i]) else {
            return;
        };
        let mut unknown = Vec::new();
        for (field, at) in crate::script::field_reads(&s.source, &object.name) {
            if object.slot(&field).is_none() {
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
}

/// The byte offset in `source` of a rhai position (1-based line and column).
fn script_offset(source: &str, pos: rhai::Position) -> usize {
    let (Some(line), col) = (pos.line(), pos.position().unwrap_or(1)) else {
        return 0;
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
