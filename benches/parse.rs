//! Parser throughput on a generated, realistic project of 1,000 handoffs
//! (several MB), side by side with two reference points over comparable
//! input:
//!
//! - `handoff_parse`: our whole parse (`syntax::parse`: the lexical scan,
//!   pest, building the tree, collecting comments);
//! - `pest_recognizer`: pest's generated parser alone over the same text,
//!   building no tree (the floor our parse stands on);
//! - `serde_json_value`: serde_json parsing the parsed tree serialized as
//!   JSON into a `Value` (a well-known fast parser; that document is about
//!   four times the size of the text, and each throughput is per byte of
//!   its own input).
//!
//! Run: `cargo bench --bench parse -- --warm-up-time 1 --measurement-time 5`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use handoff::diagnostic::SourceFile;
use handoff::syntax;

/// A small deterministic generator (xorshift64*), so every run measures the
/// same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.range(1, 100) <= percent
    }
}

const OBJECTS: [&str; 12] = [
    "deal", "lead", "account", "contact", "ticket", "invoice", "project", "renewal", "order",
    "quote", "trial", "partner",
];

const WORDS: [&str; 40] = [
    "buyer",
    "goals",
    "main",
    "contact",
    "signed",
    "scope",
    "start",
    "date",
    "promised",
    "deliverables",
    "pricing",
    "exceptions",
    "risk",
    "notes",
    "kickoff",
    "preference",
    "custom",
    "review",
    "approved",
    "scheduled",
    "budget",
    "signal",
    "pain",
    "point",
    "campaign",
    "offer",
    "source",
    "region",
    "segment",
    "tier",
    "renewal",
    "term",
    "seats",
    "discount",
    "legal",
    "security",
    "questionnaire",
    "champion",
    "timeline",
    "success",
];

const STAGES: [&str; 10] = [
    "New",
    "Qualified",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
    "Onboarding",
    "Live",
    "At Risk",
    "Churned",
];

const TYPES: [&str; 8] = [
    "text", "number", "money", "date", "datetime", "email", "user", "yes/no",
];

const TEAMS: [&str; 6] = [
    "delivery", "sales", "success", "support", "finance", "legal",
];

/// One generated object type: its name and fields with their types.
struct Object {
    name: &'static str,
    fields: Vec<(String, &'static str)>,
}

impl Object {
    fn field_of(&self, rng: &mut Rng, ty: &str) -> String {
        let matching: Vec<&(String, &str)> = self.fields.iter().filter(|(_, t)| *t == ty).collect();
        if matching.is_empty() {
            self.fields[0].0.clone()
        } else {
            rng.pick(&matching).0.clone()
        }
    }
}

/// A `.handoff` project: object, directory and calendar declarations, then
/// `handoffs` handoff declarations, with comments throughout.
fn project(handoffs: usize) -> String {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = String::new();
    let mut objects = Vec::new();

    out.push_str("# What the CRM looks like, and who works here.\n\n");
    for name in OBJECTS {
        let mut fields: Vec<(String, &'static str)> = vec![
            ("name".into(), "text"),
            ("stage".into(), "stage"),
            ("owner".into(), "user"),
            ("amount".into(), "money"),
            ("main_contact".into(), "email"),
        ];
        for _ in 0..rng.range(15, 25) {
            let field = format!("{}_{}", rng.pick(&WORDS), rng.pick(&WORDS));
            if !fields.iter().any(|(f, _)| *f == field) {
                fields.push((field, *rng.pick(&TYPES)));
            }
        }
        out.push_str(&format!("object {name} {{\n"));
        for (field, ty) in &fields {
            let ty = if *ty == "stage" {
                let stages: Vec<String> = STAGES.iter().map(|s| format!("\"{s}\"")).collect();
                format!("one of {}", stages.join(", "))
            } else if rng.chance(10) {
                format!("list of {ty}")
            } else {
                ty.to_string()
            };
            out.push_str(&format!("  {field}: {ty}"));
            if rng.chance(50) {
                let label = field.replace('_', " ");
                out.push_str(&format!(
                    " \"{}{}\"",
                    label[..1].to_uppercase(),
                    &label[1..]
                ));
            }
            out.push('\n');
        }
        out.push_str("}\n\n");
        objects.push(Object { name, fields });
    }

    out.push_str("user founder = \"maya@example.com\"\n");
    for team in TEAMS {
        let members: Vec<String> = (0..rng.range(2, 6))
            .map(|i| format!("\"{team}{i}@example.com\""))
            .collect();
        out.push_str(&format!("team {team} = {}\n", members.join(", ")));
        out.push_str(&format!("channel {team}_feed = \"#{team}\"\n"));
    }
    out.push_str(
        "\ncalendar {\n  workdays monday to friday\n  hours 9:00 to 17:00\n  \
         timezone \"America/New_York\"\n  holidays 2026-11-26, 2026-12-25, 2027-01-01\n}\n",
    );

    for i in 0..handoffs {
        handoff(&mut out, &mut rng, &objects, i);
    }
    out
}

fn handoff(out: &mut String, rng: &mut Rng, objects: &[Object], i: usize) {
    let o = rng.pick(objects);
    let obj = o.name;
    let from = *rng.pick(&STAGES);
    let to = *rng.pick(&STAGES);
    let team = *rng.pick(&TEAMS);
    let role = format!("{team}_owner");

    out.push_str(&format!(
        "\n# Handoff {i}: when a {obj} moves from {from} to {to}, {team} takes over.\n\
         # Agreed with the {team} lead; review this rule every quarter.\n"
    ));
    out.push_str(&format!("handoff \"{obj} {i}: {from} to {to}\" {{\n"));
    match rng.range(0, 3) {
        0 => out.push_str(&format!("  when {obj}.stage becomes \"{to}\"\n")),
        1 => out.push_str(&format!(
            "  when {obj}.stage changes from \"{from}\" to \"{to}\"\n"
        )),
        2 => out.push_str(&format!("  when {obj} is created\n")),
        _ => {
            let flag = o.field_of(rng, "yes/no");
            out.push_str(&format!("  when {obj}.{flag} becomes yes\n"));
        }
    }
    if rng.chance(60) {
        out.push_str(&format!(
            "    where {obj}.amount > {} and {obj}.owner is set\n",
            rng.range(0, 100) * 1000
        ));
    }

    // 5-10 required fields, wrapped like people wrap them.
    let n = rng.range(5, 10);
    let required: Vec<String> = (0..n).map(|_| rng.pick(&o.fields).0.clone()).collect();
    out.push_str("\n  # What the next owner needs.\n");
    out.push_str(&format!(
        "  require {},\n          {}\n",
        required[..n / 2].join(", "),
        required[n / 2..].join(", ")
    ));

    if rng.chance(70) {
        out.push_str(&format!(
            "\n  if missing {{\n    pause\n    notify {obj}.owner \"{obj} {{{obj}.name}} is paused: fill in {{missing}}.\"\n  }}\n"
        ));
    }

    out.push_str("\n  # Anything unusual goes to a person, not to a branch.\n");
    for e in 0..rng.range(3, 6) {
        if rng.chance(50) {
            out.push_str(&format!(
                "  # Exception {e}: agreed with {team} on the weekly review call.\n"
            ));
        }
        let amount = rng.range(1, 500) * 100;
        let text = o.field_of(rng, "text");
        let date = o.field_of(rng, "date");
        match rng.range(0, 3) {
            0 => out.push_str(&format!(
                "  exception \"Large {e}\" when {obj}.amount > {amount} and {obj}.{text} is not empty\n"
            )),
            1 => out.push_str(&format!(
                "  exception \"Soon {e}\" when {obj}.{date} < today + {} business days or not ({obj}.owner is set)\n",
                rng.range(1, 30)
            )),
            2 => out.push_str(&format!(
                "  exception \"Region {e}\" when {obj}.stage in [\"{}\", \"{}\"] and -{obj}.amount <= -{amount}\n",
                rng.pick(&STAGES),
                rng.pick(&STAGES)
            )),
            _ => out.push_str(&format!(
                "  exception \"Script {e}\" when script ```\n    {text}.len() > 0 && days_until({date}) < {}\n  ```\n",
                rng.range(1, 30)
            )),
        }
    }
    out.push_str(&format!(
        "\n  on exception {{\n    task \"Review {{exception}} for {{{obj}.name}}\" for founder due in 1 business day {{\n      attach brief\n    }}\n    resume when {obj}.owner is set  # the human override\n  }}\n"
    ));

    out.push_str("\n  brief {\n");
    for _ in 0..rng.range(8, 14) {
        let (field, _) = rng.pick(&o.fields);
        let label = field.replace('_', " ");
        let note = *rng.pick(&[
            "",
            "",
            " (as the client said it)",
            " (link to the document)",
            " (ask the previous owner if unclear)",
        ]);
        out.push_str(&format!("    \"{label}{note}\" = {obj}.{field}\n"));
    }
    for _ in 0..rng.range(1, 3) {
        out.push_str(&format!(
            "    ask \"What does the {obj} need from {team} in the first week?\"\n"
        ));
    }
    out.push_str("  }\n");

    out.push_str("\n  then {\n    # Who owns the next step, and the task that starts the work.\n");
    let strategy = if rng.chance(50) {
        "round robin"
    } else {
        "least loaded"
    };
    out.push_str(&format!(
        "    assign {role} from team {team} by {strategy}\n"
    ));
    let unit = *rng.pick(&["hours", "days", "business days", "business hours", "weeks"]);
    out.push_str(&format!(
        "    task \"Kickoff: {{{obj}.name}}\" for {role} due in {} {unit} {{\n      checklist \"Confirm scope with {{{obj}.main_contact}}\", \"Schedule the call\", \"Read the brief\"\n      attach brief\n    }}\n",
        rng.range(1, 5)
    ));
    out.push_str(&format!(
        "    notify channel {team}_feed \"New {obj} {{{obj}.name}} moved to {to}. Owner: {{{role}}}.\"\n"
    ));
    if rng.chance(60) {
        out.push_str(&format!(
            "    task \"Check in with {{{obj}.main_contact}}\" for {role} due in {} days\n    notify {obj}.owner \"{{{role}}} now owns {{{obj}.name}}.\"\n",
            rng.range(3, 14)
        ));
    }
    if rng.chance(50) {
        out.push_str(&format!(
            "    draft email to {obj}.main_contact for review {{\n      subject \"Welcome, {{{obj}.name}}\"\n      body \"Hi, {{{role}}} will lead the next step. Expect an invite within two days.\"\n    }}\n"
        ));
    }
    if rng.chance(40) {
        out.push_str(&format!("    set {obj}.stage = \"{to}\"\n"));
    }
    out.push_str("  }\n");

    let done = o.field_of(rng, "datetime");
    out.push_str(&format!(
        "\n  # The clock stops here.\n  done when {obj}.{done} is set\n}}\n"
    ));
}

fn bench_parse(c: &mut Criterion) {
    let text = project(1_000);
    let source = SourceFile::new("project.handoff", text.clone());
    let parsed = syntax::parse(&source);
    assert!(
        parsed.diagnostics.is_empty(),
        "the generated project must parse cleanly: {:?}",
        parsed.diagnostics.first()
    );
    assert!(syntax::recognize(&text), "pest must accept the project");
    let json = serde_json::to_string(&parsed.file).expect("the tree serializes");
    eprintln!(
        "project: {} declarations, {} comments, {:.2} MB of .handoff; tree as JSON {:.2} MB",
        parsed.file.declarations.len(),
        parsed.file.comments.len(),
        text.len() as f64 / 1e6,
        json.len() as f64 / 1e6
    );

    let mut group = c.benchmark_group("parse");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("handoff_parse", |b| {
        // The source is shared (an Arc), as the project loader shares it.
        b.iter(|| syntax::parse(black_box(&source)))
    });
    group.bench_function("pest_recognizer", |b| {
        b.iter(|| syntax::recognize(black_box(&text)))
    });
    group.throughput(Throughput::Bytes(json.len() as u64));
    group.bench_function("serde_json_value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(&json)).expect("json"))
    });
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
