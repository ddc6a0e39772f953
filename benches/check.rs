//! Parsing, checking and compiling whole projects.
//!
//! - `generated_1000`: a project generated here, deterministically: 10
//!   objects of 31 fields, 50 users, 10 teams, 10 channels, a calendar, and
//!   1,000 handoffs in 20 files (each with a trigger and filter, 8 required
//!   fields, an `if missing` block, two exceptions, `on exception` with a
//!   task and `resume when`, an 8-line brief with questions, a `then` block
//!   with assign, task with checklist, notify, email draft and a `set` that
//!   fires the next handoff in its chain, and `done when`).
//! - `workflows`: the real `workflows/` directory.
//!
//! Each is measured in stages: `parse` (every file through the parser),
//! `analyze` (parse + check: `check::analyze`) and `analyze_compile` (the
//! whole pipeline to a `WorkflowSet`). Files are read before timing.
//!
//! Run: `cargo bench --bench check -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use handoff::diagnostic::{Severity, SourceFile};

const OBJECTS: usize = 10;
const STAGES: usize = 100;
const USERS: usize = 50;
const TEAMS: usize = 10;
const CHANNELS: usize = 10;
const PER_FILE: usize = 50;

/// The declarations: objects, people, channels, calendar.
fn crm() -> String {
    let mut s = String::from("# Generated for benches/check.rs.\n\n");
    for o in 0..OBJECTS {
        let stages: Vec<String> = (0..STAGES).map(|k| format!("\"Stage {k}\"")).collect();
        s.push_str(&format!(
            r#"object account{o} {{
  name:                  text
  stage:                 one of {stages}
  owner:                 user
  amount:                money
  segment:               one of "smb", "mid", "enterprise"
  buyer_goals:           text         "Buyer goals"
  main_contact:          email        "Main contact"
  signed_scope:          text         "Signed scope (link to the SOW)"
  start_date:            date         "Start date"
  promised_deliverables: list of text "Promised deliverables"
  pricing_exceptions:    text         "Pricing exceptions"
  risk_notes:            text         "Risk notes"
  kickoff_preference:    text         "Kickoff preference"
  custom_scope:          yes/no       "Custom scope"
  review_approved:       yes/no       "Review approved"
  kickoff_scheduled_at:  datetime     "Kickoff scheduled at"
  close_date:            date         "Close date"
  deal_type:             one of "New business", "Renewal", "Upsell"
  probability:           number       "Probability (%)"
  currency:              one of "USD", "EUR", "GBP"
  company_domain:        text         "Company domain"
  industry:              text
  employee_count:        number       "Employees"
  lead_source:           text         "Lead source"
  billing_contact:       email        "Billing contact"
  contract_months:       number       "Contract length (months)"
  payment_terms:         one of "Net 15", "Net 30", "Net 60"
  products:              list of text "Products"
  created_at:            datetime     "Created at"
  last_activity_at:      datetime     "Last activity"
  next_step:             text         "Next step"
}}

"#,
            stages = stages.join(", ")
        ));
    }
    for u in 0..USERS {
        s.push_str(&format!("user reviewer{u} = \"reviewer{u}@example.com\"\n"));
    }
    s.push('\n');
    for t in 0..TEAMS {
        s.push_str(&format!(
            "team crew{t} = \"a{t}@example.com\", \"b{t}@example.com\", \"c{t}@example.com\"\n"
        ));
    }
    s.push('\n');
    for c in 0..CHANNELS {
        s.push_str(&format!("channel feed{c} = \"#feed-{c}\"\n"));
    }
    s.push_str(
        r#"
calendar {
  workdays monday to friday
  hours 9:00 to 17:00
  timezone "America/New_York"
  holidays 2026-11-26, 2026-12-25, 2027-01-01
}
"#,
    );
    s
}

/// Handoff `i`: on object `i % OBJECTS`, fired by stage `i / OBJECTS`; its
/// `then` moves the record on to the next stage, which fires handoff
/// `i + OBJECTS` (a chain per object, no cycles).
fn handoff(i: usize) -> String {
    let o = format!("account{}", i % OBJECTS);
    let k = i / OBJECTS;
    let set_next = if k + 1 < STAGES {
        format!("    set {o}.stage = \"Stage {}\"\n", k + 1)
    } else {
        String::new()
    };
    format!(
        r#"# Handoff {i}: stage {k} of {o}.
handoff "Flow {i}" {{
  when {o}.stage becomes "Stage {k}"
    where {o}.amount > {min}

  require buyer_goals, main_contact, signed_scope, start_date,
          promised_deliverables, pricing_exceptions, risk_notes, kickoff_preference

  if missing {{
    pause
    notify {o}.owner "Handoff {i} for {{{o}.name}} is paused. Please fill in: {{missing}}."
  }}

  exception "Custom Scope" when {o}.custom_scope is yes
  exception "Needs Review" when {o}.amount > {big} and {o}.segment is "enterprise"

  on exception {{
    task "Review {{exception}} for {{{o}.name}}" for reviewer{u} due in 1 business day {{
      attach brief
    }}
    resume when {o}.review_approved is yes
  }}

  brief {{
    "Client" = {o}.name
    "Main contact" = {o}.main_contact
    "What was sold" = {o}.signed_scope
    "Promised" = {o}.promised_deliverables
    "Starts" = {o}.start_date
    "Pricing exceptions" = {o}.pricing_exceptions
    "Risks" = {o}.risk_notes
    "Kickoff preference" = {o}.kickoff_preference
    ask "What does the client actually care about?"
    ask "What was promised verbally?"
  }}

  then {{
    assign owner{i} from team crew{t} by round robin
    task "Step {k}: {{{o}.name}}" for owner{i} due in 2 business days {{
      checklist "Confirm scope with {{{o}.main_contact}}", "Schedule the call", "Review the brief"
      attach brief
    }}
    notify channel feed{c} "{{{o}.name}} reached stage {k}. Owner: {{owner{i}}}."
    draft email to {o}.main_contact for review {{
      subject "Next steps for {{{o}.name}}"
      body "Hi, {{owner{i}}} will lead the next step. Expect an invite within two business days."
    }}
{set_next}  }}

  done when {o}.kickoff_scheduled_at is set
}}

"#,
        min = i % 7,
        big = 50_000 + i,
        u = i % USERS,
        t = i % TEAMS,
        c = i % CHANNELS,
    )
}

/// The generated project: the declarations and `n` handoffs.
fn generated(n: usize) -> Vec<Arc<SourceFile>> {
    let mut files = vec![SourceFile::new("gen/crm.handoff", crm())];
    for (f, start) in (0..n).step_by(PER_FILE).enumerate() {
        let text: String = (start..(start + PER_FILE).min(n)).map(handoff).collect();
        files.push(SourceFile::new(format!("gen/flows{f:02}.handoff"), text));
    }
    files
}

fn workflows() -> Vec<Arc<SourceFile>> {
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/workflows"));
    let loaded = handoff::project::load(&[dir]);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    loaded.sources
}

/// The project checks clean (no errors) and compiles.
fn verify(name: &str, sources: &[Arc<SourceFile>]) -> usize {
    let analysis = handoff::check::analyze(sources);
    let errors: Vec<_> = analysis
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| format!("{}: {}", d.file.name, d.message))
        .take(5)
        .collect();
    assert!(errors.is_empty(), "{name} has errors: {errors:#?}");
    let checked = analysis.checked.expect("no errors, so checked");
    let set = handoff::compile::compile(&checked).expect("compiles");
    set.handoffs().len()
}

fn project(crit: &mut Criterion, name: &str, sources: &[Arc<SourceFile>]) {
    let bytes: usize = sources.iter().map(|s| s.text.len()).sum();
    let handoffs = verify(name, sources);
    eprintln!(
        "{name}: {} files, {handoffs} handoffs, {bytes} bytes",
        sources.len()
    );
    let mut g = crit.benchmark_group(format!("check_{name}"));
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(10);
    g.bench_function("parse", |b| {
        b.iter(|| {
            for s in sources {
                black_box(handoff::syntax::parse(black_box(s)));
            }
        })
    });
    g.bench_function("analyze", |b| {
        b.iter(|| black_box(handoff::check::analyze(black_box(sources))))
    });
    g.bench_function("analyze_compile", |b| {
        b.iter(|| {
            let analysis = handoff::check::analyze(black_box(sources));
            let set = handoff::compile::compile(analysis.checked.as_ref().unwrap()).unwrap();
            black_box((analysis, set))
        })
    });
    g.finish();
}

fn benches(crit: &mut Criterion) {
    project(crit, "generated_1000", &generated(1000));
    project(crit, "workflows", &workflows());
}

criterion_group!(check, benches);
criterion_main!(check);
