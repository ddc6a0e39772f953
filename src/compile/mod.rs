//! Stage three: a checked project → [`WorkflowSet`], the immutable form the
//! interpreter runs. Names are resolved to slots, expressions and scripts are
//! compiled once, each handoff gets its workflow graph.
//!
//! A `WorkflowSet` is cheap to clone (one `Arc`) and is swapped whole when the
//! rules are reloaded; nothing in it changes after compilation.

mod calendar;
mod expr;
pub mod graph;

use std::sync::Arc;

use crate::check::{Checked, Directory, ObjectSchema, Schema};
use crate::syntax::{
    Action, AssignSource, BriefItem, ExceptionCondition, HandoffItem, NotifyTarget,
    OnExceptionItem, Strategy, TriggerEvent,
};
use crate::value::{Duration, Value};

pub use calendar::Calendar;
pub use expr::{literal, parse_datetime, CExpr, CIsTest, CPart, CTemplate, Cond, PersonRef};
pub use graph::WorkflowGraph;

/// Why a checked project could not be compiled.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CompileError {
    /// A script that compiled at check time failed now (cannot happen unless
    /// the sandbox changed between the two).
    #[error("script for exception \"{exception}\" in \"{handoff}\" does not compile: {reason}")]
    #[diagnostic(code(compile::script))]
    Script {
        handoff: String,
        exception: String,
        reason: String,
    },
}

/// The compiled rules of a project.
#[derive(Debug, Clone)]
pub struct WorkflowSet {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    schema: Schema,
    directory: Directory,
    calendar: Calendar,
    handoffs: Vec<CompiledHandoff>,
    cascade: crate::check::CascadeGraph,
    engine: rhai::Engine,
    version: String,
}

impl WorkflowSet {
    /// The record types.
    pub fn schema(&self) -> &Schema {
        &self.inner.schema
    }
    /// Users, teams and channels.
    pub fn directory(&self) -> &Directory {
        &self.inner.directory
    }
    /// Working time for business durations.
    pub fn calendar(&self) -> &Calendar {
        &self.inner.calendar
    }
    /// Every handoff, in project order.
    pub fn handoffs(&self) -> &[CompiledHandoff] {
        &self.inner.handoffs
    }
    /// The handoff called `name`.
    pub fn handoff(&self, name: &str) -> Option<&CompiledHandoff> {
        self.inner.handoffs.iter().find(|h| h.name == name)
    }
    /// Which handoffs can fire which (node weights index [`Self::handoffs`]).
    pub fn cascade(&self) -> &crate::check::CascadeGraph {
        &self.inner.cascade
    }
    /// The rhai engine scripts run in.
    pub fn engine(&self) -> &rhai::Engine {
        &self.inner.engine
    }
    /// The content id of this set: a SHA-256 (hex) of its source texts in
    /// load order. Two sets with the same id compiled the same text, so an
    /// event decoded by one may be stepped by the other; a reload that
    /// changes anything (even only the order of files) changes the id.
    pub fn version(&self) -> &str {
        &self.inner.version
    }
    /// The object schema called `name`.
    pub fn object(&self, name: &str) -> Option<&ObjectSchema> {
        self.inner.schema.object(name)
    }
}

/// One compiled handoff.
#[derive(Debug, Clone)]
pub struct CompiledHandoff {
    pub name: String,
    /// Index of the object in the schema.
    pub object: usize,
    pub object_name: String,
    pub trigger: Trigger,
    /// Required slots, in the order written.
    pub require: Vec<usize>,
    /// Runs when required fields are missing.
    pub if_missing: Vec<CAction>,
    pub exceptions: Vec<ExceptionTest>,
    pub on_exception: Vec<CAction>,
    pub resume_when: Option<Cond>,
    pub brief: Brief,
    pub then: Vec<CAction>,
    pub done_when: Option<Cond>,
    /// `escalate when`: once the handoff went down the normal path, the
    /// condition becoming true records an escalation.
    pub escalate_when: Option<Cond>,
    pub graph: WorkflowGraph,
    /// The file the handoff is declared in.
    pub file: String,
}

/// What fires a handoff.
#[derive(Debug, Clone)]
pub struct Trigger {
    pub event: TriggerKind,
    pub filter: Option<Cond>,
    /// The trigger as written, for traces.
    pub text: String,
}

/// The kinds of trigger.
#[derive(Debug, Clone)]
pub enum TriggerKind {
    Created,
    Becomes {
        slot: usize,
        value: Value,
    },
    Changes {
        slot: usize,
        from: Option<Value>,
        to: Option<Value>,
    },
}

/// An exception flag.
#[derive(Debug, Clone)]
pub struct ExceptionTest {
    pub name: String,
    pub test: ExceptionKind,
}

/// How an exception is tested.
#[derive(Debug, Clone)]
pub enum ExceptionKind {
    Expr(Cond),
    Script {
        ast: Arc<rhai::AST>,
        text: String,
        /// The slots the script reads as `OBJECT.FIELD`, each once, in the
        /// order first written: the trace shows their values, and a script
        /// does not run while one of them is empty.
        reads: Vec<usize>,
    },
}

/// The brief: fields pulled from the record, and questions for a person.
#[derive(Debug, Clone, Default)]
pub struct Brief {
    pub fields: Vec<(CTemplate, CExpr)>,
    pub asks: Vec<CTemplate>,
}

/// A compiled action.
#[derive(Debug, Clone)]
pub enum CAction {
    Assign {
        role: String,
        from: AssignFrom,
    },
    Task {
        title: CTemplate,
        assignee: PersonRef,
        due: Option<Duration>,
        checklist: Vec<CTemplate>,
        attach_brief: bool,
    },
    Notify {
        to: NotifyTo,
        message: CTemplate,
    },
    EmailDraft {
        to: PersonRef,
        subject: CTemplate,
        body: CTemplate,
    },
    Set {
        slot: usize,
        value: CExpr,
    },
    Pause,
}

/// Where an assignment picks its person.
#[derive(Debug, Clone)]
pub enum AssignFrom {
    Team {
        team: String,
        members: Vec<String>,
        strategy: Strategy,
    },
    Person(PersonRef),
}

/// Who a notification goes to.
#[derive(Debug, Clone)]
pub enum NotifyTo {
    Channel { name: String, target: String },
    Person(PersonRef),
}

/// Compiles a checked project.
pub fn compile(checked: &Checked) -> Result<WorkflowSet, CompileError> {
    let engine = crate::script::engine();
    let mut handoffs = Vec::new();
    for info in &checked.handoffs {
        let decl = checked.handoff_decl(info);
        let unit = &checked.units[info.unit];
        let object = &checked.schema.objects[info.object];
        let lower = expr::Lower {
            object,
            directory: &checked.directory,
            source: &unit.source.text,
        };
        let mut h = CompiledHandoff {
            name: info.name.clone(),
            object: info.object,
            object_name: object.name.clone(),
            trigger: Trigger {
                event: TriggerKind::Created,
                filter: None,
                text: String::new(),
            },
            require: Vec::new(),
            if_missing: default_if_missing(object),
            exceptions: Vec::new(),
            on_exception: Vec::new(),
            resume_when: None,
            brief: Brief::default(),
            then: Vec::new(),
            done_when: None,
            escalate_when: None,
            graph: WorkflowGraph::default(),
            file: unit.source.name.clone(),
        };
        for item in &decl.items {
            match item {
                HandoffItem::Trigger(t) => {
                    let src = unit.source.text.as_str();
                    // The trigger as written, without its `where` filter.
                    let end = t.filter.as_ref().map_or(t.span.end, |f| f.span.start);
                    let text = expr::as_written(src.get(t.span.start..end).unwrap_or_default());
                    let text = match &t.filter {
                        Some(_) => text.trim_end_matches("where").trim_end().to_string(),
                        None => text,
                    };
                    h.trigger = Trigger {
                        event: match &t.event {
                            TriggerEvent::Created { .. } => TriggerKind::Created,
                            TriggerEvent::Becomes { field, value } => TriggerKind::Becomes {
                                slot: slot(object, &field.field.name),
                                value: literal(value),
                            },
                            TriggerEvent::Changes { field, from, to } => TriggerKind::Changes {
                                slot: slot(object, &field.field.name),
                                from: from.as_ref().map(literal),
                                to: to.as_ref().map(literal),
                            },
                        },
                        filter: t.filter.as_ref().map(|f| lower.cond(f)),
                        text,
                    };
                }
                HandoffItem::Require(r) => {
                    for f in &r.fields {
                        let name = f.field.as_ref().unwrap_or(&f.head);
                        let s = slot(object, &name.name);
                        if !h.require.contains(&s) {
                            h.require.push(s);
                        }
                    }
                }
                HandoffItem::IfMissing(b) => h.if_missing = actions(&lower, &b.actions),
                HandoffItem::Exception(e) => {
                    let test = match &e.condition {
                        ExceptionCondition::Expr(x) => ExceptionKind::Expr(lower.cond(x)),
                        ExceptionCondition::Script(s) => {
                            let ast = crate::script::compile(&engine, &object.name, &s.source)
                                .map_err(|err| CompileError::Script {
                                    handoff: info.name.clone(),
                                    exception: e.name.value.clone(),
                                    reason: err.to_string(),
                                })?;
                            ExceptionKind::Script {
                                reads: script_reads(&ast, object),
                                ast: Arc::new(ast),
                                text: s.source.trim().to_string(),
                            }
                        }
                    };
                    h.exceptions.push(ExceptionTest {
                        name: e.name.value.clone(),
                        test,
                    });
                }
                HandoffItem::OnException(o) => {
                    for it in &o.items {
                        match it {
                            OnExceptionItem::Action(a) => h.on_exception.push(action(&lower, a)),
                            OnExceptionItem::ResumeWhen(c) => {
                                h.resume_when = Some(lower.cond(&c.expr))
                            }
                        }
                    }
                }
                HandoffItem::Brief(b) => {
                    for it in &b.items {
                        match it {
                            BriefItem::Field { label, value, .. } => h
                                .brief
                                .fields
                                .push((lower.template(label), lower.expr(value))),
                            BriefItem::Ask { question, .. } => {
                                h.brief.asks.push(lower.template(question))
                            }
                        }
                    }
                }
                HandoffItem::Then(b) => h.then = actions(&lower, &b.actions),
                HandoffItem::DoneWhen(c) => h.done_when = Some(lower.cond(&c.expr)),
                HandoffItem::EscalateWhen(c) => h.escalate_when = Some(lower.cond(&c.expr)),
            }
        }
        h.graph = graph::build(&h, object);
        handoffs.push(h);
    }
    let calendar = checked
        .directory
        .calendar
        .as_ref()
        .map_or_else(Calendar::default, Calendar::from_checked);
    Ok(WorkflowSet {
        inner: Arc::new(Inner {
            schema: checked.schema.clone(),
            directory: checked.directory.clone(),
            calendar,
            handoffs,
            cascade: checked.cascade.clone(),
            engine,
            version: content_id(checked),
        }),
    })
}

/// The slots a compiled script reads, each once, first read first. Fields
/// the object does not declare are left out: the checker refuses them
/// (H117) before anything compiles.
fn script_reads(ast: &rhai::AST, object: &ObjectSchema) -> Vec<usize> {
    let mut slots = Vec::new();
    for (field, _) in crate::script::uses(ast, &object.name).fields {
        if let Some(s) = object.slot(&field) {
            if !slots.contains(&s) {
                slots.push(s);
            }
        }
    }
    slots
}

/// The SHA-256 of the sources' texts in load order, each prefixed by its
/// length so that moving text between files changes the id.
fn content_id(checked: &Checked) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write as _;
    let mut hash = Sha256::new();
    for unit in &checked.units {
        hash.update((unit.source.text.len() as u64).to_le_bytes());
        hash.update(unit.source.text.as_bytes());
    }
    let mut hex = String::with_capacity(64);
    for b in hash.finalize() {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn slot(object: &ObjectSchema, name: &str) -> usize {
    // The checker resolved every name; usize::MAX would read as absent.
    object.slot(name).unwrap_or(usize::MAX)
}

/// Without an `if missing` block a handoff pauses and, when the object has
/// an `owner` field of type `user` or `email`, tells the owner what to fill in.
fn default_if_missing(object: &ObjectSchema) -> Vec<CAction> {
    let mut out = vec![CAction::Pause];
    let reachable = object
        .field("owner")
        .is_some_and(|f| matches!(f.ty, crate::check::Type::User | crate::check::Type::Email));
    if let Some(slot) = object.slot("owner").filter(|_| reachable) {
        out.push(CAction::Notify {
            to: NotifyTo::Person(PersonRef::Field(slot)),
            message: CTemplate {
                parts: vec![
                    CPart::Text("This handoff is paused. Please fill in: ".into()),
                    CPart::Expr(CExpr::Missing),
                    CPart::Text(".".into()),
                ],
            },
        });
    }
    out
}

fn actions(lower: &expr::Lower<'_>, list: &[Action]) -> Vec<CAction> {
    list.iter().map(|a| action(lower, a)).collect()
}

fn action(lower: &expr::Lower<'_>, a: &Action) -> CAction {
    match a {
        Action::Assign(a) => CAction::Assign {
            role: a.role.name.clone(),
            from: match &a.source {
                AssignSource::Team { team, strategy } => AssignFrom::Team {
                    team: team.name.clone(),
                    members: lower
                        .directory
                        .teams
                        .get(&team.name)
                        .map(|t| t.value.clone())
                        .unwrap_or_default(),
                    strategy: *strategy,
                },
                AssignSource::To(r) => AssignFrom::Person(lower.person(r)),
            },
        },
        Action::Task(t) => CAction::Task {
            title: lower.template(&t.title),
            assignee: lower.person(&t.assignee),
            due: t.due.as_ref().map(|d| Duration {
                amount: d.amount,
                business: d.business,
                unit: d.unit,
            }),
            checklist: t.checklist.iter().map(|c| lower.template(c)).collect(),
            attach_brief: t.attach_brief,
        },
        Action::Notify(n) => CAction::Notify {
            to: match &n.target {
                NotifyTarget::Channel(c) => NotifyTo::Channel {
                    name: c.name.clone(),
                    target: lower
                        .directory
                        .channels
                        .get(&c.name)
                        .map(|c| c.value.clone())
                        .unwrap_or_default(),
                },
                NotifyTarget::Person(r) => NotifyTo::Person(lower.person(r)),
            },
            message: lower.template(&n.message),
        },
        Action::DraftEmail(d) => CAction::EmailDraft {
            to: lower.person(&d.to),
            subject: lower.template(&d.subject),
            body: lower.template(&d.body),
        },
        Action::Set(s) => CAction::Set {
            slot: slot(lower.object, &s.field.field.name),
            value: lower.expr(&s.value),
        },
        Action::Pause { .. } => CAction::Pause,
    }
}

/// Loads, checks and compiles the project under `paths`: the one call an
/// embedder needs. Returns the diagnostics when the project has errors.
pub fn load(
    paths: &[std::path::PathBuf],
) -> Result<(WorkflowSet, Vec<crate::diagnostic::Diagnostic>), LoadFailure> {
    let loaded = crate::project::load(paths);
    if !loaded.errors.is_empty() {
        return Err(LoadFailure::Io(loaded.errors));
    }
    load_sources(&loaded.sources)
}

/// Checks and compiles sources already in memory (a file watcher hands over
/// what it read, so what is compiled is exactly what was read).
pub fn load_sources(
    sources: &[std::sync::Arc<crate::diagnostic::SourceFile>],
) -> Result<(WorkflowSet, Vec<crate::diagnostic::Diagnostic>), LoadFailure> {
    let analysis = crate::check::analyze(sources);
    match analysis.checked {
        Some(checked) => {
            let set = compile(&checked).map_err(LoadFailure::Compile)?;
            Ok((set, analysis.diagnostics))
        }
        None => Err(LoadFailure::Invalid(analysis.diagnostics)),
    }
}

/// Why [`load`] produced no workflow set.
#[derive(Debug, thiserror::Error)]
pub enum LoadFailure {
    /// Files could not be read.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Io(Vec<crate::project::LoadError>),
    /// The project has errors.
    #[error("the workflows have {} problem(s); run `handoff check` to see them", .0.len())]
    Invalid(Vec<crate::diagnostic::Diagnostic>),
    /// Compilation failed.
    #[error(transparent)]
    Compile(CompileError),
}

#[cfg(test)]
mod version_tests {
    use crate::diagnostic::SourceFile;

    const A: &str = "object deal {\n  name: text\n}\n";
    const B: &str = "object lead {\n  name: text\n}\n";

    fn version(files: &[(&str, &str)]) -> String {
        let sources: Vec<_> = files.iter().map(|(n, t)| SourceFile::new(*n, *t)).collect();
        super::load_sources(&sources)
            .unwrap()
            .0
            .version()
            .to_string()
    }

    #[test]
    fn the_version_is_a_hash_of_the_texts_in_load_order() {
        let ab = version(&[("a.handoff", A), ("b.handoff", B)]);
        assert_eq!(ab.len(), 64);
        assert_eq!(ab, version(&[("a.handoff", A), ("b.handoff", B)]));
        // Same text, other order: objects get other indices, so another id.
        assert_ne!(ab, version(&[("b.handoff", B), ("a.handoff", A)]));
        assert_ne!(
            ab,
            version(&[("a.handoff", A), ("b.handoff", &B.replace("name", "nom"))])
        );
    }
}
