//! Column layout: wrapping long comma lists and aligning object fields.
//!
//! Every decision here depends only on the syntax tree and the indentation,
//! never on how the source was laid out, which is what makes the formatter
//! idempotent.

use super::expr::text;
use super::printer::WIDTH;
use crate::syntax::ast::{FieldDecl, FieldType, Span};

/// Width in columns (characters) of `s`.
pub(super) fn width(s: &str) -> usize {
    s.chars().count()
}

/// `head` followed by `items` joined with `, ` and then `tail`, for text
/// starting at column `col`. On one line if it fits in [`WIDTH`] columns;
/// otherwise filled greedily and broken after commas, each continuation
/// line aligned under the first item.
pub(super) fn list(col: usize, head: &str, items: &[String], tail: &str) -> String {
    let one_line = format!("{head}{}{tail}", items.join(", "));
    if col + width(&one_line) <= WIDTH {
        return one_line;
    }
    let align = col + width(head);
    let mut out = String::from(head);
    let mut at = align;
    for (i, item) in items.iter().enumerate() {
        // What must still fit after the item on its line: a comma, or the tail.
        let after = if i + 1 == items.len() { width(tail) } else { 1 };
        if i > 0 {
            if at + 2 + width(item) + after <= WIDTH {
                out.push_str(", ");
                at += 2;
            } else {
                out.push_str(",\n");
                out.extend(std::iter::repeat_n(' ', align));
                at = align;
            }
        }
        out.push_str(item);
        at += width(item);
    }
    out.push_str(tail);
    out
}

/// A field type on one line: `text`, `list of text`, `one of "a", "b"`.
pub(super) fn field_type(ty: &FieldType) -> String {
    let (prefix, values) = split_type(ty);
    match values {
        Some(values) => format!("{prefix}{}", values.join(", ")),
        None => prefix,
    }
}

/// A field type starting at column `col`, followed by `tail`; a `one of`
/// list that does not fit wraps like any other list.
fn field_type_wrapped(ty: &FieldType, col: usize, tail: &str) -> String {
    match split_type(ty) {
        (prefix, Some(values)) => list(col, &prefix, &values, tail),
        (prefix, None) => prefix + tail,
    }
}

/// A type as the words before its value list (`list of one of `) and that
/// list, if it has one.
fn split_type(ty: &FieldType) -> (String, Option<Vec<String>>) {
    match ty {
        FieldType::Scalar { kind, .. } => (kind.keyword().to_string(), None),
        FieldType::OneOf { values, .. } => (
            "one of ".to_string(),
            Some(values.iter().map(text).collect()),
        ),
        FieldType::List { item, .. } => {
            let (prefix, values) = split_type(item);
            (format!("list of {prefix}"), values)
        }
    }
}

/// A field whose type lists values (`one of`, `list of one of`), as the
/// head of its row (the padded name and the type's words), its values, and
/// their spans, the last one reaching to the end of the field (its label):
/// what [`super::commented_list`] needs to keep a comment after each value.
pub(super) fn value_list(
    fields: &[FieldDecl],
    field: &FieldDecl,
) -> Option<(String, Vec<String>, Vec<Span>)> {
    let mut ty = &field.ty;
    while let FieldType::List { item, .. } = ty {
        ty = item;
    }
    let FieldType::OneOf { values, .. } = ty else {
        return None;
    };
    let (prefix, _) = split_type(&field.ty);
    let name = format!("{}:", field.name.name);
    let head = pad(&name, name_width(fields) + 1) + prefix.as_str();
    let mut items: Vec<String> = values.iter().map(text).collect();
    let mut spans: Vec<Span> = values.iter().map(|v| v.span).collect();
    if let (Some(item), Some(span), Some(label)) =
        (items.last_mut(), spans.last_mut(), field.label.as_ref())
    {
        item.push(' ');
        item.push_str(&text(label));
        span.end = label.span.end;
    }
    Some((head, items, spans))
}

/// The widest field name of an object block, with its `:`.
fn name_width(fields: &[FieldDecl]) -> usize {
    fields
        .iter()
        .map(|f| width(&f.name.name) + 1)
        .max()
        .unwrap_or(0)
}

/// The rows of an `object` block at indentation `indent`, one per field.
///
/// Names end with `:` and are padded so every type starts in one column.
/// Labels line up in a column one space after the widest type among the
/// labelled fields, as long as every aligned row fits in [`WIDTH`]; a field
/// that would push past the limit (a long `one of` with a label) is left out
/// of the column and its label follows its type after one space.
pub(super) fn field_rows(fields: &[FieldDecl], indent: usize) -> Vec<String> {
    let name_width = name_width(fields);
    let type_col = indent + name_width + 1;
    let types: Vec<String> = fields.iter().map(|f| field_type(&f.ty)).collect();
    let labels: Vec<Option<String>> = fields.iter().map(|f| f.label.as_ref().map(text)).collect();
    let fits = |type_width: usize, label: &str| type_col + type_width + 1 + width(label) <= WIDTH;

    let mut aligned: Vec<bool> = labels.iter().map(Option::is_some).collect();
    let label_col = loop {
        let col = (0..fields.len())
            .filter(|&i| aligned[i])
            .map(|i| width(&types[i]))
            .max()
            .unwrap_or(0);
        let too_long = (0..fields.len())
            .find(|&i| aligned[i] && labels[i].as_deref().is_some_and(|l| !fits(col, l)));
        let Some(i) = too_long else { break col };
        // Drop the row itself if it cannot fit even alone; otherwise the
        // widest type is what pushes the column too far right.
        let own_fit = labels[i]
            .as_deref()
            .is_some_and(|l| fits(width(&types[i]), l));
        let culprit = if own_fit {
            (0..fields.len())
                .filter(|&j| aligned[j])
                .max_by_key(|&j| width(&types[j]))
                .unwrap_or(i)
        } else {
            i
        };
        aligned[culprit] = false;
    };

    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = format!("{}:", f.name.name);
            let mut row = pad(&name, name_width + 1);
            match &labels[i] {
                Some(label) if aligned[i] => {
                    row.push_str(&pad(&types[i], label_col + 1));
                    row.push_str(label);
                }
                Some(label) => {
                    row.push_str(&field_type_wrapped(&f.ty, type_col, &format!(" {label}")))
                }
                None => row.push_str(&field_type_wrapped(&f.ty, type_col, "")),
            }
            row
        })
        .collect()
}

/// `s` followed by spaces up to `columns` columns.
fn pad(s: &str, columns: usize) -> String {
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(width(s))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("field_{i:02}")).collect()
    }

    #[test]
    fn short_lists_stay_on_one_line() {
        assert_eq!(
            list(2, "require ", &items(3), ""),
            "require field_00, field_01, field_02"
        );
    }

    #[test]
    fn long_lists_wrap_under_the_first_item() {
        let wrapped = list(2, "require ", &items(12), "");
        let lines: Vec<&str> = wrapped.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].ends_with(','));
        assert!(2 + width(lines[0]) <= WIDTH);
        assert!(lines[1].starts_with(&format!("{}field_", " ".repeat(10))));
        assert!(width(lines[1]) <= WIDTH);
    }
}
