//! Evaluating events: our engine side by side with its baselines.
//!
//! The rule is "Sales to Delivery" (trigger `deal.stage becomes "Closed Won"
//! where deal.amount > 0`, 8 required fields, the exceptions "Custom Scope"
//! and "Needs Founder Review"), over a 31-field deal record. The fixture
//! project is `benches/fixtures/eval/`: copies of `workflows/` whose deal has
//! 15 more fields and whose rhai-script exception ("Delivery Risk") is
//! dropped, so every contender evaluates the same two expression exceptions.
//! The `script_exception` group measures the cost of keeping it.
//!
//! Contenders, each given the same event in its own pre-parsed form:
//! - `ours_full`: [`eval::step_owned`] on the decoded [`Event`] with a fresh state;
//!   the whole outcome: lifecycle, explain trace, action plan, brief. The
//!   event is given by value, as a server that decoded it does (its values
//!   move into the record's new state); each timed event gets its own copy,
//!   made outside the timing and the count.
//! - `ours_full_ref`: the same with the event borrowed (`&event`), as the
//!   server's ingest steps it: the values are copied into the new state.
//! - `ours_decision`: our compiled trigger, filter, require list and
//!   exception expressions evaluated with [`Ctx`] on the decoded event: the
//!   decision alone (status, missing fields, flagged exceptions), no trace,
//!   no plan, no state.
//! - `hand_written`: a Rust function making the same decision over the same
//!   decoded typed record (the practical limit).
//! - `rhai`: the same rule as one rhai script, compiled once, run per event
//!   with the record as a rhai map in scope (built once, outside the timing).
//! - `rhai_unrolled`: the same, written the way a rhai user would: each
//!   required field tested in its own `if`, no helper function or loop.
//! - `datalogic`: the same rule as one JSONLogic rule in `datalogic-rs`,
//!   compiled once, run per event on the event parsed once into its arena
//!   form (`ParsedData`, outside the timing).
//!
//! Before timing, every contender's decision is checked equal on four
//! scenarios (proceeded, review, paused, not triggered). Each timed event
//! goes through [`per_event`], which callgrind counts (benches/README.md).
//!
//! Run: `cargo bench --bench eval -- --warm-up-time 1 --measurement-time 5`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

/// The allocator the `handoff` binary ships (feature `cli`, on by default),
/// so every contender here allocates as it would there. Built with
/// `--no-default-features` the bench uses the system allocator: the
/// "Allocator" table in benches/README.md has both.
#[cfg(feature = "cli")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use handoff::compile::{ExceptionKind, TriggerKind, WorkflowSet};
use handoff::eval::{self, equal, Ctx, Event, OutcomeStatus, Record, State};
use handoff::value::{Decimal, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/fixtures");

const REQUIRED: [&str; 8] = [
    "buyer_goals",
    "main_contact",
    "signed_scope",
    "start_date",
    "promised_deliverables",
    "pricing_exceptions",
    "risk_notes",
    "kickoff_preference",
];

fn load(paths: &[&str]) -> WorkflowSet {
    let paths: Vec<PathBuf> = paths
        .iter()
        .map(|p| PathBuf::from(FIXTURES).join(p))
        .collect();
    match handoff::compile::load(&paths) {
        Ok((set, _warnings)) => set,
        Err(e) => panic!("the bench fixture does not load: {e:?}"),
    }
}

/// The event JSON of each scenario: the fixture event, varied.
fn scenarios() -> Vec<(&'static str, String)> {
    let text = std::fs::read_to_string(format!("{FIXTURES}/eval/closed_won.json")).unwrap();
    let base: serde_json::Value = serde_json::from_str(&text).unwrap();
    let vary = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut v = base.clone();
        f(&mut v);
        serde_json::to_string(&v).unwrap()
    };
    vec![
        ("proceeded", text.clone()),
        (
            "review",
            vary(&|v| {
                v["record"]["amount"] = 80000.into();
                v["record"]["segment"] = "enterprise".into();
            }),
        ),
        (
            "paused",
            vary(&|v| {
                v["record"]["risk_notes"] = "  ".into();
                v["record"]
                    .as_object_mut()
                    .unwrap()
                    .remove("kickoff_preference");
            }),
        ),
        (
            "not_triggered",
            vary(&|v| v["previous"]["stage"] = "Closed Won".into()),
        ),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    NotTriggered,
    Paused,
    Review,
    Proceeded,
}

/// What every contender decides: the status, the missing required fields
/// and the flagged exceptions.
#[derive(Debug, PartialEq)]
struct Decision<'a> {
    status: Status,
    missing: Vec<&'a str>,
    exceptions: Vec<&'a str>,
}

impl<'a> Decision<'a> {
    fn status(status: Status) -> Self {
        Decision {
            status,
            missing: Vec::new(),
            exceptions: Vec::new(),
        }
    }
}

fn now() -> jiff::Timestamp {
    "2026-11-20T15:04:05Z".parse().unwrap()
}

// ---------------------------------------------------------------- ours

fn ours_full(set: &WorkflowSet, ev: &Event) -> (eval::RecordState, eval::Outcome) {
    full_step(set, ev.clone(), now())
}

/// The product path for one event on a new record: the record's new state
/// and the whole outcome, assignment memory in memory. The event is taken
/// by value, as a server holding the event it decoded gives it.
fn full_step(
    set: &WorkflowSet,
    ev: Event,
    now: jiff::Timestamp,
) -> (eval::RecordState, eval::Outcome) {
    let mut assign = eval::MemoryAssignments::default();
    eval::step_owned(set, None, ev, now, &mut assign).expect("same version")
}

/// The same with the event borrowed (as `runtime::ingest` gives it, which
/// keeps the event to store it): the values are copied into the new state.
fn full_step_ref(
    set: &WorkflowSet,
    ev: &Event,
    now: jiff::Timestamp,
) -> (eval::RecordState, eval::Outcome) {
    let mut assign = eval::MemoryAssignments::default();
    eval::step(set, None, ev, now, &mut assign).expect("same version")
}

fn outcome_decision(o: &eval::Outcome) -> Decision<'_> {
    let h = &o.handoffs[0];
    Decision {
        status: match h.status {
            OutcomeStatus::NotTriggered => Status::NotTriggered,
            OutcomeStatus::Paused => Status::Paused,
            OutcomeStatus::Review => Status::Review,
            OutcomeStatus::Proceeded => Status::Proceeded,
            other => panic!("unexpected status {other:?}"),
        },
        missing: h.missing.iter().map(String::as_str).collect(),
        exceptions: h.exceptions.iter().map(String::as_str).collect(),
    }
}

/// The decision alone, from our compiled rule: the same record view,
/// trigger, filter, gate and exception expressions `step` evaluates.
fn ours_decision<'s>(set: &'s WorkflowSet, ev: &Event, now: jiff::Timestamp) -> Decision<'s> {
    let h = &set.handoffs()[0];
    let object = &set.schema().objects[ev.object_index];
    // A fresh state has no snapshot: before = `previous`, after = `record`,
    // both read in place as `step` reads them.
    let before = Record {
        overlay: &ev.previous,
        base: &[],
    };
    let after = Record {
        overlay: &ev.record,
        base: &[],
    };
    let fired = match &h.trigger.event {
        TriggerKind::Becomes { slot, value } => {
            let tz = set.calendar().timezone();
            !equal(tz, before.get(*slot), value) && equal(tz, after.get(*slot), value)
        }
        _ => unreachable!("the fixture's trigger is `becomes`"),
    };
    static NO_ROLES: BTreeMap<String, String> = BTreeMap::new();
    let ctx = Ctx {
        record: after,
        now,
        calendar: set.calendar(),
        roles: &NO_ROLES,
        missing: &[],
        exceptions: &[],
    };
    if !fired || !h.trigger.filter.as_ref().is_none_or(|f| ctx.truth(&f.expr)) {
        return Decision::status(Status::NotTriggered);
    }
    let missing = after.missing(&h.require);
    if !missing.is_empty() {
        return Decision {
            missing: missing
                .into_iter()
                .map(|s| object.fields[s].name.as_str())
                .collect(),
            ..Decision::status(Status::Paused)
        };
    }
    let mut exceptions = Vec::new();
    for e in &h.exceptions {
        let flagged = match &e.test {
            ExceptionKind::Expr(c) => ctx.truth(&c.expr),
            ExceptionKind::Script { .. } => unreachable!("the fixture has no script"),
        };
        if flagged {
            exceptions.push(e.name.as_str());
        }
    }
    if !exceptions.is_empty() {
        return Decision {
            exceptions,
            ..Decision::status(Status::Review)
        };
    }
    Decision::status(Status::Proceeded)
}

// ---------------------------------------------------------------- hand-written

/// Slots of the fields the rule reads, resolved once.
struct Slots {
    stage: usize,
    amount: usize,
    segment: usize,
    custom_scope: usize,
    require: [usize; 8],
}

impl Slots {
    fn new(set: &WorkflowSet) -> Slots {
        let deal = set.object("deal").unwrap();
        let slot = |n: &str| deal.slot(n).unwrap();
        Slots {
            stage: slot("stage"),
            amount: slot("amount"),
            segment: slot("segment"),
            custom_scope: slot("custom_scope"),
            require: REQUIRED.map(slot),
        }
    }
}

fn hand_written(ev: &Event, s: &Slots) -> Decision<'static> {
    const WON: &str = "Closed Won";
    let won = |v: Option<&Value>| matches!(v, Some(Value::Text(t)) if t == WON);
    // A fresh state has no snapshot: the record after the event is what the
    // event carries.
    let after = |slot: usize| ev.record[slot].as_ref();
    if won(ev.previous[s.stage].as_ref()) || !won(after(s.stage)) {
        return Decision::status(Status::NotTriggered);
    }
    // `amount` is money: the same exact decimal the engine compares.
    const FOUNDER_REVIEW: Decimal = Decimal::from_parts(50000, 0, 0, false, 0);
    let amount = match after(s.amount) {
        Some(Value::Money(n)) => Some(*n),
        _ => None,
    };
    if amount.is_none_or(|a| a <= Decimal::ZERO) {
        return Decision::status(Status::NotTriggered);
    }
    let mut missing = Vec::new();
    for (&slot, name) in s.require.iter().zip(REQUIRED) {
        let blank = match after(slot) {
            None | Some(Value::Null) => true,
            // Whitespace only, stopping at the first letter.
            Some(Value::Text(t)) => t.chars().all(char::is_whitespace),
            Some(Value::List(l)) => l.is_empty(),
            Some(_) => false,
        };
        if blank {
            missing.push(name);
        }
    }
    if !missing.is_empty() {
        return Decision {
            missing,
            ..Decision::status(Status::Paused)
        };
    }
    let mut exceptions = Vec::new();
    if matches!(after(s.custom_scope), Some(Value::Bool(true))) {
        exceptions.push("Custom Scope");
    }
    if amount.is_some_and(|a| a > FOUNDER_REVIEW)
        && matches!(after(s.segment), Some(Value::Text(t)) if t == "enterprise")
    {
        exceptions.push("Needs Founder Review");
    }
    if !exceptions.is_empty() {
        return Decision {
            exceptions,
            ..Decision::status(Status::Review)
        };
    }
    Decision::status(Status::Proceeded)
}

// ---------------------------------------------------------------- rhai

const RHAI_RULE: &str = r#"
fn blank(v) {
    switch type_of(v) {
        "()" => true,
        "string" => { v.trim(); v.len() == 0 }
        "array" => v.len() == 0,
        _ => false
    }
}
let fired = previous.stage != "Closed Won" && deal.stage == "Closed Won" && deal.amount > 0;
if !fired { return ["not_triggered", [], []]; }
let missing = [];
for f in ["buyer_goals", "main_contact", "signed_scope", "start_date",
          "promised_deliverables", "pricing_exceptions", "risk_notes", "kickoff_preference"] {
    if blank(deal[f]) { missing.push(f); }
}
if missing.len() > 0 { return ["paused", missing, []]; }
let flagged = [];
if deal.custom_scope == true { flagged.push("Custom Scope"); }
if deal.amount > 50000 && deal.segment == "enterprise" { flagged.push("Needs Founder Review"); }
if flagged.len() > 0 { return ["review", [], flagged]; }
["proceeded", [], []]
"#;

/// The rule as a rhai user would write it: no helper, no loop, each required
/// field tested in its own `if` for what its type can be blank as (text may
/// be absent or whitespace only, a list absent or empty, a date absent).
/// `trim` trims in place, so text is copied to a variable first.
const RHAI_RULE_UNROLLED: &str = r#"
if previous.stage == "Closed Won" || deal.stage != "Closed Won" || !(deal.amount > 0) {
    return ["not_triggered", [], []];
}
let missing = [];
let buyer_goals = deal.buyer_goals ?? "";
buyer_goals.trim();
if buyer_goals == "" { missing.push("buyer_goals"); }
let main_contact = deal.main_contact ?? "";
main_contact.trim();
if main_contact == "" { missing.push("main_contact"); }
let signed_scope = deal.signed_scope ?? "";
signed_scope.trim();
if signed_scope == "" { missing.push("signed_scope"); }
if deal.start_date == () { missing.push("start_date"); }
let promised_deliverables = deal.promised_deliverables ?? [];
if promised_deliverables.is_empty() { missing.push("promised_deliverables"); }
let pricing_exceptions = deal.pricing_exceptions ?? "";
pricing_exceptions.trim();
if pricing_exceptions == "" { missing.push("pricing_exceptions"); }
let risk_notes = deal.risk_notes ?? "";
risk_notes.trim();
if risk_notes == "" { missing.push("risk_notes"); }
let kickoff_preference = deal.kickoff_preference ?? "";
kickoff_preference.trim();
if kickoff_preference == "" { missing.push("kickoff_preference"); }
if missing.len() > 0 { return ["paused", missing, []]; }
let flagged = [];
if deal.custom_scope == true { flagged.push("Custom Scope"); }
if deal.amount > 50000 && deal.segment == "enterprise" { flagged.push("Needs Founder Review"); }
if flagged.len() > 0 { return ["review", [], flagged]; }
["proceeded", [], []]
"#;

/// The scope a rhai rule runs in: `deal` (the record after the event; with a
/// fresh state, what the event carries) and `previous` (the stated
/// before-values), as maps.
fn rhai_scope(set: &WorkflowSet, ev: &Event) -> rhai::Scope<'static> {
    let object = &set.schema().objects[ev.object_index];
    let map = |slots: &mut dyn Iterator<Item = (usize, &Value)>| {
        let mut m = rhai::Map::new();
        for (slot, v) in slots {
            m.insert(
                object.fields[slot].name.as_str().into(),
                handoff::script::to_dynamic(v),
            );
        }
        m
    };
    let deal = map(&mut ev
        .record
        .iter()
        .enumerate()
        .filter_map(|(s, v)| v.as_ref().map(|v| (s, v))));
    let previous = map(&mut ev
        .previous
        .iter()
        .enumerate()
        .filter_map(|(s, v)| v.as_ref().map(|v| (s, v))));
    let mut scope = rhai::Scope::new();
    scope.push_constant("deal", deal);
    scope.push_constant("previous", previous);
    scope
}

fn rhai_run(engine: &rhai::Engine, ast: &rhai::AST, scope: &mut rhai::Scope) -> rhai::Array {
    let len = scope.len();
    let out = engine
        .eval_ast_with_scope::<rhai::Array>(scope, ast)
        .unwrap();
    scope.rewind(len);
    out
}

fn rhai_decision(out: &rhai::Array) -> (String, Vec<String>, Vec<String>) {
    let strings = |d: &rhai::Dynamic| -> Vec<String> {
        d.clone()
            .into_array()
            .unwrap()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    };
    (
        out[0].clone().into_string().unwrap(),
        strings(&out[1]),
        strings(&out[2]),
    )
}

// ---------------------------------------------------------------- datalogic

/// The rule in JSONLogic: `[status, missing, custom scope, founder review]`,
/// where `missing` has one entry per required field: its name when blank,
/// else null. A field is blank when it is falsy: absent, null, "" or []
/// (none of the required fields is a number or yes/no); JSONLogic's own
/// `missing` only counts absent and null. Whitespace-only text is not
/// falsy, so in the paused scenario, where the others get "  " for
/// `risk_notes`, the JSONLogic data has "" (see `all_inputs`). JSONLogic
/// has no `let`: the paused branch tests the fields twice and the review
/// branch the exceptions twice; the proceeded branch (the one timed in
/// `rule`) evaluates everything once.
fn jsonlogic_rule() -> String {
    let blank = |f: &str| format!(r#"{{"!": {{"var": "record.{f}"}}}}"#);
    let any_blank = REQUIRED.map(blank).join(", ");
    let missing = REQUIRED
        .map(|f| format!(r#"{{"if": [{}, "{f}", null]}}"#, blank(f)))
        .join(", ");
    let fired = r#"{"and": [
        {"!=": [{"var": "previous.stage"}, "Closed Won"]},
        {"==": [{"var": "record.stage"}, "Closed Won"]},
        {">": [{"var": "record.amount"}, 0]}]}"#;
    let custom = r#"{"==": [{"var": "record.custom_scope"}, true]}"#;
    let founder = r#"{"and": [{">": [{"var": "record.amount"}, 50000]},
        {"==": [{"var": "record.segment"}, "enterprise"]}]}"#;
    format!(
        r#"{{"if": [
            {{"!": {fired}}}, ["not_triggered"],
            {{"or": [{any_blank}]}}, ["paused", [{missing}]],
            {{"or": [{custom}, {founder}]}}, ["review", [], {custom}, {founder}],
            ["proceeded"]]}}"#
    )
}

fn datalogic_decision(v: &datalogic_rs::DataValue<'_>) -> (String, Vec<String>, Vec<String>) {
    let items = v.as_array().unwrap();
    let status = items[0].as_str().unwrap().to_string();
    let missing = items
        .get(1)
        .and_then(|m| m.as_array())
        .map(|m| {
            m.iter()
                .filter_map(|p| p.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut exceptions = Vec::new();
    for (i, name) in ["Custom Scope", "Needs Founder Review"].iter().enumerate() {
        if items.get(2 + i).and_then(|b| b.as_bool()) == Some(true) {
            exceptions.push(name.to_string());
        }
    }
    (status, missing, exceptions)
}

// ---------------------------------------------------------------- checks

fn owned(d: &Decision<'_>) -> (String, Vec<String>, Vec<String>) {
    let status = match d.status {
        Status::NotTriggered => "not_triggered",
        Status::Paused => "paused",
        Status::Review => "review",
        Status::Proceeded => "proceeded",
    };
    let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    (status.to_string(), own(&d.missing), own(&d.exceptions))
}

struct Contenders {
    set: WorkflowSet,
    slots: Slots,
    rhai: rhai::Engine,
    rhai_ast: rhai::AST,
    rhai_unrolled: rhai::AST,
    logic_engine: datalogic_rs::Engine,
    logic: datalogic_rs::Logic,
}

struct Input {
    bytes: Vec<u8>,
    event: Event,
    scope: rhai::Scope<'static>,
    parsed: datalogic_rs::ParsedData,
}

fn contenders() -> Contenders {
    let set = load(&["eval"]);
    let slots = Slots::new(&set);
    let rhai = rhai::Engine::new();
    let rhai_ast = rhai.compile(RHAI_RULE).unwrap();
    let rhai_unrolled = rhai.compile(RHAI_RULE_UNROLLED).unwrap();
    let logic_engine = datalogic_rs::Engine::new();
    let logic = logic_engine.compile(jsonlogic_rule().as_str()).unwrap();
    Contenders {
        set,
        slots,
        rhai,
        rhai_ast,
        rhai_unrolled,
        logic_engine,
        logic,
    }
}

fn input(c: &Contenders, json: &str) -> Input {
    let event = Event::decode(&c.set, json.as_bytes()).unwrap();
    let scope = rhai_scope(&c.set, &event);
    Input {
        bytes: json.as_bytes().to_vec(),
        scope,
        parsed: datalogic_rs::ParsedData::from_json(json).unwrap(),
        event,
    }
}

/// Every contender decides the same on every scenario.
fn verify(c: &Contenders, inputs: &mut [(&str, Input)]) {
    for (name, inp) in inputs.iter_mut() {
        let (state, outcome) = ours_full(&c.set, &inp.event);
        let expected = owned(&outcome_decision(&outcome));
        let by_ref = full_step_ref(&c.set, &inp.event, now());
        assert_eq!(
            (&by_ref.0, &by_ref.1),
            (&state, &outcome),
            "{name}: ours_full_ref"
        );
        assert_eq!(
            owned(&ours_decision(&c.set, &inp.event, now())),
            expected,
            "{name}: ours_decision"
        );
        assert_eq!(
            owned(&hand_written(&inp.event, &c.slots)),
            expected,
            "{name}: hand_written"
        );
        let r = rhai_run(&c.rhai, &c.rhai_ast, &mut inp.scope);
        assert_eq!(rhai_decision(&r), expected, "{name}: rhai");
        let r = rhai_run(&c.rhai, &c.rhai_unrolled, &mut inp.scope);
        assert_eq!(rhai_decision(&r), expected, "{name}: rhai_unrolled");
        let mut session = c.logic_engine.session();
        let v = session.eval_borrowed(&c.logic, inp.parsed.value()).unwrap();
        assert_eq!(datalogic_decision(v), expected, "{name}: datalogic");
        let status = &expected.0;
        assert_eq!(status, name, "scenario {name} decides {status}");
    }
}

fn all_inputs(c: &Contenders) -> Vec<(&'static str, Input)> {
    let mut inputs: Vec<(&str, Input)> = scenarios()
        .into_iter()
        .map(|(name, json)| (name, input(c, &json)))
        .collect();
    // See `verify`: JSONLogic gets "" where the others get "  ".
    let paused = inputs.iter_mut().find(|(n, _)| *n == "paused").unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&paused.1.bytes).unwrap();
    v["record"]["risk_notes"] = "".into();
    paused.1.parsed = datalogic_rs::ParsedData::from_json(&v.to_string()).unwrap();
    verify(c, &mut inputs);
    inputs
}

// ---------------------------------------------------------------- groups

/// One event through one contender, its result dropped. Never inlined, so
/// callgrind can count exactly this (`--toggle-collect='eval::per_event*'`,
/// one contender per run): the contender's work and dropping what it
/// returned, nothing of criterion's loop.
#[inline(never)]
fn per_event<R>(f: impl FnOnce() -> R) {
    drop(black_box(f()));
}

fn contenders_group(
    crit: &mut Criterion,
    group: &str,
    c: &Contenders,
    inputs: &mut [(&'static str, Input)],
) {
    let mut g = crit.benchmark_group(group);
    g.throughput(Throughput::Elements(inputs.len() as u64));
    let now = now();
    g.bench_function("ours_full", |b| {
        // Each event is stepped by value: its copy is made in the setup,
        // outside the timing (and outside `per_event`, so not counted).
        b.iter_batched(
            || {
                inputs
                    .iter()
                    .map(|(_, i)| i.event.clone())
                    .collect::<Vec<_>>()
            },
            |events| {
                for ev in events {
                    per_event(|| full_step(&c.set, black_box(ev), now));
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("ours_full_ref", |b| {
        b.iter(|| {
            for (_, i) in inputs.iter() {
                per_event(|| full_step_ref(&c.set, black_box(&i.event), now));
            }
        })
    });
    g.bench_function("ours_decision", |b| {
        b.iter(|| {
            for (_, i) in inputs.iter() {
                per_event(|| ours_decision(&c.set, black_box(&i.event), now));
            }
        })
    });
    g.bench_function("hand_written", |b| {
        b.iter(|| {
            for (_, i) in inputs.iter() {
                per_event(|| hand_written(black_box(&i.event), &c.slots));
            }
        })
    });
    g.bench_function("rhai", |b| {
        b.iter(|| {
            for (_, i) in inputs.iter_mut() {
                per_event(|| rhai_run(&c.rhai, &c.rhai_ast, black_box(&mut i.scope)));
            }
        })
    });
    g.bench_function("rhai_unrolled", |b| {
        b.iter(|| {
            for (_, i) in inputs.iter_mut() {
                per_event(|| rhai_run(&c.rhai, &c.rhai_unrolled, black_box(&mut i.scope)));
            }
        })
    });
    let mut session = c.logic_engine.session();
    g.bench_function("datalogic", |b| {
        b.iter(|| {
            for (_, i) in inputs.iter() {
                per_event(|| {
                    session
                        .eval_borrowed(&c.logic, black_box(i.parsed.value()))
                        .map(|v| {
                            black_box(v);
                        })
                        .unwrap()
                });
                session.reset();
            }
        })
    });
    g.finish();
}

fn rule(crit: &mut Criterion) {
    let c = contenders();
    let mut inputs = all_inputs(&c);
    // The heaviest path for every contender: trigger, filter, all eight
    // required fields, both exceptions, and (ours_full) the whole plan.
    let mut proceeded: Vec<_> = inputs
        .iter()
        .position(|(n, _)| *n == "proceeded")
        .map(|i| inputs.remove(i))
        .into_iter()
        .collect();
    contenders_group(crit, "rule", &c, &mut proceeded);
    // One event of each outcome per iteration.
    inputs.extend(proceeded);
    contenders_group(crit, "rule_mix", &c, &mut inputs);
}

/// Raw JSON bytes to outcome, against generic JSON parsing of the same bytes.
fn bytes(crit: &mut Criterion) {
    let set = load(&["eval"]);
    let bytes = std::fs::read(format!("{FIXTURES}/eval/closed_won.json")).unwrap();
    let now = now();
    let mut g = crit.benchmark_group("bytes");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_and_step", |b| {
        b.iter(|| {
            let ev = Event::decode(&set, black_box(&bytes)).unwrap();
            black_box(full_step(&set, ev, now))
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Event::decode(&set, black_box(&bytes)).unwrap()))
    });
    g.bench_function("serde_json_value", |b| {
        b.iter(|| {
            black_box(serde_json::from_slice::<serde_json::Value>(black_box(&bytes)).unwrap())
        })
    });
    g.finish();
}

/// The real rule keeps its rhai `script` exception: what that costs.
fn script_exception(crit: &mut Criterion) {
    let plain = load(&["eval"]);
    let script = load(&["eval/crm.handoff", "eval_script"]);
    let bytes = std::fs::read(format!("{FIXTURES}/eval/closed_won.json")).unwrap();
    let now = now();
    let mut g = crit.benchmark_group("script_exception");
    g.throughput(Throughput::Elements(1));
    for (name, set) in [
        ("two_expr_exceptions", &plain),
        ("plus_rhai_exception", &script),
    ] {
        let ev = Event::decode(set, &bytes).unwrap();
        let o = State::default().step(set, &ev, now).expect("same version");
        assert_eq!(o.handoffs[0].status, OutcomeStatus::Proceeded);
        g.bench_function(name, |b| {
            b.iter_batched(
                || ev.clone(),
                |ev| full_step(set, black_box(ev), now),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

/// New events against a state that already holds 1,000 records and the
/// last 10,000 event ids (the dedupe window is full): each event has a new
/// id and a new record, and the state is passed on from event to event as a
/// runtime would (so it grows by one record per event while timed).
fn big_state(crit: &mut Criterion) {
    let set = load(&["eval"]);
    let text = std::fs::read_to_string(format!("{FIXTURES}/eval/closed_won.json")).unwrap();
    let base: serde_json::Value = serde_json::from_str(&text).unwrap();
    let event = |id: String, record_id: String| {
        let mut v = base.clone();
        v["id"] = id.into();
        v["record_id"] = record_id.into();
        Event::decode(&set, v.to_string().as_bytes()).unwrap()
    };
    let now = now();
    let mut state = State::default();
    for i in 0..10_000 {
        let ev = event(format!("evt-{i:05}"), format!("D-{}", i % 1000));
        state.step(&set, &ev, now).expect("same version");
    }
    assert_eq!((state.records.len(), state.seen.len()), (1000, 10_000));
    let mut g = crit.benchmark_group("big_state");
    g.throughput(Throughput::Elements(1));
    g.bench_function("step_1000_records_10000_seen", |b| {
        b.iter_custom(|iters| {
            let events: Vec<Event> = (0..iters)
                .map(|i| event(format!("new-{i}"), format!("N-{i}")))
                .collect();
            let mut s = state.clone();
            let start = std::time::Instant::now();
            for ev in &events {
                black_box(s.step(&set, black_box(ev), now).expect("same version"));
            }
            let elapsed = start.elapsed();
            drop(s);
            elapsed
        })
    });
    g.finish();
}

criterion_group!(benches, rule, bytes, script_exception, big_state);
criterion_main!(benches);
