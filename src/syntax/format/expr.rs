//! Expressions, literals and strings as canonical text.
//!
//! The tree keeps `Paren` nodes and the parser builds operators with their
//! precedence, so printing every node in source order with single spaces
//! writes back an expression that parses to the same tree: no parentheses
//! are added or dropped.

use crate::syntax::ast::*;

/// An expression on one line.
pub(super) fn expr(e: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, e);
    out
}

fn write_expr(out: &mut String, e: &Expr) {
    match &e.kind {
        ExprKind::Literal(l) => out.push_str(&literal(l)),
        ExprKind::Template(t) => out.push_str(&template(t)),
        ExprKind::Duration {
            amount,
            business,
            unit,
        } => out.push_str(&duration(*amount, *business, *unit)),
        ExprKind::Today => out.push_str("today"),
        ExprKind::Now => out.push_str("now"),
        ExprKind::Path(p) => out.push_str(&path(p)),
        ExprKind::Name(n) => out.push_str(&n.name),
        ExprKind::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_expr(out, item);
            }
            out.push(']');
        }
        ExprKind::Paren(inner) => {
            out.push('(');
            write_expr(out, inner);
            out.push(')');
        }
        // Prefix chains (`not not x`, `--x`) and left-leaning operator
        // chains (`a + b + c + ...`) can be as long as the source allows;
        // walk them in loops so their length never deepens the recursion.
        ExprKind::Neg(_) | ExprKind::Not(_) => {
            let mut cur = e;
            loop {
                cur = match &cur.kind {
                    ExprKind::Neg(inner) => {
                        out.push('-');
                        inner
                    }
                    ExprKind::Not(inner) => {
                        out.push_str("not ");
                        inner
                    }
                    _ => break,
                };
            }
            write_expr(out, cur);
        }
        ExprKind::Binary { .. } => {
            let mut spine = Vec::new();
            let mut cur = e;
            while let ExprKind::Binary { op, lhs, rhs } = &cur.kind {
                spine.push((*op, rhs));
                cur = lhs;
            }
            write_expr(out, cur);
            for (op, rhs) in spine.into_iter().rev() {
                out.push(' ');
                out.push_str(op.symbol());
                out.push(' ');
                write_expr(out, rhs);
            }
        }
        ExprKind::Is {
            subject,
            negated,
            test,
        } => {
            write_expr(out, subject);
            out.push_str(if *negated { " is not " } else { " is " });
            match test {
                IsTest::Set => out.push_str("set"),
                IsTest::Missing => out.push_str("missing"),
                IsTest::Empty => out.push_str("empty"),
                IsTest::Value(v) => write_expr(out, v),
            }
        }
        ExprKind::In {
            subject,
            negated,
            list,
        } => {
            write_expr(out, subject);
            out.push_str(if *negated { " not in " } else { " in " });
            write_expr(out, list);
        }
        ExprKind::Contains { subject, item } => {
            write_expr(out, subject);
            out.push_str(" contains ");
            write_expr(out, item);
        }
    }
}

/// A literal value: strings quoted, numbers in shortest form, `yes`/`no`.
pub(super) fn literal(l: &Literal) -> String {
    match l {
        Literal::Text(t) => text(t),
        Literal::Number { value, span } => {
            grouped(*span, *value).unwrap_or_else(|| value.normalize().to_string())
        }
        Literal::Bool { value, .. } => if *value { "yes" } else { "no" }.to_string(),
        Literal::Date(d) => date(d),
        Literal::DateTime { text, .. } => text.clone(),
    }
}

thread_local! {
    /// The text being formatted, so a number can be written as its author
    /// grouped it. The tree keeps a number's value and span, not its digits;
    /// passing the source down every writer of expressions would touch them
    /// all for this one case.
    static SOURCE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Holds the source for [`grouped`] while one file is formatted.
pub(super) struct SourceGuard;

impl SourceGuard {
    pub(super) fn set(src: &str) -> Self {
        SOURCE.with(|s| src.clone_into(&mut s.borrow_mut()));
        SourceGuard
    }
}

impl Drop for SourceGuard {
    fn drop(&mut self) {
        SOURCE.with(|s| s.borrow_mut().clear());
    }
}

/// The number as written, when the author grouped its digits with `_`
/// (`10_000`) and the text reads back as the same value.
fn grouped(span: Span, value: rust_decimal::Decimal) -> Option<String> {
    SOURCE.with(|s| {
        let s = s.borrow();
        // A span may run on over blanks and a comment: take the number only.
        let text = s.get(span.start..span.end)?;
        let len = text
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(text.len());
        let written = &text[..len];
        let plain: String = written.chars().filter(|c| *c != '_').collect();
        (written.contains('_') && plain.parse::<rust_decimal::Decimal>().ok() == Some(value))
            .then(|| written.to_string())
    })
}

/// A number as Rust writes an `f64`: `50_000` becomes `50000`, `2.50`
/// becomes `2.5`. Display never uses an exponent, and it prints the shortest
/// digits that read back as the same value, so the number parses unchanged.
pub(super) fn number(v: f64) -> String {
    format!("{v}")
}

/// `2026-12-25`.
pub(super) fn date(d: &DateLit) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// `2 business days`, `1 hour`.
pub(super) fn duration(amount: f64, business: bool, unit: TimeUnit) -> String {
    let business = if business { "business " } else { "" };
    format!("{} {business}{}", number(amount), unit.keyword(amount))
}

/// `deal.amount`.
pub(super) fn path(p: &Path) -> String {
    format!("{}.{}", p.object.name, p.field.name)
}

/// `founder` or `deal.owner`.
pub(super) fn reference(r: &Reference) -> String {
    match &r.field {
        Some(f) => format!("{}.{}", r.head.name, f.name),
        None => r.head.name.clone(),
    }
}

/// A plain string literal.
pub(super) fn text(t: &Text) -> String {
    let mut out = String::from('"');
    escape_into(&mut out, &t.value);
    out.push('"');
    out
}

/// A string literal with `{expr}` interpolations.
pub(super) fn template(t: &Template) -> String {
    let mut out = String::from('"');
    for part in &t.parts {
        match part {
            TemplatePart::Text(s) => escape_into(&mut out, s),
            TemplatePart::Expr(e) => {
                out.push('{');
                write_expr(&mut out, e);
                out.push('}');
            }
        }
    }
    out.push('"');
    out
}

/// Writes `s` with every character the string grammar reserves escaped.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '{' => out.push_str("\\{"),
            '}' => out.push_str("\\}"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_lose_underscores_and_trailing_zeros() {
        assert_eq!(number(50_000.0), "50000");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(999_999_999_999_999.0), "999999999999999");
    }

    #[test]
    fn escapes() {
        let mut out = String::new();
        escape_into(&mut out, "a\"b\\c{d}\n\t");
        assert_eq!(out, r#"a\"b\\c\{d\}\n\t"#);
    }
}
