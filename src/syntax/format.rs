//! The formatter: a syntax tree and its source back to text in the one
//! canonical layout (`handoff fmt`).
//!
//! The layout, in short (the files in `workflows/` follow it):
//!
//! - two-space indentation, one statement or action per line, single spaces
//!   between tokens, `key = value` for `user`, `team`, `channel` and brief
//!   lines;
//! - exactly one blank line between top-level declarations; inside a block a
//!   blank line is kept where the source had one or more, never after `{` or
//!   before `}`;
//! - `object` fields aligned in columns: types start in one column, and
//!   labels line up one space after the widest labelled type;
//! - `require`, `one of`, `checklist`, team members and holidays stay on one
//!   line when it fits in 100 columns, else wrap after commas with the
//!   continuation aligned under the first item;
//! - `where` on its own line, two columns deeper than its `when`;
//! - a condition (`where`, `exception … when`, `resume when`, `done when`,
//!   `escalate when`) on one line when it fits in 100 columns, else broken
//!   before each `and` (or `or`) of its top level, one part a line, two
//!   columns deeper;
//! - strings re-escaped, numbers in shortest form (`2.50` → `2.5`) except
//!   that a number written with `_` digit groups is kept as written
//!   (`10_000`: the author grouped it to be read),
//!   booleans as `yes`/`no`, times as `9:00`, parentheses as written, rhai
//!   scripts verbatim;
//! - every comment kept, in order (see `printer` for where each one goes).
//!
//! Two properties hold for every file that parses: formatting is idempotent,
//! and the formatted text parses to the same tree (spans aside) with the same
//! comments. The formatter expects a tree without syntax errors: text that
//! did not parse is not in the tree, so it would not be written back.

mod expr;
mod layout;
mod printer;

use self::expr::{duration, expr, literal, path, reference, template, text};
use self::layout::{field_rows, list, width};
use self::printer::{Printer, INDENT, WIDTH};
use crate::syntax::ast::*;

/// Formats `file`, parsed from `src`, in the canonical layout.
///
/// `src` must be the text the tree was parsed from: spans index it, and it
/// supplies the comments' positions, the blank lines worth keeping, and
/// script bodies. Lines end in LF, whatever the source used. The result
/// ends with exactly one newline (or is empty for a file with neither code
/// nor comments).
///
/// ```
/// use handoff::{diagnostic::SourceFile, syntax};
///
/// let src = SourceFile::new("crm.handoff", "user   founder=\"maya@example.com\"   # the boss");
/// let parsed = syntax::parse(&src);
/// assert_eq!(
///     syntax::format(&parsed.file, &src.text),
///     "user founder = \"maya@example.com\"  # the boss\n"
/// );
/// ```
pub fn format(file: &File, src: &str) -> String {
    let _source = expr::SourceGuard::set(src);
    let mut p = Printer::new(src, &file.comments);
    for (i, decl) in file.declarations.iter().enumerate() {
        if i > 0 {
            p.separate();
        }
        p.comments_before(decl.span().start, 0);
        declaration(&mut p, decl);
    }
    let out = p.finish();
    // Every line the printer writes ends in LF; only text kept verbatim
    // (a script's body) can still carry a CRLF file's CRs, which left a
    // formatted CRLF file with both endings. (A lone CR never parses.)
    if out.contains('\r') {
        out.replace("\r\n", "\n")
    } else {
        out
    }
}

fn declaration(p: &mut Printer, decl: &Declaration) {
    match decl {
        Declaration::Object(o) => {
            let brace = p.brace_after(o.name.span.end);
            let header = format!("object {}", o.name.name);
            p.block(0, &header, o.span, brace, !o.fields.is_empty(), |p| {
                for (field, row) in o.fields.iter().zip(field_rows(&o.fields, INDENT)) {
                    // A `one of` with a comment after a value keeps one
                    // value a line, each comment after its value.
                    let commented =
                        layout::value_list(&o.fields, field).is_some_and(|(head, items, spans)| {
                            commented_list(p, INDENT, &head, &items, &spans)
                        });
                    if !commented {
                        p.line(INDENT, &row, field.span.start, field.span.end);
                    }
                }
            });
        }
        Declaration::User(u) => {
            let line = format!("user {} = {}", u.name.name, text(&u.email));
            p.line(0, &line, u.span.start, u.span.end);
        }
        Declaration::Team(t) => {
            let members: Vec<String> = t
                .members
                .iter()
                .map(|m| match m {
                    Member::Email(e) => text(e),
                    Member::User(u) => u.name.clone(),
                })
                .collect();
            let line = list(0, &format!("team {} = ", t.name.name), &members, "");
            p.line(0, &line, t.span.start, t.span.end);
        }
        Declaration::Channel(c) => {
            let line = format!("channel {} = {}", c.name.name, text(&c.target));
            p.line(0, &line, c.span.start, c.span.end);
        }
        Declaration::Calendar(c) => calendar(p, c),
        Declaration::Handoff(h) => {
            let brace = p.brace_after(h.name.span.end);
            let header = format!("handoff {}", text(&h.name));
            p.block(0, &header, h.span, brace, !h.items.is_empty(), |p| {
                for item in &h.items {
                    handoff_item(p, item, INDENT);
                }
            });
        }
    }
}

fn calendar(p: &mut Printer, c: &CalendarDecl) {
    let (header, after_header) = match &c.name {
        Some(name) => (format!("calendar {}", name.name), name.span.end),
        None => ("calendar".to_string(), c.span.start + "calendar".len()),
    };
    let brace = p.brace_after(after_header);
    p.block(0, &header, c.span, brace, !c.items.is_empty(), |p| {
        for item in &c.items {
            let line = match item {
                CalendarItem::Workdays { days, range, .. } => {
                    let days: Vec<&str> = days.iter().map(|d| d.keyword()).collect();
                    let sep = if *range { " to " } else { ", " };
                    format!("workdays {}", days.join(sep))
                }
                CalendarItem::Timezone { name, .. } => format!("timezone {}", text(name)),
                CalendarItem::Holidays { dates, .. } => {
                    let dates: Vec<String> = dates.iter().map(expr::date).collect();
                    list(INDENT, "holidays ", &dates, "")
                }
                CalendarItem::Hours { start, end, .. } => {
                    format!("hours {} to {}", clock(start), clock(end))
                }
            };
            let span = item.span();
            p.line(INDENT, &line, span.start, span.end);
        }
    });
}

/// `9:00`: hours without a leading zero, as the grammar reference writes them.
fn clock(t: &ClockTime) -> String {
    format!("{}:{:02}", t.hour, t.minute)
}

fn handoff_item(p: &mut Printer, item: &HandoffItem, indent: usize) {
    match item {
        HandoffItem::Trigger(t) => trigger(p, t, indent),
        HandoffItem::Require(r) => {
            let fields: Vec<String> = r.fields.iter().map(reference).collect();
            let spans: Vec<Span> = r.fields.iter().map(|f| f.span).collect();
            if !commented_list(p, indent, "require ", &fields, &spans) {
                let line = list(indent, "require ", &fields, "");
                p.line(indent, &line, r.span.start, r.span.end);
            }
        }
        HandoffItem::IfMissing(b) => action_block(p, "if missing", b, indent),
        HandoffItem::Exception(e) => {
            let head = format!("exception {} when ", text(&e.name));
            match &e.condition {
                ExceptionCondition::Expr(x) => {
                    condition(p, indent, &head, x, e.span.start, e.span.end, false)
                }
                // The body is rhai, not ours: byte for byte, fences included.
                ExceptionCondition::Script(s) => {
                    let line = format!("{head}script ```{}```", s.source);
                    p.line(indent, &line, e.span.start, e.span.end);
                }
            }
        }
        HandoffItem::OnException(o) => {
            let brace = p.brace_after(o.span.start);
            p.block(
                indent,
                "on exception",
                o.span,
                brace,
                !o.items.is_empty(),
                |p| {
                    for item in &o.items {
                        match item {
                            OnExceptionItem::Action(a) => action(p, a, indent + INDENT),
                            OnExceptionItem::ResumeWhen(c) => condition(
                                p,
                                indent + INDENT,
                                "resume when ",
                                &c.expr,
                                c.span.start,
                                c.span.end,
                                false,
                            ),
                        }
                    }
                },
            );
        }
        HandoffItem::Brief(b) => {
            let brace = p.brace_after(b.span.start);
            p.block(indent, "brief", b.span, brace, !b.items.is_empty(), |p| {
                for item in &b.items {
                    let line = match item {
                        BriefItem::Field { label, value, .. } => {
                            format!("{} = {}", template(label), expr(value))
                        }
                        BriefItem::Ask { question, .. } => format!("ask {}", template(question)),
                    };
                    let span = item.span();
                    p.line(indent + INDENT, &line, span.start, span.end);
                }
            });
        }
        HandoffItem::Then(b) => action_block(p, "then", b, indent),
        HandoffItem::DoneWhen(c) => {
            condition(
                p,
                indent,
                "done when ",
                &c.expr,
                c.span.start,
                c.span.end,
                false,
            );
        }
        HandoffItem::EscalateWhen(c) => {
            condition(
                p,
                indent,
                "escalate when ",
                &c.expr,
                c.span.start,
                c.span.end,
                false,
            );
        }
    }
}

/// `when ...`, with its `where` filter on a line of its own.
fn trigger(p: &mut Printer, t: &Trigger, indent: usize) {
    let event = match &t.event {
        TriggerEvent::Created { object } => format!("when {} is created", object.name),
        TriggerEvent::Becomes { field, value } => {
            format!("when {} becomes {}", path(field), literal(value))
        }
        TriggerEvent::Changes { field, from, to } => {
            let mut line = format!("when {} changes", path(field));
            if let Some(from) = from {
                line = format!("{line} from {}", literal(from));
            }
            if let Some(to) = to {
                line = format!("{line} to {}", literal(to));
            }
            line
        }
    };
    let Some(filter) = &t.filter else {
        p.line(indent, &event, t.span.start, t.span.end);
        return;
    };
    // Split the source at `where` so a comment at the end of the `when`
    // line stays there.
    let at = p
        .find_keyword(t.span.start, filter.span.start, "where", &[])
        .unwrap_or(filter.span.start);
    p.line(indent, &event, t.span.start, p.code_end_before(at));
    condition(p, indent + INDENT, "where ", filter, at, t.span.end, true);
}

/// `head` and the condition `e`, for the source range `start..end`: on one
/// line when it fits in [`WIDTH`] columns; else broken before each `and`
/// (or `or`) that joins its top level, each part on a line of its own two
/// columns deeper, so a long condition written over several lines stays
/// readable and a comment between its parts stays between them. The
/// parts are the operands as the parser grouped them: nothing inside
/// parentheses moves, and the text parses to the same tree.
fn condition(
    p: &mut Printer,
    indent: usize,
    head: &str,
    e: &Expr,
    start: usize,
    end: usize,
    continuation: bool,
) {
    let one = format!("{head}{}", expr(e));
    let first_line = |p: &mut Printer, text: &str, to: usize| {
        if continuation {
            p.continuation(indent, text, start, to);
        } else {
            p.line(indent, text, start, to);
        }
    };
    let Some((op, parts)) = joined_parts(e).filter(|_| indent + width(&one) > WIDTH) else {
        first_line(p, &one, end);
        return;
    };
    let Some((first, rest)) = parts.split_first() else {
        first_line(p, &one, end);
        return;
    };
    first_line(p, &format!("{head}{}", expr(first)), first.span.end);
    let mut prev_end = first.span.end;
    for (i, part) in rest.iter().enumerate() {
        let at = p
            .find_keyword(prev_end, part.span.start, op, &[])
            .unwrap_or(part.span.start);
        let to = if i + 1 == rest.len() {
            end
        } else {
            part.span.end
        };
        p.continuation(indent + INDENT, &format!("{op} {}", expr(part)), at, to);
        prev_end = part.span.end;
    }
}

/// The operator word joining `e`'s top level (`and` or `or`) and its
/// operands in order: `a and b and c` gives `("and", [a, b, c])`; `None`
/// when `e` is neither.
fn joined_parts(e: &Expr) -> Option<(&'static str, Vec<&Expr>)> {
    let (op, word) = match &e.kind {
        ExprKind::Binary {
            op: BinaryOp::And, ..
        } => (BinaryOp::And, "and"),
        ExprKind::Binary {
            op: BinaryOp::Or, ..
        } => (BinaryOp::Or, "or"),
        _ => return None,
    };
    // The chain leans left (`(a and b) and c`): walk it in a loop.
    let mut operands = Vec::new();
    let mut cur = e;
    while let ExprKind::Binary { op: o, lhs, rhs } = &cur.kind {
        if *o != op {
            break;
        }
        operands.push(&**rhs);
        cur = lhs;
    }
    operands.push(cur);
    operands.reverse();
    Some((word, operands))
}

fn action_block(p: &mut Printer, header: &str, b: &ActionBlock, indent: usize) {
    let brace = p.brace_after(b.span.start);
    p.block(indent, header, b.span, brace, !b.actions.is_empty(), |p| {
        for a in &b.actions {
            action(p, a, indent + INDENT);
        }
    });
}

fn action(p: &mut Printer, a: &Action, indent: usize) {
    let span = a.span();
    let line = match a {
        Action::Assign(a) => match &a.source {
            AssignSource::Team { team, strategy } => {
                let strategy = match strategy {
                    Strategy::RoundRobin => "round robin",
                    Strategy::LeastLoaded => "least loaded",
                };
                format!(
                    "assign {} from team {} by {strategy}",
                    a.role.name, team.name
                )
            }
            AssignSource::To(to) => format!("assign {} to {}", a.role.name, reference(to)),
        },
        Action::Task(t) => return task(p, t, indent),
        Action::Notify(n) => {
            let target = match &n.target {
                NotifyTarget::Channel(c) => format!("channel {}", c.name),
                NotifyTarget::Person(r) => reference(r),
            };
            format!("notify {target} {}", template(&n.message))
        }
        Action::DraftEmail(d) => {
            let brace = p.brace_after(d.to.span.end);
            let header = format!("draft email to {} for review", reference(&d.to));
            let inner = indent + INDENT;
            p.block(indent, &header, d.span, brace, true, |p| {
                let subject = format!("subject {}", template(&d.subject));
                p.line(inner, &subject, d.subject.span.start, d.subject.span.end);
                let body = format!("body {}", template(&d.body));
                p.line(inner, &body, d.body.span.start, d.body.span.end);
            });
            return;
        }
        Action::Set(s) => format!("set {} = {}", path(&s.field), expr(&s.value)),
        Action::Pause { .. } => "pause".to_string(),
    };
    p.line(indent, &line, span.start, span.end);
}

/// A task, with its `{ checklist ...  attach brief }` body if it had one.
///
/// The tree keeps the body's checklist items as one list and `attach brief`
/// as a flag, so the body prints as one `checklist` line then `attach
/// brief`, whatever order and number of lines the source used.
fn task(p: &mut Printer, t: &Task, indent: usize) {
    let mut header = format!("task {} for {}", template(&t.title), reference(&t.assignee));
    if let Some(d) = &t.due {
        header = format!("{header} due in {}", duration(d.amount, d.business, d.unit));
    }
    if !t.has_body {
        p.line(indent, &header, t.span.start, t.span.end);
        return;
    }
    let after_header = t.due.as_ref().map_or(t.assignee.span.end, |d| d.span.end);
    let brace = p.brace_after(after_header);
    let close = t.span.end.saturating_sub(1);
    let has_items = !t.checklist.is_empty() || t.attach_brief;
    let inner = indent + INDENT;
    p.block(indent, &header, t.span, brace, has_items, |p| {
        if let (Some(first), Some(last)) = (t.checklist.first(), t.checklist.last()) {
            let items: Vec<String> = t.checklist.iter().map(template).collect();
            let spans: Vec<Span> = t.checklist.iter().map(|c| c.span).collect();
            if !commented_list(p, inner, "checklist ", &items, &spans) {
                let line = list(inner, "checklist ", &items, "");
                p.line(inner, &line, first.span.start, last.span.end);
            }
        }
        if t.attach_brief {
            // Find the words in the source so comments around them stay put.
            let strings: Vec<Span> = t.checklist.iter().map(|c| c.span).collect();
            let (start, end) = match p.find_keyword(brace, close, "attach", &strings) {
                Some(at) => {
                    let brief = p.skip_trivia(at + "attach".len());
                    (at, brief + "brief".len())
                }
                None => (close, close),
            };
            p.line(inner, "attach brief", start, end);
        }
    });
}

/// A comma list with comments among its items, one item a line so that
/// each comment stays with the item it follows (`"Confirm scope",  # with
/// the client`), continuation lines aligned under the first item. Prints
/// nothing and returns false when no comment sits inside the list: then the
/// list is filled as usual.
fn commented_list(
    p: &mut Printer,
    indent: usize,
    head: &str,
    items: &[String],
    spans: &[Span],
) -> bool {
    // Only a comment between two items (after one, before the next) keeps
    // the list one item a line; a comment inside an item (`a  # x\n.b`)
    // is printed before the list either way, so it must not change the
    // layout (else a second `fmt` would undo the first).
    if !spans
        .windows(2)
        .any(|w| p.comment_within(w[0].end, w[1].start))
    {
        return false;
    }
    let align = indent + head.chars().count();
    for (i, (item, span)) in items.iter().zip(spans).enumerate() {
        let last_item = i + 1 == items.len();
        // The item's code ends after its `,`, so a comment after the comma
        // trails the item.
        let end = if last_item {
            span.end
        } else {
            p.after_comma(span.end)
        };
        let text = if last_item {
            item.clone()
        } else {
            format!("{item},")
        };
        if i == 0 {
            p.line(indent, &format!("{head}{text}"), span.start, end);
        } else {
            p.continuation(align, &text, span.start, end);
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use crate::diagnostic::SourceFile;
    use crate::syntax::parse;

    fn fmt(src: &str) -> String {
        let source = SourceFile::new("test.handoff", src);
        let parsed = parse(&source);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        super::format(&parsed.file, src)
    }

    /// Found by tests/fmt_roundtrip.rs: a comment inside a list item (not
    /// between items) must not change the list's layout.
    #[test]
    fn a_comment_inside_a_list_item_formats_the_same_twice() {
        let once = fmt("handoff \"h\" { require az12_3  #\n. i3ry__k4u , owner.x }");
        assert_eq!(fmt(&once), once);
    }

    #[test]
    fn one_line_declarations() {
        assert_eq!(
            fmt("user   founder=\"maya@example.com\"  # the boss\nchannel  feed = \"#x\""),
            "user founder = \"maya@example.com\"  # the boss\n\nchannel feed = \"#x\"\n"
        );
    }

    #[test]
    fn empty_blocks_close_on_their_line() {
        assert_eq!(fmt("handoff \"H\" {\n\n}"), "handoff \"H\" {}\n");
        assert_eq!(
            fmt("handoff \"H\" { # why\n}"),
            "handoff \"H\" {  # why\n}\n"
        );
    }

    #[test]
    fn where_goes_under_when_and_keeps_its_comments() {
        let src = "handoff \"H\" { when deal.stage becomes \"Won\" # once\n# big only\nwhere deal.amount>0 }";
        assert_eq!(
            fmt(src),
            "handoff \"H\" {\n  when deal.stage becomes \"Won\"  # once\n    # big only\n    where deal.amount > 0\n}\n"
        );
    }

    #[test]
    fn empty_file_stays_empty() {
        let source = SourceFile::new("empty.handoff", "\n\n");
        let parsed = parse(&source);
        assert_eq!(super::format(&parsed.file, &source.text), "");
    }
}
