//! `handoff run`: a dry run of events through the workflows, with an
//! explanation of every decision.

use std::path::Path;

use super::{ApproveArgs, Exit, OutputFormat, RunArgs};
use handoff::compile::WorkflowSet;
use handoff::eval::{
    self, Event, HandoffOutcome, Outcome, OutcomeStatus, PlannedAction, RenderedBrief, State,
};

/// Runs `handoff run`.
pub fn run(args: &RunArgs) -> Exit {
    let set = match super::graph::load(std::slice::from_ref(&args.workflows)) {
        Ok(set) => set,
        Err(exit) => return exit,
    };
    let bytes = match std::fs::read(&args.event) {
        Ok(b) => b,
        Err(e) => return fail(&format!("cannot read `{}`: {e}", args.event.display())),
    };
    let content = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    if content.iter().all(u8::is_ascii_whitespace) {
        return fail(&format!(
            "`{}` is empty: write one event (a JSON object) or a JSON array of events, as in grammar/README.md#events",
            args.event.display()
        ));
    }
    let events = match Event::decode_many(&set, &bytes) {
        Ok(ev) => ev,
        Err(e) => return fail(&format!("`{}`: {e}", args.event.display())),
    };
    if events.is_empty() {
        eprintln!(
            "warning: `{}` is an empty list: no event to run",
            args.event.display()
        );
    }
    warn_unknown_values(&events);
    warn_undeclared_fields(&set, content);
    if let Some(p) = &args.state {
        if same_file(p, &args.event) {
            return fail(&format!(
                "--state `{}` is the event file: the run would write its state over the events; \
                 give --state a file of its own",
                p.display()
            ));
        }
    }
    let mut state = match &args.state {
        Some(p) => match read_state(p) {
            Ok(s) => s,
            Err(msg) => return fail(&msg),
        },
        None => State::default(),
    };
    let now_override = match args.now.as_deref().map(parse_now) {
        Some(Ok(t)) => Some(t),
        Some(Err(msg)) => return fail(&msg),
        None => None,
    };
    let mut outcomes = Vec::new();
    for event in &events {
        let now = now_override
            .or(event.occurred_at)
            .unwrap_or_else(jiff::Timestamp::now);
        match state.step(&set, event, now) {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => return fail(&e.to_string()),
        }
    }
    if let Some(p) = &args.state {
        if let Err(msg) = write_state(p, &state) {
            return fail(&msg);
        }
    }
    match args.format {
        OutputFormat::Json => {
            // The shape follows the input's: an array of events, even of
            // one, prints an array, so a script reading batches need not
            // special-case a batch of one.
            let batch = bytes
                .strip_prefix(b"\xEF\xBB\xBF")
                .unwrap_or(&bytes)
                .iter()
                .find(|b| !b.is_ascii_whitespace())
                == Some(&b'[');
            let json = if outcomes.len() == 1 && !batch {
                serde_json::to_string_pretty(&outcomes[0])
            } else {
                serde_json::to_string_pretty(&outcomes)
            };
            match json {
                Ok(j) => println!("{j}"),
                Err(e) => return fail(&format!("cannot print the outcome: {e}")),
            }
        }
        OutputFormat::Human => {
            for o in &outcomes {
                print!("{}", human(&set, o, args.explain));
            }
        }
    }
    Exit::Ok
}

/// A value outside its field's `one of` list is applied as sent (as the
/// server does), so nothing waiting for a listed value fires on it: said
/// on stderr, or a typo in the event reads as a rule that did not fire.
fn warn_unknown_values(events: &[Event]) {
    for (i, e) in events.iter().enumerate() {
        for u in &e.unknown_values {
            let which = if events.len() > 1 {
                format!("event {}: ", i + 1)
            } else {
                String::new()
            };
            eprintln!(
                "warning: {which}{u}: applied as sent, so no rule waiting for a listed value fires on it"
            );
        }
    }
}

/// Fields of an event's `record` or `previous` that its object does not
/// declare are ignored (a CRM sends many the rules never read): said on
/// stderr in a dry run, where one is more likely a typo (`stag`) than a
/// field nobody reads, and a typo reads as a rule that did not fire.
fn warn_undeclared_fields(set: &WorkflowSet, content: &[u8]) {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(content) else {
        return;
    };
    let (list, batch) = match json {
        serde_json::Value::Array(items) => (items, true),
        one => (vec![one], false),
    };
    for (i, event) in list.iter().enumerate() {
        let Some(object) = event["object"]
            .as_str()
            .and_then(|name| set.schema().objects.iter().find(|o| o.name == name))
        else {
            continue;
        };
        for part in ["record", "previous"] {
            let Some(fields) = event[part].as_object() else {
                continue;
            };
            for key in fields.keys().filter(|k| object.slot(k).is_none()) {
                let which = if batch {
                    format!("event {}: ", i + 1)
                } else {
                    String::new()
                };
                let meant =
                    handoff::check::suggest(key, object.fields.iter().map(|f| f.name.as_str()))
                        .map(|m| format!(" (did you mean `{m}`?)"))
                        .unwrap_or_default();
                eprintln!(
                    "warning: {which}`{part}.{key}` is not a field of `{}`{meant}: ignored, as the server ignores fields the workflows do not declare",
                    object.name
                );
            }
        }
    }
}

fn fail(msg: &str) -> Exit {
    eprintln!("error: {msg}");
    Exit::Failure
}

/// Parses `--now`: RFC 3339, or a civil date-time taken as UTC.
pub(super) fn parse_now(s: &str) -> Result<jiff::Timestamp, String> {
    handoff::compile::parse_datetime(s)
        .ok_or_else(|| format!("`--now {s}` is not a date-time such as 2026-11-20T15:04:05Z"))
}

/// The keys a state file has (every format so far); a JSON object with
/// any other key is not one (serde would read it as a state, ignoring
/// what it does not know, and the run would write the state over it).
const STATE_KEYS: [&str; 5] = ["format", "records", "teams", "open_tasks", "seen"];

/// Reads a state file; a missing file is an empty state.
pub(super) fn read_state(p: &Path) -> Result<State, String> {
    match std::fs::read(p) {
        Ok(bytes) => {
            if let Ok(serde_json::Value::Object(o)) = serde_json::from_slice(&bytes) {
                let foreign: Vec<&str> = o
                    .keys()
                    .map(String::as_str)
                    .filter(|k| !STATE_KEYS.contains(k))
                    .collect();
                if !foreign.is_empty() {
                    let mut shown: Vec<&str> = foreign.iter().copied().take(4).collect();
                    if foreign.len() > 4 {
                        shown.push("…");
                    }
                    return Err(format!(
                        "`{}` is not a handoff state file (it has {}; a state file has only {}), \
                         and --state would write over it: name a new file, or one an earlier run wrote",
                        p.display(),
                        shown.join(", "),
                        STATE_KEYS.join(", ")
                    ));
                }
            }
            let state: State = serde_json::from_slice(&bytes)
                .map_err(|e| format!("`{}` is not a handoff state file: {e}", p.display()))?;
            if state.format > eval::STATE_FORMAT {
                return Err(format!(
                    "`{}` was written by a newer handoff (state format {}; this one reads up to {}): \
                     upgrade handoff, or start a new state file",
                    p.display(),
                    state.format,
                    eval::STATE_FORMAT
                ));
            }
            // Older formats read as the current one (new fields take their
            // defaults) and are written back in it.
            Ok(State {
                format: eval::STATE_FORMAT,
                ..state
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(format!("cannot read `{}`: {e}", p.display())),
    }
}

/// Whether `a` and `b` name one file (through links and `..` too).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Writes a state file atomically (temp file, synced, then renamed).
pub(super) fn write_state(p: &Path, state: &State) -> Result<(), String> {
    let json = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
    super::replace::replace(p, &json).map_err(|e| format!("cannot write `{}`: {e}", p.display()))
}

/// The human rendering of an outcome.
pub fn human(_set: &WorkflowSet, o: &Outcome, explain: bool) -> String {
    let mut out = format!("event {}", o.event);
    if o.duplicate {
        out.push_str(" (already processed: nothing new)");
    }
    out.push('\n');
    for h in &o.handoffs {
        if h.status == OutcomeStatus::NotTriggered && !explain {
            continue;
        }
        out.push_str(&handoff_lines(h, explain));
    }
    if !explain
        && o.handoffs
            .iter()
            .all(|h| h.status == OutcomeStatus::NotTriggered)
    {
        out.push_str("  no handoff fired (use --explain to see why)\n");
    }
    out
}

fn handoff_lines(h: &HandoffOutcome, explain: bool) -> String {
    let mut out = format!(
        "  {} [{}]: {}\n",
        h.workflow,
        h.record_id,
        h.status.as_str()
    );
    if !h.missing.is_empty() {
        out.push_str(&format!("    missing: {}\n", h.missing.join(", ")));
    }
    if !h.exceptions.is_empty() {
        out.push_str(&format!("    exceptions: {}\n", h.exceptions.join(", ")));
    }
    for a in &h.actions {
        out.push_str(&format!("    - {}\n", action_line(a)));
    }
    if let Some(ans) = &h.answers {
        if let Some(o) = &ans.next_owner {
            out.push_str(&format!("    next owner: {o}\n"));
        }
        if let Some(t) = &ans.first_task {
            out.push_str(&format!("    first task: {t}\n"));
        }
    }
    if explain {
        if let Some(b) = brief_of(h) {
            out.push_str(&brief_lines(b));
        }
        out.push_str("    why:\n");
        for t in &h.trace {
            out.push_str(&format!("      {t}\n"));
        }
    }
    out
}

/// The brief the handoff rendered: its own, or the one a task attaches.
fn brief_of(h: &HandoffOutcome) -> Option<&RenderedBrief> {
    h.brief.as_deref().or_else(|| {
        h.actions.iter().find_map(|a| match &a.plan {
            PlannedAction::Task { brief, .. } => brief.as_deref(),
            _ => None,
        })
    })
}

/// The brief's contents, as the next owner will read them; an empty field
/// says so, since that is what the owner will have to ask about.
fn brief_lines(b: &RenderedBrief) -> String {
    let mut out = String::from("    brief:\n");
    for line in &b.fields {
        let value = line.value.to_string();
        let value = if value.is_empty() {
            "(empty)".to_string()
        } else {
            value
        };
        out.push_str(&format!("      {}: {value}\n", line.label));
    }
    for q in &b.questions {
        out.push_str(&format!("      ? {q}\n"));
    }
    out
}

/// One line for a planned action.
pub fn action_line(a: &PlannedAction) -> String {
    let who = |p: &Option<String>| {
        p.clone()
            .unwrap_or_else(|| "(nobody; --explain says why)".into())
    };
    match a {
        PlannedAction::Assign { role, person, .. } => format!("assign {role}: {}", who(person)),
        PlannedAction::Task {
            title,
            assignee,
            due,
            checklist,
            brief,
        } => {
            let mut s = format!("task \"{title}\" for {}", who(assignee));
            if let Some(d) = due {
                s.push_str(&format!(", due {d}"));
            }
            if !checklist.is_empty() {
                s.push_str(&format!(", checklist: {}", checklist.join("; ")));
            }
            if brief.is_some() {
                s.push_str(", brief attached");
            }
            s
        }
        PlannedAction::Notify {
            channel,
            to,
            message,
        } => match channel {
            Some(c) => format!("notify channel {c}: {message}"),
            None => format!("notify {}: {message}", who(to)),
        },
        PlannedAction::EmailDraft { to, subject, .. } => {
            format!("draft email to {} for review: \"{subject}\"", who(to))
        }
        PlannedAction::Set { field, value } => format!("set {field} = {value}"),
    }
}

/// Runs `handoff approve`.
pub fn approve(args: &ApproveArgs) -> Exit {
    let set = match super::graph::load(std::slice::from_ref(&args.workflows)) {
        Ok(set) => set,
        Err(exit) => return exit,
    };
    let Some((object, record)) = args.record.split_once('/') else {
        return fail(&format!(
            "`--record {}` must read OBJECT/ID, e.g. deal/D-42",
            args.record
        ));
    };
    let mut state = match read_state(&args.state) {
        Ok(s) => s,
        Err(msg) => return fail(&msg),
    };
    let now = match args.now.as_deref().map(parse_now) {
        Some(Ok(t)) => t,
        Some(Err(msg)) => return fail(&msg),
        None => jiff::Timestamp::now(),
    };
    match state.approve(&set, &args.workflow, object, record, now) {
        Ok(outcome) => {
            if let Err(msg) = write_state(&args.state, &state) {
                return fail(&msg);
            }
            match args.format {
                OutputFormat::Json => match serde_json::to_string_pretty(&outcome) {
                    Ok(j) => println!("{j}"),
                    Err(e) => return fail(&e.to_string()),
                },
                OutputFormat::Human => print!("{}", handoff_lines(&outcome, true)),
            }
            Exit::Ok
        }
        Err(e) => fail(&e.to_string()),
    }
}
