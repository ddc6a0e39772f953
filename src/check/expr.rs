//! Type checking of expressions and templates.

use std::collections::{HashMap, HashSet};

use super::types::Type;
use super::{suggest, Checker, Loc};
use crate::diagnostic::Code;
use crate::syntax::{BinaryOp, Expr, ExprKind, IsTest, Literal, Span, Template, TemplatePart};

/// What an expression may refer to where it appears.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    /// The file the expression is in.
    pub file: usize,
    /// The object the handoff runs on (schema index), if known.
    pub object: Option<usize>,
    /// The object name written in the trigger (for messages when unknown).
    pub object_name: String,
    /// Roles assigned before this point on this path.
    pub roles: HashSet<String>,
    /// Every assignment in the handoff: role → (block, span of the role).
    /// Explains a role that is not in `roles`: assigned later in the same
    /// block, or only on another path.
    pub assigned: HashMap<String, Vec<(&'static str, Span)>>,
    /// The statement or block the expression is in (`then`, `if missing`,
    /// `on exception`, `brief`, `where`, `done when`, …), for messages.
    pub block: &'static str,
    /// Inside `if missing`: `{missing}` is defined.
    pub missing: bool,
    /// Inside `on exception`: `{exception}` is defined.
    pub exception: bool,
}

impl Checker<'_> {
    /// Checks a condition: it must be yes/no.
    pub(crate) fn condition(&mut self, e: &Expr, scope: &Scope, what: &str) {
        let t = self.expr(e, scope);
        if !matches!(t, Type::YesNo | Type::Unknown) {
            // A bare field is almost always meant as "is filled in".
            let help = match &e.kind {
                ExprKind::Path(p) => {
                    let path = format!("{}.{}", p.object.name, p.field.name);
                    match comparison_example(&t, &path) {
                        Some(ex) => format!(
                            "to test that it is filled in, write `{path} is set`; or compare it, for example `{ex}`"
                        ),
                        None => format!("to test that it is filled in, write `{path} is set`"),
                    }
                }
                _ => "compare it with something, for example `deal.amount > 0` or `deal.custom_scope is yes`"
                    .to_string(),
            };
            let d = self
                .diag(
                    Code::H109,
                    Loc::new(scope.file, e.span),
                    format!(
                        "{what} must be a yes/no condition, but this is {}",
                        article(&t)
                    ),
                    format!("{t}, not yes/no"),
                )
                .with_help(help);
            self.diagnostics.push(d);
        }
    }

    pub(crate) fn template(&mut self, t: &Template, scope: &Scope) {
        for part in &t.parts {
            if let TemplatePart::Expr(e) = part {
                self.expr(e, scope);
            }
        }
    }

    /// The type of an expression, reporting what is wrong with it.
    pub(crate) fn expr(&mut self, e: &Expr, scope: &Scope) -> Type {
        let loc = Loc::new(scope.file, e.span);
        match &e.kind {
            ExprKind::Literal(l) => literal_type(l),
            ExprKind::Template(t) => {
                self.template(t, scope);
                Type::Text
            }
            ExprKind::Duration { business, .. } => {
                if *business {
                    self.need_calendar(loc);
                }
                Type::Duration
            }
            ExprKind::Today => Type::Date,
            ExprKind::Now => Type::DateTime,
            ExprKind::Path(p) => self.path(p, scope).map_or(Type::Unknown, |(_, t)| t),
            ExprKind::Name(n) => self.name(&n.name, loc, scope),
            ExprKind::List(items) => {
                let mut item_ty = Type::Unknown;
                for i in items {
                    let t = self.expr(i, scope);
                    if item_ty.is_unknown() {
                        item_ty = t;
                    } else if !item_ty.comparable(&t) {
                        self.mismatch(
                            Loc::new(scope.file, i.span),
                            format!("a list mixes {item_ty} and {t} values"),
                            "put values of one kind in a list",
                        );
                    }
                }
                Type::List(Box::new(item_ty))
            }
            ExprKind::Paren(inner) => self.expr(inner, scope),
            ExprKind::Neg(inner) => {
                let t = self.expr(inner, scope);
                if !(t.is_numeric() || t == Type::Duration) {
                    self.mismatch(
                        loc,
                        format!("cannot negate {}", article(&t)),
                        "only numbers, money and durations have a minus sign",
                    );
                    return Type::Unknown;
                }
                t
            }
            ExprKind::Not(inner) => {
                self.condition(inner, scope, "the operand of `not`");
                Type::YesNo
            }
            ExprKind::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, loc, scope),
            ExprKind::Is {
                subject,
                test,
                negated: _,
            } => {
                let st = self.expr(subject, scope);
                match test {
                    IsTest::Set | IsTest::Missing => {}
                    IsTest::Empty => {
                        if !(st.is_textual() || matches!(st, Type::List(_))) {
                            self.mismatch(
                                loc,
                                format!(
                                    "`is empty` applies to text and lists, not {}",
                                    article(&st)
                                ),
                                "to test that a value is absent, write `is missing`",
                            );
                        }
                    }
                    IsTest::Value(v) => {
                        let vt = self.expr(v, scope);
                        if matches!(vt, Type::YesNo) && !matches!(st, Type::YesNo | Type::Unknown) {
                            let help = match &subject.kind {
                                ExprKind::Path(p) => format!(
                                    "to test that it is filled in, write `{}.{} is set`",
                                    p.object.name, p.field.name
                                ),
                                _ => "to test that a value is filled in, write `is set`".into(),
                            };
                            let d = self
                                .diag(
                                    Code::H107,
                                    loc,
                                    format!(
                                        "`is yes`/`is no` needs a yes/no field, but this is {}",
                                        article(&st)
                                    ),
                                    format!("{st}, not yes/no"),
                                )
                                .with_help(help);
                            self.diagnostics.push(d);
                        } else {
                            self.same_kind(&st, v, &vt, loc, scope);
                        }
                    }
                }
                Type::YesNo
            }
            ExprKind::In { subject, list, .. } => {
                let st = self.expr(subject, scope);
                match &list.kind {
                    ExprKind::List(items) => {
                        for i in items {
                            let it = self.expr(i, scope);
                            self.same_kind(&st, i, &it, Loc::new(scope.file, i.span), scope);
                        }
                    }
                    _ => {
                        self.expr(list, scope);
                    }
                }
                Type::YesNo
            }
            ExprKind::Contains { subject, item } => {
                let st = self.expr(subject, scope);
                let it = self.expr(item, scope);
                let item_loc = Loc::new(scope.file, item.span);
                match &st {
                    Type::List(inner) => {
                        if inner.comparable(&it) || matches!(**inner, Type::OneOf(_)) {
                            self.same_kind(inner, item, &it, item_loc, scope);
                        } else {
                            self.mismatch(
                                item_loc,
                                format!("a list of {inner} cannot contain {}", article(&it)),
                                &format!("look for {} in it", article(inner)),
                            );
                        }
                    }
                    t if t.is_textual() => {
                        if !it.is_textual() {
                            self.mismatch(
                                item_loc,
                                format!("text cannot contain {}", article(&it)),
                                "look for text in text, for example `contains \"blocker\"`",
                            );
                        }
                    }
                    t => self.mismatch(
                        loc,
                        format!("`contains` applies to text and lists, not {}", article(t)),
                        "compare it instead, for example with `==` or `>`",
                    ),
                }
                Type::YesNo
            }
        }
    }

    fn binary(&mut self, op: BinaryOp, lhs: &Expr, rhs: &Expr, loc: Loc, scope: &Scope) -> Type {
        use BinaryOp::*;
        match op {
            And | Or => {
                let what = if op == And {
                    "each side of `and`"
                } else {
                    "each side of `or`"
                };
                self.condition(lhs, scope, what);
                self.condition(rhs, scope, what);
                Type::YesNo
            }
            Eq | Ne => {
                let lt = self.expr(lhs, scope);
                let rt = self.expr(rhs, scope);
                self.same_kind(&lt, rhs, &rt, loc, scope);
                if let Type::OneOf(_) = rt {
                    self.same_kind(&rt, lhs, &lt, loc, scope);
                }
                Type::YesNo
            }
            Lt | Le | Gt | Ge => {
                let lt = self.expr(lhs, scope);
                let rt = self.expr(rhs, scope);
                let ok = (lt.is_numeric() && rt.is_numeric())
                    || (lt.is_temporal() && rt.is_temporal())
                    || (lt == Type::Duration && rt == Type::Duration)
                    || lt.is_unknown()
                    || rt.is_unknown();
                if !ok && lt.is_textual() && rt.is_textual() {
                    self.mismatch(
                        loc,
                        format!(
                            "text has no order: `{}` compares numbers, dates and durations",
                            op.symbol()
                        ),
                        "to test text, use `is`, `in [..]` or `contains`",
                    );
                } else if !ok {
                    let help = order_help(&lt, &rt);
                    self.mismatch(
                        loc,
                        format!("cannot compare {} with {}", article(&lt), article(&rt)),
                        &help,
                    );
                }
                Type::YesNo
            }
            Add | Sub | Mul | Div => {
                let lt = self.expr(lhs, scope);
                let rt = self.expr(rhs, scope);
                if lt.is_unknown() || rt.is_unknown() {
                    return Type::Unknown;
                }
                let additive = matches!(op, Add | Sub);
                let result = match (&lt, &rt) {
                    (a, b) if a.is_numeric() && b.is_numeric() => {
                        if *a == Type::Money || *b == Type::Money {
                            Some(Type::Money)
                        } else {
                            Some(Type::Number)
                        }
                    }
                    (t, Type::Duration) if additive && t.is_temporal() => Some(t.clone()),
                    (Type::Duration, t) if op == Add && t.is_temporal() => Some(t.clone()),
                    (Type::Duration, Type::Duration) if additive => Some(Type::Duration),
                    (a, b) if op == Sub && a.is_temporal() && b.is_temporal() => {
                        Some(Type::Duration)
                    }
                    _ => None,
                };
                result.unwrap_or_else(|| {
                    self.mismatch(
                        loc,
                        format!(
                            "cannot apply `{}` to {} and {}",
                            op.symbol(),
                            article(&lt),
                            article(&rt)
                        ),
                        "arithmetic works on numbers and money, and on dates plus durations (`today + 14 days`)",
                    );
                    Type::Unknown
                })
            }
        }
    }

    /// Checks that `value` (of type `vt`) can stand where a `subject_ty`
    /// value is expected; for `one of` fields, that a literal is listed.
    fn same_kind(&mut self, subject_ty: &Type, value: &Expr, vt: &Type, loc: Loc, scope: &Scope) {
        if let (Type::OneOf(values), Some(text)) = (subject_ty, plain_text(value)) {
            self.listed_value(values, &text, Loc::new(scope.file, value.span));
            return;
        }
        if !subject_ty.comparable(vt) {
            let help = order_help(subject_ty, vt);
            self.mismatch(
                loc,
                format!(
                    "cannot compare {} with {}",
                    article(subject_ty),
                    article(vt)
                ),
                &help,
            );
        }
    }

    /// Reports `text` when it is not one of a `one of` field's `values`,
    /// with a did-you-mean and the list.
    pub(crate) fn listed_value(&mut self, values: &[String], text: &str, loc: Loc) {
        if values.iter().any(|v| v == text) {
            return;
        }
        let listed = values
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match suggest(text, values.iter().map(String::as_str)) {
            Some(s) => format!("did you mean \"{s}\"? the values are {listed}"),
            None => format!("the values are {listed}"),
        };
        let d = self
            .diag(
                Code::H108,
                loc,
                format!("\"{text}\" is not one of the field's values"),
                "not a listed value",
            )
            .with_help(help);
        self.diagnostics.push(d);
    }

    fn mismatch(&mut self, loc: Loc, message: String, help: &str) {
        let d = self
            .diag(Code::H107, loc, message, "types do not fit")
            .with_help(help);
        self.diagnostics.push(d);
    }

    /// The slot and type of `OBJ.FIELD`, reporting unknown objects and fields
    /// and fields of other objects.
    pub(crate) fn path(&mut self, p: &crate::syntax::Path, scope: &Scope) -> Option<(usize, Type)> {
        let file = scope.file;
        let Some(obj) = self.schema.object(&p.object.name) else {
            if p.object.name != scope.object_name || scope.object.is_some() {
                let names: Vec<String> = self.schema.names().map(String::from).collect();
                self.unknown(
                    Code::H102,
                    Loc::new(file, p.object.span),
                    "object",
                    &p.object.name,
                    &names,
                    "declare it with `object NAME { ... }`",
                );
            }
            return None;
        };
        let obj_index = self.schema.objects.iter().position(|o| o.name == obj.name);
        if scope.object.is_some() && obj_index != scope.object {
            let d = self
                .diag(
                    Code::H112,
                    Loc::new(file, p.object.span),
                    format!(
                        "`{}.{}` is not available: this handoff runs on `{}` records",
                        p.object.name, p.field.name, scope.object_name
                    ),
                    format!("a `{}` field", p.object.name),
                )
                .with_help(format!(
                    "a handoff sees only the record that triggered it; use a `{}` field",
                    scope.object_name
                ));
            self.diagnostics.push(d);
            return None;
        }
        match obj.slot(&p.field.name) {
            Some(slot) => Some((slot, obj.fields[slot].ty.clone())),
            None => {
                let names: Vec<String> = obj.fields.iter().map(|f| f.name.clone()).collect();
                let kind = format!("field on `{}`", obj.name);
                let obj_name = obj.name.clone();
                self.unknown(
                    Code::H103,
                    Loc::new(file, p.field.span),
                    &kind,
                    &p.field.name,
                    &names,
                    &format!("declare it in `object {obj_name}`"),
                );
                None
            }
        }
    }

    /// The type of a bare name.
    fn name(&mut self, name: &str, loc: Loc, scope: &Scope) -> Type {
        match name {
            "missing" if scope.missing => return Type::List(Box::new(Type::Text)),
            "exception" if scope.exception => return Type::Text,
            "missing" | "exception" => {
                let block = if name == "missing" {
                    "if missing"
                } else {
                    "on exception"
                };
                let d = self
                    .diag(
                        Code::H120,
                        loc,
                        format!("`{name}` is only defined inside `{block}`"),
                        "not defined here",
                    )
                    .with_help(format!("move this text into the `{block}` block"));
                self.diagnostics.push(d);
                return Type::Unknown;
            }
            _ => {}
        }
        if scope.roles.contains(name) {
            return Type::Person;
        }
        if self.directory.users.contains_key(name) {
            self.used.insert(("user", name.to_string()));
            return Type::Person;
        }
        if let Some(places) = scope.assigned.get(name) {
            self.role_not_here(name, loc, scope, places);
            return Type::Unknown;
        }
        if let Some(obj) = scope.object.map(|i| &self.schema.objects[i]) {
            if obj.slot(name).is_some() {
                let d = self
                    .diag(
                        Code::H104,
                        loc,
                        format!(
                            "`{name}` is a field of `{}`: write it with its object",
                            obj.name
                        ),
                        format!("write `{}.{name}`", obj.name),
                    )
                    .with_help(format!(
                        "a bare name is a user or a role; a field is written `{}.{name}`",
                        obj.name
                    ));
                self.diagnostics.push(d);
                return Type::Unknown;
            }
        }
        let mut candidates: Vec<String> = scope.roles.iter().cloned().collect();
        candidates.extend(self.directory.users.keys().cloned());
        if scope.missing && !self.wants_person {
            candidates.push("missing".into());
        }
        if scope.exception && !self.wants_person {
            candidates.push("exception".into());
        }
        // `deal.stage is Renewing`: a word that reads as a value (one of a
        // field's values, or capitalised as values are) was meant as text.
        let is_value = |v: &String| v.eq_ignore_ascii_case(name);
        let listed = scope.object.is_some_and(|i| {
            self.schema.objects[i].fields.iter().any(|f| match &f.ty {
                Type::OneOf(values) => values.iter().any(is_value),
                _ => false,
            })
        });
        let fallback = if listed || name.starts_with(|c: char| c.is_uppercase()) {
            format!("to write the value `{name}`, put it in double quotes: `\"{name}\"`; a bare name is a declared user or a role assigned earlier in this block")
        } else {
            "a bare name must be a declared user or a role assigned earlier in this block"
                .to_string()
        };
        self.unknown(Code::H104, loc, "name", name, &candidates, &fallback);
        Type::Unknown
    }

    /// A role used where it has no one: either before its `assign` in the
    /// same block, or in a block other than the one that assigns it.
    fn role_not_here(
        &mut self,
        name: &str,
        loc: Loc,
        scope: &Scope,
        places: &[(&'static str, Span)],
    ) {
        let d = if let Some(&(_, at)) = places.iter().find(|(b, _)| *b == scope.block) {
            self.diag(
                Code::H104,
                loc,
                format!("`{name}` is used before it is assigned"),
                "no one assigned yet",
            )
            .with_related(at, "assigned here, after its use")
            .with_help(format!("move `assign {name} …` above its first use"))
        } else {
            let mut blocks: Vec<&str> = places.iter().map(|(b, _)| *b).collect();
            blocks.dedup();
            let blocks = blocks
                .iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(" and ");
            let (first_block, at) = places[0];
            let mut d = self
                .diag(
                    Code::H104,
                    loc,
                    format!(
                        "`{name}` is assigned only in {blocks}, so no one holds it in {}",
                        block_phrase(scope.block)
                    ),
                    "no one assigned here",
                )
                .with_related(at, format!("assigned in `{first_block}` only"));
            d = if matches!(scope.block, "then" | "if missing" | "on exception") {
                d.with_help(format!(
                    "each path assigns its own roles: add `assign {name} …` to `{}` before this line, or name a user",
                    scope.block
                ))
            } else {
                d.with_help("name a user here, or a `user` field of the record")
            };
            d
        };
        self.diagnostics.push(d);
    }

    pub(crate) fn need_calendar(&mut self, loc: Loc) {
        if self.directory.calendar.is_none() {
            let d = self
                .diag(
                    Code::H114,
                    loc,
                    "business time needs a calendar, and the project declares none".to_string(),
                    "business time",
                )
                .with_help("declare `calendar { workdays monday to friday  hours 9:00 to 17:00  timezone \"…\" }`");
            self.diagnostics.push(d);
        }
    }
}

/// The type of a literal.
pub(crate) fn literal_type(l: &Literal) -> Type {
    match l {
        Literal::Text(_) => Type::Text,
        Literal::Number { .. } => Type::Number,
        Literal::Bool { .. } => Type::YesNo,
        Literal::Date(_) => Type::Date,
        Literal::DateTime { .. } => Type::DateTime,
    }
}

/// The text of a string expression without interpolation.
fn plain_text(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Template(t) => {
            let mut s = String::new();
            for p in &t.parts {
                match p {
                    TemplatePart::Text(x) => s.push_str(x),
                    TemplatePart::Expr(_) => return None,
                }
            }
            Some(s)
        }
        ExprKind::Literal(Literal::Text(t)) => Some(t.value.clone()),
        ExprKind::Paren(inner) => plain_text(inner),
        _ => None,
    }
}

/// How a block or statement is named in "no one holds it in …".
fn block_phrase(block: &str) -> String {
    match block {
        "brief" => "the brief (it sees the roles of `then`)".to_string(),
        "" => "this condition".to_string(),
        b => format!("`{b}`"),
    }
}

/// An example comparison that fits a value of type `t`, written on
/// `subject`; `None` where "is set" is the only useful test.
fn comparison_example(t: &Type, subject: &str) -> Option<String> {
    Some(match t {
        Type::Number | Type::Money => format!("{subject} > 0"),
        Type::Date => format!("{subject} <= today"),
        Type::DateTime => format!("{subject} <= now"),
        Type::OneOf(values) => format!(
            "{subject} is \"{}\"",
            values.first().map_or("…", String::as_str)
        ),
        _ => return None,
    })
}

/// Help for values of two types that cannot be compared.
fn order_help(a: &Type, b: &Type) -> String {
    let number = |t: &Type| matches!(t, Type::Number | Type::Money);
    if (a.is_temporal() && number(b)) || (number(a) && b.is_temporal()) {
        "a date compares with a date: `today`, a date such as 2026-12-31, or `today + 14 days`"
            .to_string()
    } else if *a == Type::YesNo || *b == Type::YesNo {
        "a yes/no value is tested with `is yes` or `is no`".to_string()
    } else {
        "compare values of the same kind: numbers with numbers, dates with dates, text with text"
            .to_string()
    }
}

/// "a date", "an email", "a list of text".
pub(crate) fn article(t: &Type) -> String {
    let s = match t {
        Type::OneOf(_) => "a `one of` value".to_string(),
        Type::YesNo => "a yes/no value".to_string(),
        // Mass nouns take no article: "compare money with text".
        Type::Text | Type::Money => return t.to_string(),
        other => other.to_string(),
    };
    if s.starts_with("a ") {
        s
    } else if s.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {s}")
    } else {
        format!("a {s}")
    }
}
