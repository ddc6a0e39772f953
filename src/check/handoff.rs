//! Checks of one handoff block: its trigger, gate, exceptions, brief, actions
//! and `done when`, and which roles are assigned on which path.

use std::collections::{HashMap, HashSet};

use super::expr::{article, literal_type, Scope};
use super::types::Type;
use super::{Checker, HandoffInfo, Loc};
use crate::diagnostic::Code;
use crate::syntax::*;

/// The most fields a `require` list should hold: the checklist must be short
/// enough that people complete it.
pub const MAX_REQUIRED: usize = 12;

/// A handoff name as people tell names apart: case and runs of spaces
/// ignored.
///
/// `to_lowercase` leaves the letters whose other case is more than one
/// letter, or depends on the letter's place, apart: the German `ß` (`SS`
/// in capitals, and `ẞ` lowers to it) and the Greek final sigma `ς` (`Σ`
/// lowers to `σ`). They are folded here, as Unicode's case folding does.
fn name_key(name: &str) -> String {
    let lower = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let mut key = String::with_capacity(lower.len());
    for c in lower.chars() {
        match c {
            'ß' => key.push_str("ss"),
            'ς' => key.push('σ'),
            'ſ' => key.push('s'),
            c => key.push(c),
        }
    }
    key
}

impl Checker<'_> {
    pub(super) fn check_handoffs(&mut self) {
        let units = self.units;
        let mut names: HashMap<String, (Loc, String)> = HashMap::new();
        for (fi, unit) in units.iter().enumerate() {
            for (di, decl) in unit.file.declarations.iter().enumerate() {
                let Declaration::Handoff(h) = decl else {
                    continue;
                };
                let loc = Loc::new(fi, h.name.span);
                // A blank name is refused by the parser (H005).
                // People read and filter handoffs by name: two that differ
                // only in case or spacing would look like one.
                let key = name_key(&h.name.value);
                if let Some((first, first_name)) = names.get(&key) {
                    let message = if *first_name == h.name.value {
                        format!("handoff \"{}\" is declared twice", h.name.value)
                    } else {
                        format!(
                            "handoff \"{}\" is declared twice: \"{first_name}\" differs from it only in case or spacing",
                            h.name.value
                        )
                    };
                    let d = self
                        .diag(Code::H101, loc, message, "declared again here")
                        .with_help("give each handoff its own name");
                    let d = self.relate(d, *first, "first declared here");
                    self.diagnostics.push(d);
                    // Its body is still checked (a typo in it would
                    // otherwise surface only after the rename), but it
                    // takes no part in the checks across handoffs.
                    let _ = self.handoff(fi, di, h);
                    continue;
                }
                names.insert(key, (loc, h.name.value.clone()));
                if let Some(info) = self.handoff(fi, di, h) {
                    self.handoffs.push(info);
                }
            }
        }
    }

    /// Checks one handoff, block by block in the order written. The info is
    /// `None` when the handoff has no trigger or its object is unknown.
    fn handoff(&mut self, fi: usize, di: usize, h: &HandoffDecl) -> Option<HandoffInfo> {
        self.once_each(fi, h);
        let trigger = self.find_trigger(fi, h)?;
        let object_ident = trigger_object(trigger);
        let object = self.resolve_object(fi, object_ident);
        let base = base_scope(fi, h, object, object_ident);
        let shape = Shape::of(h);
        let mut info = HandoffInfo {
            unit: fi,
            decl: di,
            name: h.name.value.clone(),
            object: object.unwrap_or(usize::MAX),
            roles: Vec::new(),
            sets: Vec::new(),
        };

        self.trigger(
            trigger,
            &Scope {
                block: "where",
                ..base.clone()
            },
        );
        let mut exception_names: HashMap<&str, Span> = HashMap::new();
        // Slots of the required fields: set whenever the handoff gets past
        // its gate.
        let mut required: Vec<usize> = Vec::new();
        for item in &h.items {
            match item {
                HandoffItem::Trigger(_) => {}
                HandoffItem::Require(r) => self.require(r, &base, &mut required),
                HandoffItem::IfMissing(b) => self.if_missing_block(b, &base, &shape, &mut info),
                HandoffItem::Exception(e) => self.exception_block(e, &base, &mut exception_names),
                HandoffItem::OnException(o) => self.on_exception_block(o, &base, &shape, &mut info),
                HandoffItem::Brief(b) => self.brief_block(b, &base, &shape),
                HandoffItem::Then(b) => self.then_block(b, &base, &shape, &mut info),
                HandoffItem::DoneWhen(_) | HandoffItem::EscalateWhen(_) => {}
            }
        }
        // After the loop: `done when` needs the whole `require` list, which
        // may come later in the block.
        for item in &h.items {
            if let HandoffItem::DoneWhen(c) = item {
                self.done_when_block(c, trigger, &required, &base);
            }
            if let HandoffItem::EscalateWhen(c) = item {
                self.escalate_when_block(c, trigger, &base);
            }
        }
        self.review_missing(fi, object, &shape);
        self.never_done(fi, h, object);
        (object.is_some()).then_some(info)
    }

    /// The handoff's `when` line; a handoff without one is reported (H110).
    fn find_trigger<'h>(&mut self, fi: usize, h: &'h HandoffDecl) -> Option<&'h Trigger> {
        let trigger = h.items.iter().find_map(|i| match i {
            HandoffItem::Trigger(t) => Some(t),
            _ => None,
        });
        if trigger.is_none() {
            let d = self
                .diag(
                    Code::H110,
                    Loc::new(fi, h.name.span),
                    format!("handoff \"{}\" has no trigger", h.name.value),
                    "never runs",
                )
                .with_help(
                    "add a `when` line, for example `when deal.stage becomes \"Closed Won\"`",
                );
            self.diagnostics.push(d);
        }
        trigger
    }

    /// The schema index of the object the trigger names; an unknown object
    /// is reported (H102).
    fn resolve_object(&mut self, fi: usize, object_ident: &Ident) -> Option<usize> {
        let object = self
            .schema
            .objects
            .iter()
            .position(|o| o.name == object_ident.name);
        if object.is_none() {
            let names: Vec<String> = self.schema.names().map(String::from).collect();
            self.unknown(
                Code::H102,
                Loc::new(fi, object_ident.span),
                "object",
                &object_ident.name,
                &names,
                "declare it with `object NAME { ... }`",
            );
        }
        object
    }

    fn if_missing_block(
        &mut self,
        b: &ActionBlock,
        base: &Scope,
        shape: &Shape,
        info: &mut HandoffInfo,
    ) {
        if !shape.has_require {
            self.warn(
                Code::H201,
                Loc::new(base.file, head(b.span, "if missing")),
                "`if missing` can never run: this handoff requires no fields".into(),
                "never runs",
                "add a `require` line, or delete the block",
            );
        }
        let scope = Scope {
            missing: true,
            block: "if missing",
            ..base.clone()
        };
        self.actions(&b.actions, scope, info, shape.has_brief);
    }

    /// One `exception` line. `names` holds the exceptions seen so far.
    fn exception_block<'h>(
        &mut self,
        e: &'h Exception,
        base: &Scope,
        names: &mut HashMap<&'h str, Span>,
    ) {
        let fi = base.file;
        if let Some(&first) = names.get(e.name.value.as_str()) {
            let d = self
                .diag(
                    Code::H101,
                    Loc::new(fi, e.name.span),
                    format!("exception \"{}\" is declared twice", e.name.value),
                    "declared again here",
                )
                .with_related(first, "first declared here")
                .with_help("give each exception its own name");
            self.diagnostics.push(d);
        }
        names.insert(&e.name.value, e.name.span);
        match &e.condition {
            ExceptionCondition::Expr(x) => {
                let scope = Scope {
                    block: "exception",
                    ..base.clone()
                };
                self.condition(x, &scope, "an exception's test");
                if is_constant(x) == Some(false) {
                    self.warn(
                        Code::H201,
                        Loc::new(fi, x.span),
                        format!("exception \"{}\" can never be flagged", e.name.value),
                        "always false",
                        "delete the exception, or test a field",
                    );
                }
            }
            ExceptionCondition::Script(s) => self.script(s, base),
        }
    }

    fn on_exception_block(
        &mut self,
        o: &OnException,
        base: &Scope,
        shape: &Shape,
        info: &mut HandoffInfo,
    ) {
        if shape.exceptions.is_empty() {
            self.warn(
                Code::H201,
                Loc::new(base.file, head(o.span, "on exception")),
                "`on exception` can never run: this handoff declares no exceptions".into(),
                "never runs",
                "add an `exception \"Name\" when …` line, or delete the block",
            );
        }
        let mut scope = Scope {
            exception: true,
            block: "on exception",
            ..base.clone()
        };
        for it in &o.items {
            match it {
                OnExceptionItem::Action(a) => self.action(a, &mut scope, info, shape.has_brief),
                OnExceptionItem::ResumeWhen(c) => {
                    self.condition(&c.expr, &scope, "`resume when`");
                    self.resume_never(c, &shape.exceptions, base.file);
                }
            }
        }
    }

    fn brief_block(&mut self, b: &Brief, base: &Scope, shape: &Shape) {
        let scope = Scope {
            roles: shape.then_roles.clone(),
            block: "brief",
            ..base.clone()
        };
        let mut labels: HashMap<String, Span> = HashMap::new();
        for it in &b.items {
            match it {
                BriefItem::Field { label, value, .. } => {
                    self.template(label, &scope);
                    self.expr(value, &scope);
                    let text = label_text(label);
                    if let Some(&first) = labels.get(&text) {
                        let d = self
                            .diag(
                                Code::H101,
                                Loc::new(base.file, label.span),
                                format!("brief line \"{text}\" appears twice"),
                                "again here",
                            )
                            .with_related(first, "first here")
                            .with_help("give each line of the brief its own label");
                        self.diagnostics.push(d);
                    } else {
                        labels.insert(text, label.span);
                    }
                }
                BriefItem::Ask { question, .. } => self.template(question, &scope),
            }
        }
    }

    fn then_block(&mut self, b: &ActionBlock, base: &Scope, shape: &Shape, info: &mut HandoffInfo) {
        let scope = Scope {
            block: "then",
            ..base.clone()
        };
        self.actions(&b.actions, scope, info, shape.has_brief);
    }

    fn done_when_block(
        &mut self,
        c: &Condition,
        trigger: &Trigger,
        required: &[usize],
        base: &Scope,
    ) {
        let scope = Scope {
            block: "done when",
            ..base.clone()
        };
        self.condition(&c.expr, &scope, "`done when`");
        self.done_when(c, trigger, required, &scope);
    }

    /// `escalate when`: a condition on the record (H109 when it is not
    /// yes/no) that should become true only when delivery comes back for
    /// missing context (H209 when it is constant or true at the trigger).
    fn escalate_when_block(&mut self, c: &Condition, trigger: &Trigger, base: &Scope) {
        let scope = Scope {
            block: "escalate when",
            ..base.clone()
        };
        self.condition(&c.expr, &scope, "`escalate when`");
        let fi = scope.file;
        let help = "test a field delivery sets when they had to come back for context, such as `deal.delivery_blocked is yes`";
        match is_constant(&c.expr) {
            Some(true) => {
                self.warn(
                    Code::H209,
                    Loc::new(fi, c.expr.span),
                    "`escalate when` is always true: every handoff would count as escalated".into(),
                    "always true",
                    help,
                );
                return;
            }
            Some(false) => {
                self.warn(
                    Code::H209,
                    Loc::new(fi, c.expr.span),
                    "`escalate when` can never be true: no escalation is ever recorded".into(),
                    "always false",
                    help,
                );
                return;
            }
            None => {}
        }
        let trigger_value = match &trigger.event {
            TriggerEvent::Becomes { field, value } => Some((field, value)),
            TriggerEvent::Changes {
                field,
                to: Some(value),
                ..
            } => Some((field, value)),
            _ => None,
        };
        if let (Some((field, value)), Some((tf, tv))) = (is_value_test(&c.expr), trigger_value) {
            if field == format!("{}.{}", tf.object.name, tf.field.name) && value == literal_key(tv)
            {
                self.warn(
                    Code::H209,
                    Loc::new(fi, c.expr.span),
                    "`escalate when` is true as soon as the handoff starts: it tests the trigger's own value, so every handoff would count as escalated".into(),
                    "true at the trigger",
                    help,
                );
            }
        }
    }

    /// Exceptions without an `on exception` block: a flagged handoff would
    /// wait with nobody asked to review it (H206).
    fn review_missing(&mut self, fi: usize, object: Option<usize>, shape: &Shape) {
        let Some(first) = shape.exceptions.first() else {
            return;
        };
        if shape.has_on_exception {
            return;
        }
        // Suggest a reviewer that exists: a person field of the record.
        let reviewer = object
            .map(|i| &self.schema.objects[i])
            .and_then(|o| {
                o.fields
                    .iter()
                    .find(|f| f.ty == Type::User)
                    .map(|f| format!("{}.{}", o.name, f.name))
            })
            .unwrap_or_else(|| "…".to_string());
        self.warn(
            Code::H206,
            Loc::new(fi, first.name.span),
            "this handoff has exceptions but no `on exception` block: a flagged handoff waits with no review task".into(),
            "flagged handoffs wait here",
            &format!("add `on exception {{ task \"Review {{exception}}\" for {reviewer} }}`"),
        );
    }

    /// A handoff that creates tasks but has no `done when` never finishes:
    /// its tasks stay open, and count against their owners in
    /// `by least loaded` for ever (H208).
    fn never_done(&mut self, fi: usize, h: &HandoffDecl, object: Option<usize>) {
        if h.items
            .iter()
            .any(|i| matches!(i, HandoffItem::DoneWhen(_)))
        {
            return;
        }
        let has_task = h
            .items
            .iter()
            .flat_map(block_actions)
            .any(|a| matches!(a, Action::Task(_)));
        if !has_task {
            return;
        }
        // Suggest a field that can mark the next step as done.
        let object = object.map(|i| &self.schema.objects[i]);
        let fallback = format!(
            "{}.FIELD is set",
            object.map_or("deal", |o| o.name.as_str())
        );
        let example = object
            .and_then(|o| {
                let pick = |t: &Type| o.fields.iter().find(|f| f.ty == *t);
                pick(&Type::DateTime)
                    .or_else(|| pick(&Type::Date))
                    .map(|f| format!("{}.{} is set", o.name, f.name))
                    .or_else(|| pick(&Type::YesNo).map(|f| format!("{}.{} is yes", o.name, f.name)))
            })
            .unwrap_or(fallback);
        self.warn(
            Code::H208,
            Loc::new(fi, h.name.span),
            format!(
                "handoff \"{}\" has no `done when`: its tasks stay open for ever",
                h.name.value
            ),
            "never finishes",
            &format!("add `done when {example}` (a field that marks the next step as done); open tasks count against their owner in `by least loaded`"),
        );
    }

    /// Reports statements that may appear only once.
    fn once_each(&mut self, fi: usize, h: &HandoffDecl) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for item in &h.items {
            let kind = match item {
                HandoffItem::Trigger(_) => "when",
                HandoffItem::Require(_) => "require",
                HandoffItem::IfMissing(_) => "if missing",
                HandoffItem::OnException(_) => "on exception",
                HandoffItem::Brief(_) => "brief",
                HandoffItem::Then(_) => "then",
                HandoffItem::DoneWhen(_) => "done when",
                HandoffItem::EscalateWhen(_) => "escalate when",
                HandoffItem::Exception(_) => continue,
            };
            let span = head(item.span(), kind);
            if let Some(&first) = seen.get(kind) {
                let d = self
                    .diag(
                        Code::H111,
                        Loc::new(fi, span),
                        format!("`{kind}` appears twice in handoff \"{}\"", h.name.value),
                        "second one",
                    )
                    .with_related(first, "first one")
                    .with_help(format!("a handoff has one `{kind}`; merge the two"));
                self.diagnostics.push(d);
            } else {
                seen.insert(kind, span);
            }
        }
    }

    fn trigger(&mut self, t: &Trigger, scope: &Scope) {
        match &t.event {
            TriggerEvent::Created { .. } => {}
            TriggerEvent::Becomes { field, value } => {
                if let Some((_, ty)) = self.path(field, scope) {
                    self.literal_fits(&ty, field, value, scope.file);
                }
            }
            TriggerEvent::Changes { field, from, to } => {
                if let Some((_, ty)) = self.path(field, scope) {
                    for v in [from, to].into_iter().flatten() {
                        self.literal_fits(&ty, field, v, scope.file);
                    }
                }
            }
        }
        if let Some(f) = &t.filter {
            self.condition(f, scope, "a `where` filter");
        }
    }

    /// A trigger value must be a value the field can hold.
    fn literal_fits(&mut self, ty: &Type, field: &Path, value: &Literal, file: usize) {
        let loc = Loc::new(file, value.span());
        if let (Type::OneOf(values), Literal::Text(t)) = (ty, value) {
            self.listed_value(values, &t.value, loc);
            return;
        }
        let vt = literal_type(value);
        let fits = match ty {
            Type::YesNo => vt == Type::YesNo,
            t => t.comparable(&vt),
        };
        if !fits {
            let d = self
                .diag(
                    Code::H107,
                    loc,
                    format!(
                        "`{}.{}` holds {}, but this is {}",
                        field.object.name,
                        field.field.name,
                        article(ty),
                        article(&vt)
                    ),
                    "wrong kind of value",
                )
                .with_help(format!(
                    "write a value the field can hold, such as {}",
                    value_example(ty)
                ));
            self.diagnostics.push(d);
        }
    }

    fn require(&mut self, r: &Require, scope: &Scope, required: &mut Vec<usize>) {
        // Keyed by the resolved field, so `name, deal.name` is a repeat and a
        // field of another object (reported as such) is not.
        let mut seen: HashMap<usize, Span> = HashMap::new();
        for f in &r.fields {
            let (object, field) = match &f.field {
                Some(field) => (f.head.clone(), field.clone()),
                None => (
                    Ident {
                        name: scope.object_name.clone(),
                        span: f.head.span,
                    },
                    f.head.clone(),
                ),
            };
            let path = Path {
                object,
                field: field.clone(),
                span: f.span,
            };
            if scope.object.is_none() && f.field.is_none() {
                // The handoff's object is unknown (reported at the trigger).
                continue;
            }
            let Some((slot, _)) = self.path(&path, scope) else {
                continue;
            };
            if let Some(&first) = seen.get(&slot) {
                let d = self
                    .diag(
                        Code::H207,
                        Loc::new(scope.file, f.span),
                        format!("`{}` is required twice", field.name),
                        "again here",
                    )
                    .warning()
                    .with_related(first, "first here")
                    .with_help("delete one of them");
                self.diagnostics.push(d);
            } else {
                seen.insert(slot, f.span);
                required.push(slot);
            }
        }
        if r.fields.len() > MAX_REQUIRED {
            self.warn(
                Code::H205,
                Loc::new(scope.file, head(r.span, "require")),
                format!(
                    "{} required fields: keep the checklist to {MAX_REQUIRED} or fewer",
                    r.fields.len()
                ),
                "long checklist",
                "a short checklist gets completed; move nice-to-have fields into the brief",
            );
        }
    }

    fn actions(
        &mut self,
        actions: &[Action],
        mut scope: Scope,
        info: &mut HandoffInfo,
        has_brief: bool,
    ) {
        for a in actions {
            self.action(a, &mut scope, info, has_brief);
        }
    }

    fn action(&mut self, a: &Action, scope: &mut Scope, info: &mut HandoffInfo, has_brief: bool) {
        let file = scope.file;
        match a {
            Action::Assign(asg) => {
                match &asg.source {
                    AssignSource::Team { team, .. } => {
                        if self.directory.teams.contains_key(&team.name) {
                            self.used.insert(("team", team.name.clone()));
                        } else {
                            let names: Vec<String> = self.directory.teams.keys().cloned().collect();
                            self.unknown(
                                Code::H105,
                                Loc::new(file, team.span),
                                "team",
                                &team.name,
                                &names,
                                "declare it with `team NAME = \"a@example.com\", \"b@example.com\"`",
                            );
                        }
                    }
                    AssignSource::To(r) => self.person(r, scope, "a role is given to"),
                }
                // `assign founder to founder` names one person twice: no
                // ambiguity.
                let to_itself = matches!(&asg.source,
                    AssignSource::To(r) if r.field.is_none() && r.head.name == asg.role.name);
                if let Some(user) = self
                    .directory
                    .users
                    .get(&asg.role.name)
                    .filter(|_| !to_itself)
                {
                    // One name for two people: the rules would read the
                    // role, `handoff run` and `serve` the user.
                    let first = user.loc;
                    let d = self
                        .diag(
                            Code::H101,
                            Loc::new(file, asg.role.span),
                            format!(
                                "role `{}` has the name of a declared user",
                                asg.role.name
                            ),
                            "also a user",
                        )
                        .with_help(format!(
                            "give the role a name of its own, such as `{0}_pick` (and use that name after it); to give the role to the user, write `assign {0}_pick to {0}`",
                            asg.role.name
                        ));
                    let d = self.relate(d, first, "the user is declared here");
                    self.diagnostics.push(d);
                }
                scope.roles.insert(asg.role.name.clone());
                info.roles
                    .push((asg.role.name.clone(), Loc::new(file, asg.role.span)));
            }
            Action::Task(t) => {
                self.template(&t.title, scope);
                self.person(&t.assignee, scope, "a task is for");
                if let Some(due) = &t.due {
                    if due.business {
                        self.need_calendar(Loc::new(file, due.span));
                    }
                }
                for c in &t.checklist {
                    self.template(c, scope);
                }
                if t.attach_brief && !has_brief {
                    let at = self.attach_span(file, t.span);
                    self.warn(
                        Code::H201,
                        Loc::new(file, at),
                        "this task attaches the brief, but the handoff has no `brief` block".into(),
                        "nothing to attach",
                        "add a `brief { … }` block",
                    );
                }
            }
            Action::Notify(n) => {
                match &n.target {
                    NotifyTarget::Channel(c) => {
                        if self.directory.channels.contains_key(&c.name) {
                            self.used.insert(("channel", c.name.clone()));
                        } else {
                            let names: Vec<String> =
                                self.directory.channels.keys().cloned().collect();
                            self.unknown(
                                Code::H106,
                                Loc::new(file, c.span),
                                "channel",
                                &c.name,
                                &names,
                                "declare it with `channel NAME = \"#channel\"`",
                            );
                        }
                    }
                    NotifyTarget::Person(r) => self.person(r, scope, "a notification goes to"),
                }
                self.template(&n.message, scope);
            }
            Action::DraftEmail(d) => {
                self.person(&d.to, scope, "an email goes to");
                self.template(&d.subject, scope);
                self.template(&d.body, scope);
            }
            Action::Set(s) => {
                if let Some((slot, ty)) = self.path(&s.field, scope) {
                    let vt = self.expr(&s.value, scope);
                    let fits = match (&ty, &vt) {
                        (Type::YesNo, v) => matches!(v, Type::YesNo | Type::Unknown),
                        (t, v) => t.comparable(v),
                    };
                    if !fits {
                        let d = self
                            .diag(
                                Code::H107,
                                Loc::new(file, s.value.span),
                                format!(
                                    "`{}.{}` holds {}, but this is {}",
                                    s.field.object.name,
                                    s.field.field.name,
                                    article(&ty),
                                    article(&vt)
                                ),
                                "wrong kind of value",
                            )
                            .with_help(format!(
                                "set it to a value it can hold, such as {}",
                                value_example(&ty)
                            ));
                        self.diagnostics.push(d);
                    } else if let (Type::OneOf(values), ExprKind::Template(t)) =
                        (&ty, &s.value.kind)
                    {
                        if t.parts.iter().all(|p| matches!(p, TemplatePart::Text(_))) {
                            self.listed_value(values, &label_text(t), Loc::new(file, s.value.span));
                        }
                    }
                    let literal = match &s.value.kind {
                        ExprKind::Literal(l) => Some(l.clone()),
                        ExprKind::Template(t)
                            if t.parts.iter().all(|p| matches!(p, TemplatePart::Text(_))) =>
                        {
                            Some(Literal::Text(Text {
                                value: label_text(t),
                                span: t.span,
                            }))
                        }
                        _ => None,
                    };
                    // A value the checker could not type already has its own
                    // error (an unquoted `Proposal`); guessing that it could
                    // fire a trigger would add a second, misleading one.
                    if !vt.is_unknown() {
                        info.sets.push((slot, literal, Loc::new(file, s.span)));
                    }
                } else {
                    self.expr(&s.value, scope);
                }
            }
            Action::Pause { span } if scope.block != "if missing" => {
                let loc = Loc::new(file, *span);
                let message = format!("`pause` has no effect in `{}`", scope.block);
                self.warn(
                    Code::H201,
                    loc,
                    message,
                    "does nothing here",
                    "a handoff pauses only when required fields are missing; `pause` belongs in `if missing`",
                );
            }
            Action::Pause { .. } => {}
        }
    }

    /// The span of `attach brief` inside a task, else of the word `task`.
    /// The syntax tree keeps only a flag for it.
    fn attach_span(&self, file: usize, task: Span) -> Span {
        let text = &self.units[file].source.text;
        let body = text.get(task.start..task.end).unwrap_or("");
        // The body follows the title, so the last `attach` is the statement.
        body.rmatch_indices("attach")
            .find(|(i, _)| body[i + 6..].trim_start().starts_with("brief"))
            .and_then(|(i, _)| {
                let rest = &body[i + 6..];
                let brief = rest.find("brief")?;
                Some(Span::new(task.start + i, task.start + i + 6 + brief + 5))
            })
            .unwrap_or_else(|| head(task, "task"))
    }

    /// A reference that must reach a person: a user, a role, or a user/email
    /// field of the record. `what` starts the help: "a task is for".
    fn person(&mut self, r: &Reference, scope: &Scope, what: &str) {
        let e = match &r.field {
            Some(field) => Expr {
                kind: ExprKind::Path(Path {
                    object: r.head.clone(),
                    field: field.clone(),
                    span: r.span,
                }),
                span: r.span,
            },
            None => Expr {
                kind: ExprKind::Name(r.head.clone()),
                span: r.span,
            },
        };
        self.wants_person = true;
        let t = self.expr(&e, scope);
        self.wants_person = false;
        if !t.is_person() {
            let written = match &r.field {
                Some(f) => format!("{}.{}", r.head.name, f.name),
                None => r.head.name.clone(),
            };
            // Point at the person fields the record does have.
            let fields: Vec<String> = scope
                .object
                .map(|i| &self.schema.objects[i])
                .map(|o| {
                    o.fields
                        .iter()
                        .filter(|f| f.ty.is_person())
                        .map(|f| format!("`{}.{}`", o.name, f.name))
                        .collect()
                })
                .unwrap_or_default();
            let such_as = if fields.is_empty() {
                String::new()
            } else {
                format!(" such as {}", fields.join(" or "))
            };
            let d = self
                .diag(
                    Code::H113,
                    Loc::new(scope.file, r.span),
                    format!("`{written}` is {}, not a person", article(&t)),
                    "not a person",
                )
                .with_help(format!(
                    "{what} a user, a role assigned earlier, or a `user`/`email` field{such_as}"
                ));
            self.diagnostics.push(d);
        }
    }

    /// `resume when` that can never be true: a constant false, or a test of
    /// the very field whose value flagged the exception, asking for the value
    /// that cannot coexist with the flag.
    fn resume_never(&mut self, c: &Condition, exceptions: &[&Exception], fi: usize) {
        if is_constant(&c.expr) == Some(false) {
            self.warn(
                Code::H202,
                Loc::new(fi, c.expr.span),
                "`resume when` can never be true: a flagged handoff stays in review until someone approves it by hand".into(),
                "always false",
                "test a field someone sets after review, such as `deal.review_approved is yes`",
            );
            return;
        }
        // `resume when deal.x is no` while every exception requires `deal.x is yes`:
        // the flag and the resume condition exclude each other only if nothing
        // else can change `x`; that is the common mistake of resuming on the
        // flag itself.
        let Some((field, value)) = is_value_test(&c.expr) else {
            return;
        };
        let all_same_flag = !exceptions.is_empty()
            && exceptions.iter().all(|e| match &e.condition {
                ExceptionCondition::Expr(x) => {
                    is_value_test(x).is_some_and(|(f, v)| f == field && v != value)
                }
                ExceptionCondition::Script(_) => false,
            });
        if all_same_flag {
            self.warn(
                Code::H202,
                Loc::new(fi, c.expr.span),
                format!("`resume when` tests `{field}`, the field that flagged the exception: it resumes only if someone undoes the flag"),
                "undoes the flag",
                "resume on a separate approval field, such as `deal.review_approved is yes`",
            );
        }
    }

    fn done_when(&mut self, c: &Condition, trigger: &Trigger, required: &[usize], scope: &Scope) {
        let fi = scope.file;
        if is_constant(&c.expr) == Some(false) {
            self.warn(
                Code::H203,
                Loc::new(fi, c.expr.span),
                "`done when` can never be true: the handoff never finishes".into(),
                "always false",
                "test a field that marks the work as started",
            );
            return;
        }
        if is_constant(&c.expr) == Some(true) {
            self.warn(
                Code::H203,
                Loc::new(fi, c.expr.span),
                "`done when` is always true: the handoff finishes as soon as it starts".into(),
                "always true",
                "test a field that marks the work as started",
            );
            return;
        }
        let trigger_value = match &trigger.event {
            TriggerEvent::Becomes { field, value } => Some((field, value)),
            TriggerEvent::Changes {
                field,
                to: Some(value),
                ..
            } => Some((field, value)),
            _ => None,
        };
        if let (Some((field, value)), Some((tf, tv))) = (is_value_test(&c.expr), trigger_value) {
            if field == format!("{}.{}", tf.object.name, tf.field.name) && value == literal_key(tv)
            {
                self.warn(
                    Code::H203,
                    Loc::new(fi, c.expr.span),
                    "`done when` is already true when the handoff starts: it tests the trigger's own value".into(),
                    "true at the trigger",
                    "test a field that marks the next step as done, such as `deal.kickoff_scheduled_at is set`",
                );
                return;
            }
        }
        // `done when deal.x is set` with `x` in `require`: the handoff acts
        // only once every required field is set, so it would be done at once.
        if let Some((slot, path)) = self.is_set_test(&c.expr, scope) {
            if required.contains(&slot) {
                self.warn(
                    Code::H203,
                    Loc::new(fi, c.expr.span),
                    format!("`done when` is already true when the handoff starts: `{path}` is required, so it is set before any action runs"),
                    "true once the gate passes",
                    "test a field the next owner fills in, such as `deal.kickoff_scheduled_at is set`",
                );
            }
        }
    }

    /// `OBJ.FIELD is set` (or `is not missing`) on the handoff's record, as
    /// (slot, "OBJ.FIELD").
    fn is_set_test(&self, e: &Expr, scope: &Scope) -> Option<(usize, String)> {
        match &e.kind {
            ExprKind::Paren(x) => self.is_set_test(x, scope),
            ExprKind::Is {
                subject,
                negated,
                test,
            } if matches!(
                (negated, test),
                (false, IsTest::Set) | (true, IsTest::Missing)
            ) =>
            {
                let ExprKind::Path(p) = &subject.kind else {
                    return None;
                };
                let object = &self.schema.objects[scope.object?];
                if object.name != p.object.name {
                    return None;
                }
                Some((
                    object.slot(&p.field.name)?,
                    format!("{}.{}", p.object.name, p.field.name),
                ))
            }
            _ => None,
        }
    }

    /// Unused users, teams and channels.
    pub(super) fn unused(&mut self) {
        let mut unused: Vec<(&'static str, String, Loc)> = self
            .declared
            .iter()
            .filter(|((kind, _), _)| matches!(*kind, "user" | "team" | "channel"))
            .filter(|(key, _)| !self.used.contains(*key))
            .map(|((kind, name), loc)| (*kind, name.clone(), *loc))
            .collect();
        unused.sort_by_key(|(_, _, loc)| (loc.file, loc.span.start));
        for (kind, name, loc) in unused {
            self.warn(
                Code::H204,
                loc,
                format!("{kind} `{name}` is never used"),
                "unused",
                "use it in a handoff or delete it",
            );
        }
    }
}

/// What one block of a handoff needs to know about the rest of it.
struct Shape<'h> {
    /// The `exception` lines, in order.
    exceptions: Vec<&'h Exception>,
    has_require: bool,
    has_on_exception: bool,
    /// Actions may attach the brief only when there is one.
    has_brief: bool,
    /// Roles the `then` blocks assign: the brief may name them.
    then_roles: HashSet<String>,
}

impl<'h> Shape<'h> {
    fn of(h: &'h HandoffDecl) -> Self {
        let items = &h.items;
        Shape {
            exceptions: items
                .iter()
                .filter_map(|i| match i {
                    HandoffItem::Exception(e) => Some(e),
                    _ => None,
                })
                .collect(),
            has_require: items.iter().any(|i| matches!(i, HandoffItem::Require(_))),
            has_on_exception: items
                .iter()
                .any(|i| matches!(i, HandoffItem::OnException(_))),
            has_brief: items.iter().any(|i| matches!(i, HandoffItem::Brief(_))),
            then_roles: assigned_roles(
                items
                    .iter()
                    .filter_map(|i| match i {
                        HandoffItem::Then(b) => Some(b.actions.iter()),
                        _ => None,
                    })
                    .flatten(),
            ),
        }
    }
}

/// The object a trigger watches, as written.
fn trigger_object(trigger: &Trigger) -> &Ident {
    match &trigger.event {
        TriggerEvent::Created { object } => object,
        TriggerEvent::Becomes { field, .. } | TriggerEvent::Changes { field, .. } => &field.object,
    }
}

/// The scope every block of the handoff starts from: its file and object,
/// no roles yet, and every role assignment (to explain a role used before
/// it is assigned).
fn base_scope(fi: usize, h: &HandoffDecl, object: Option<usize>, object_ident: &Ident) -> Scope {
    let mut assigned: HashMap<String, Vec<(&'static str, Span)>> = HashMap::new();
    for item in &h.items {
        for a in block_actions(item) {
            if let (Action::Assign(a), Some(block)) = (a, block_name(item)) {
                assigned
                    .entry(a.role.name.clone())
                    .or_default()
                    .push((block, a.role.span));
            }
        }
    }
    Scope {
        file: fi,
        object,
        object_name: object_ident.name.clone(),
        roles: HashSet::new(),
        assigned,
        block: "",
        missing: false,
        exception: false,
    }
}

/// The name of a block of actions, as written.
fn block_name(item: &HandoffItem) -> Option<&'static str> {
    match item {
        HandoffItem::IfMissing(_) => Some("if missing"),
        HandoffItem::Then(_) => Some("then"),
        HandoffItem::OnException(_) => Some("on exception"),
        _ => None,
    }
}

/// A value of type `t` as it is written, for help text.
fn value_example(t: &Type) -> String {
    match t {
        Type::Number | Type::Money => "50000".to_string(),
        Type::Date => "2026-12-31".to_string(),
        Type::DateTime => "2026-12-31T09:00".to_string(),
        Type::YesNo => "`yes` or `no`".to_string(),
        Type::OneOf(values) => values
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "\"some text\"".to_string(),
    }
}

fn block_actions(item: &HandoffItem) -> Box<dyn Iterator<Item = &Action> + '_> {
    match item {
        HandoffItem::IfMissing(b) | HandoffItem::Then(b) => Box::new(b.actions.iter()),
        HandoffItem::OnException(o) => Box::new(o.items.iter().filter_map(|i| match i {
            OnExceptionItem::Action(a) => Some(a),
            OnExceptionItem::ResumeWhen(_) => None,
        })),
        _ => Box::new(std::iter::empty()),
    }
}

fn assigned_roles<'a>(actions: impl Iterator<Item = &'a Action>) -> HashSet<String> {
    actions
        .filter_map(|a| match a {
            Action::Assign(a) => Some(a.role.name.clone()),
            _ => None,
        })
        .collect()
}

/// The span of a statement's leading keywords, for pointing at a statement
/// without underlining its whole block.
fn head(span: Span, keywords: &str) -> Span {
    Span::new(span.start, (span.start + keywords.len()).min(span.end))
}

/// The text of a template's literal parts.
fn label_text(t: &Template) -> String {
    t.parts
        .iter()
        .map(|p| match p {
            TemplatePart::Text(s) => s.clone(),
            TemplatePart::Expr(_) => "{…}".to_string(),
        })
        .collect()
}

/// The value of a condition that does not depend on the record.
pub(crate) fn is_constant(e: &Expr) -> Option<bool> {
    match &e.kind {
        ExprKind::Literal(Literal::Bool { value, .. }) => Some(*value),
        ExprKind::Paren(x) => is_constant(x),
        ExprKind::Not(x) => is_constant(x).map(|b| !b),
        ExprKind::Binary { op, lhs, rhs } => {
            let (l, r) = (is_constant(lhs), is_constant(rhs));
            match op {
                BinaryOp::And => match (l, r) {
                    (Some(false), _) | (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                },
                BinaryOp::Or => match (l, r) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                },
                _ => {
                    let (a, b) = (number(lhs)?, number(rhs)?);
                    Some(match op {
                        BinaryOp::Eq => a == b,
                        BinaryOp::Ne => a != b,
                        BinaryOp::Lt => a < b,
                        BinaryOp::Le => a <= b,
                        BinaryOp::Gt => a > b,
                        BinaryOp::Ge => a >= b,
                        _ => return None,
                    })
                }
            }
        }
        _ => None,
    }
}

fn number(e: &Expr) -> Option<rust_decimal::Decimal> {
    match &e.kind {
        ExprKind::Literal(Literal::Number { value, .. }) => Some(*value),
        ExprKind::Paren(x) => number(x),
        _ => None,
    }
}

/// `OBJ.FIELD is VALUE` (or `== VALUE`), as ("OBJ.FIELD", value key).
fn is_value_test(e: &Expr) -> Option<(String, String)> {
    let (subject, value) = match &e.kind {
        ExprKind::Is {
            subject,
            negated: false,
            test: IsTest::Value(v),
        } => (subject, v),
        ExprKind::Binary {
            op: BinaryOp::Eq,
            lhs,
            rhs,
        } => (lhs, rhs),
        ExprKind::Paren(x) => return is_value_test(x),
        _ => return None,
    };
    let ExprKind::Path(p) = &subject.kind else {
        return None;
    };
    let key = value_key(value)?;
    Some((format!("{}.{}", p.object.name, p.field.name), key))
}

/// A literal value (or plain string) as a comparable key, else `None`.
pub(crate) fn value_key(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Literal(l) => Some(literal_key(l)),
        ExprKind::Template(t) if t.parts.iter().all(|p| matches!(p, TemplatePart::Text(_))) => {
            Some(format!("text:{}", label_text(t)))
        }
        ExprKind::Paren(x) => value_key(x),
        _ => None,
    }
}

/// A literal as a comparable key: `text:Closed Won`, `bool:true`.
pub(crate) fn literal_key(l: &Literal) -> String {
    match l {
        Literal::Text(t) => format!("text:{}", t.value),
        Literal::Number { value, .. } => format!("number:{}", value.normalize()),
        Literal::Bool { value, .. } => format!("bool:{value}"),
        Literal::Date(d) => format!("date:{}-{}-{}", d.year, d.month, d.day),
        Literal::DateTime { text, .. } => format!("datetime:{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::name_key;

    #[test]
    fn names_differing_only_in_case_or_spacing_have_one_key() {
        for (a, b) in [
            ("Sales to Delivery", "sales  to delivery"),
            ("Straße Team", "STRASSE TEAM"),
            ("Straße Team", "Straẞe team"),
            ("ΟΔΟΣ", "οδος"),
            ("ΟΔΟΣ", "οδοσ"),
        ] {
            assert_eq!(name_key(a), name_key(b), "{a} / {b}");
        }
        assert_ne!(
            name_key("Sales to Delivery"),
            name_key("Sales to Delivery 2")
        );
        assert_ne!(name_key("Strase"), name_key("Straße"));
    }
}
