//! `handoff demo`: a realistic generated quarter in a fresh database, so the
//! health report (and `handoff serve`) have something true to show.
//!
//! Every CRM event goes through [`crate::runtime::ingest::ingest`], the
//! path the webhook uses, with the clock it would have had (`received_at`
//! is the event's moment); approvals go through `ingest::approve`,
//! escalations by a person through [`crate::runtime::escalations::escalate`].
//! Nothing is written around the engine.
//!
//! What is planted, so the report has something to find (and a test can
//! check it finds it):
//! - `risk_notes` is missing at Closed Won in about 40% of deals and filled
//!   in later: the checklist's weak spot;
//! - from two thirds of the quarter on, one rep's CRM sends the stage as
//!   `Closed-Won`, a value nobody declared, so those handoffs never fire;
//! - mid-quarter the rules change (a new workflow version with a stronger
//!   kickoff task) and kickoffs get scheduled about three times sooner;
//! - custom-scope deals go to review (most approved, some rejected, some
//!   still waiting for someone to look),
//!   delivery escalates some handoffs, a few are never picked up (stuck);
//! - leads: a few arrive without their campaign, some are rejected for
//!   unclear qualification notes.
//!
//! The same seed and end give the same events, ids and times.

use std::sync::Arc;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value as J};

use crate::compile::{Calendar, WorkflowSet};
use crate::diagnostic::SourceFile;
use crate::eval::Event;
use crate::runtime::escalations;
use crate::runtime::ingest::{self, IngestError, Request};
use crate::runtime::store::{
    HandoffFilter, NewNote, PageRequest, Store, StoreError, StoreExt, WorkflowFile, WorkflowVersion,
};
use crate::syntax::TimeUnit;
use crate::value::Duration;

const CRM: &str = include_str!("demo/crm.handoff");
const SALES_TO_DELIVERY: &str = include_str!("demo/sales_to_delivery.handoff");
/// The first task at the start of the quarter...
const WEAK_TASK: &str =
    "    task \"Kickoff: {deal.name}\" for delivery_owner due in 5 business days\n";
/// ... and after the mid-quarter change.
const STRONGER_TASK: &str =
    "    task \"Kickoff: {deal.name}\" for delivery_owner due in 1 business day {
      checklist \"Confirm scope with {deal.main_contact}\", \"Schedule the kickoff call\"
      attach brief
    }
";

/// The deal workflow's name.
pub const DEALS: &str = "Sales to Delivery";
/// The lead workflow's name.
pub const LEADS: &str = "Marketing to Sales";
/// The stage label one rep's CRM starts sending late in the quarter.
pub const RENAMED_STAGE: &str = "Closed-Won";
/// The field most often missing at Closed Won.
pub const WEAK_FIELD: &str = "risk_notes";

const REPS: [&str; 8] = [
    "sam@example.com",
    "kim@example.com",
    "joe@example.com",
    "eva@example.com",
    "tom@example.com",
    "ivy@example.com",
    "max@example.com",
    "zoe@example.com",
];

/// The most weeks a demo generates (ten years).
pub const MAX_WEEKS: u32 = 520;

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// How many weeks, ending at `end` (2 to [`MAX_WEEKS`]).
    pub weeks: u32,
    pub seed: u64,
    /// Sales reps (deal owners).
    pub reps: u32,
    /// Deals won per rep per week.
    pub deals_per_rep_week: u32,
    /// Leads qualified per rep per week.
    pub leads_per_rep_week: u32,
    /// The quarter ends here; nothing is generated after it.
    pub end: Timestamp,
}

impl DemoOptions {
    /// A small team's quarter: 6 reps, 3 deals and 4 leads each a week.
    pub fn new(weeks: u32, seed: u64, end: Timestamp) -> DemoOptions {
        DemoOptions {
            weeks,
            seed,
            reps: 6,
            deals_per_rep_week: 3,
            leads_per_rep_week: 4,
            end,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DemoSummary {
    /// CRM events sent through ingest.
    pub events: u64,
    pub deals: u32,
    pub leads: u32,
    pub start: Timestamp,
    pub end: Timestamp,
    /// When the second workflow version started serving.
    pub rule_change_at: Timestamp,
    /// How many times the undeclared stage label was sent.
    pub renamed_sent: u32,
    pub approvals: u32,
    pub rejections: u32,
    pub escalations: u32,
}

/// Why the demo could not fill the database.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum DemoError {
    /// The database already holds events, handoffs or workflow versions.
    #[error("the database already holds data ({what})")]
    #[diagnostic(
        code(demo::not_empty),
        help("`handoff demo` fills a fresh database only: point --db at a new file")
    )]
    NotEmpty { what: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Ingest(#[from] IngestError),
    /// The generator built an event the engine refused: a bug here.
    #[error("the demo generated an event the workflows refuse: {0}")]
    #[diagnostic(code(demo::event))]
    Event(String),
    /// The embedded workflows do not compile: a bug here.
    #[error("the demo's workflows do not compile: {0}")]
    #[diagnostic(code(demo::workflows))]
    Workflows(String),
}

/// The two workflow versions of the quarter: before and after the change.
pub fn workflow_versions() -> Result<(WorkflowSet, WorkflowSet), DemoError> {
    let compile = |deals: &str| {
        let sources = [
            SourceFile::new("crm.handoff", CRM),
            SourceFile::new("sales_to_delivery.handoff", deals),
        ];
        crate::compile::load_sources(&sources)
            .map(|(set, _)| set)
            .map_err(|e| DemoError::Workflows(e.to_string()))
    };
    let stronger = SALES_TO_DELIVERY.replace(WEAK_TASK, STRONGER_TASK);
    if stronger == SALES_TO_DELIVERY {
        return Err(DemoError::Workflows(
            "the kickoff task line to replace is not in the file".into(),
        ));
    }
    Ok((compile(SALES_TO_DELIVERY)?, compile(&stronger)?))
}

/// A small deterministic generator (SplitMix64): the same seed gives the
/// same quarter on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = (hi - lo + 1).max(1) as u64;
        lo + (self.next() % span) as i64
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// One thing that happens, at a moment.
enum Act {
    Event {
        object: &'static str,
        record: String,
        fields: Map<String, J>,
        previous: Option<Map<String, J>>,
    },
    Approve {
        record: String,
    },
    Reject {
        workflow: &'static str,
        record: String,
        who: String,
        reason: String,
    },
    Escalate {
        record: String,
        who: String,
        note: String,
    },
}

struct Planned {
    at: Timestamp,
    seq: u64,
    act: Act,
}

struct Plan {
    items: Vec<Planned>,
    calendar: Calendar,
    rng: Rng,
}

impl Plan {
    fn add(&mut self, at: Timestamp, act: Act) {
        let seq = self.items.len() as u64;
        self.items.push(Planned { at, seq, act });
    }

    fn event(
        &mut self,
        at: Timestamp,
        object: &'static str,
        record: &str,
        fields: J,
        previous: Option<J>,
    ) {
        let map = |v: J| match v {
            J::Object(m) => m,
            _ => Map::new(),
        };
        self.add(
            at,
            Act::Event {
                object,
                record: record.to_string(),
                fields: map(fields),
                previous: previous.map(map),
            },
        );
    }

    /// `hours` working hours after `from`.
    fn business(&self, from: Timestamp, hours: i64) -> Timestamp {
        let d = Duration {
            amount: hours as f64,
            business: true,
            unit: TimeUnit::Hours,
        };
        self.calendar
            .add(from, &d)
            .unwrap_or_else(|| from + SignedDuration::from_hours(hours))
    }

    /// Between `lo` and `hi` working hours after `from`.
    fn business_in(&mut self, from: Timestamp, lo: i64, hi: i64) -> Timestamp {
        let hours = self.rng.range(lo, hi);
        self.business(from, hours)
    }

    /// A moment on `date` at `hour:minute` in the calendar's timezone.
    fn local(&self, date: Date, hour: i64, minute: i64) -> Timestamp {
        let time = Time::new(hour as i8, minute as i8, 0, 0).unwrap_or(Time::midnight());
        date.to_datetime(time)
            .to_zoned(self.calendar.timezone().clone())
            .map(|z| z.timestamp())
            .unwrap_or_else(|_| Timestamp::UNIX_EPOCH)
    }
}

/// Fills `store` (which must be empty) with a generated quarter.
pub async fn generate(
    store: &Arc<dyn Store>,
    options: &DemoOptions,
) -> Result<DemoSummary, DemoError> {
    refuse_unless_empty(store).await?;
    let (before, after) = workflow_versions()?;
    let calendar = before.calendar().clone();
    let tz = calendar.timezone().clone();
    // Ten years at most: more would run the dates past what the calendar
    // holds and generate millions of events.
    let weeks = options.weeks.clamp(2, MAX_WEEKS);
    let end = options.end;
    let first = end
        .checked_sub(SignedDuration::from_hours(i64::from(weeks) * 7 * 24))
        .unwrap_or(end)
        .to_zoned(tz.clone())
        .date();
    let monday = first
        .checked_sub(jiff::Span::new().days(i64::from(first.weekday().to_monday_zero_offset())))
        .unwrap_or(first)
        .checked_add(jiff::Span::new().weeks(1))
        .unwrap_or(first);
    let start = monday
        .to_datetime(Time::midnight())
        .to_zoned(tz.clone())
        .map(|z| z.timestamp())
        .unwrap_or(end);
    let change_week = weeks / 2;
    let rule_change_at = start + SignedDuration::from_hours(i64::from(change_week) * 7 * 24);
    let rename_from = start + SignedDuration::from_hours(i64::from(weeks * 2 / 3) * 7 * 24);

    let mut plan = Plan {
        items: Vec::new(),
        calendar: calendar.clone(),
        rng: Rng(options.seed),
    };
    let reps: Vec<&str> = REPS
        .iter()
        .copied()
        .cycle()
        .take(options.reps.max(1) as usize)
        .collect();
    let mut summary = DemoSummary {
        events: 0,
        deals: 0,
        leads: 0,
        start,
        end,
        rule_change_at,
        renamed_sent: 0,
        approvals: 0,
        rejections: 0,
        escalations: 0,
    };
    for week in 0..weeks {
        let week_monday = monday
            .checked_add(jiff::Span::new().weeks(i64::from(week)))
            .unwrap_or(monday);
        for (r, rep) in reps.iter().enumerate() {
            for k in 0..options.deals_per_rep_week {
                let n = summary.deals;
                summary.deals += 1;
                let id = format!("D-{n:05}");
                // The rep whose CRM renames the stage: the second one.
                let renamed = r == 1 && k % 2 == 0;
                plan_deal(
                    &mut plan,
                    &id,
                    rep,
                    week_monday,
                    rule_change_at,
                    rename_from,
                    renamed,
                );
            }
            for _ in 0..options.leads_per_rep_week {
                let n = summary.leads;
                summary.leads += 1;
                plan_lead(&mut plan, &format!("L-{n:05}"), week_monday);
            }
        }
    }
    plan.items.sort_by_key(|p| (p.at, p.seq));

    save_version(
        store,
        &before,
        start - SignedDuration::from_hours(24),
        false,
    )
    .await?;
    let mut set = before;
    let mut switched = false;
    for p in plan.items {
        if p.at > end {
            continue;
        }
        if !switched && p.at >= rule_change_at {
            save_version(store, &after, rule_change_at, true).await?;
            set = after.clone();
            switched = true;
        }
        match p.act {
            Act::Event {
                object,
                record,
                fields,
                previous,
            } => {
                if object == "deal"
                    && fields.get("stage").and_then(J::as_str) == Some(RENAMED_STAGE)
                {
                    summary.renamed_sent += 1;
                }
                let mut body = json!({
                    "id": format!("demo-{}", p.seq),
                    "object": object,
                    "record_id": record,
                    "occurred_at": p.at.to_string(),
                    "record": fields,
                });
                if let Some(prev) = previous {
                    body["previous"] = J::Object(prev);
                }
                let raw = serde_json::to_vec(&body).map_err(|e| DemoError::Event(e.to_string()))?;
                let event = Event::decode_lenient(&set, &raw)
                    .map_err(|e| DemoError::Event(e.to_string()))?;
                ingest::ingest(
                    store,
                    set.clone(),
                    Request {
                        source: "generic".into(),
                        received_at: p.at,
                        events: vec![ingest::Received {
                            event,
                            raw_body: raw,
                        }],
                    },
                )
                .await?;
                summary.events += 1;
            }
            Act::Approve { record } => {
                if let Some(id) = find(store, DEALS, &record, Some("review")).await? {
                    let approved = ingest::approve(
                        store,
                        set.clone(),
                        id,
                        "maya@example.com".into(),
                        "Scope checked with the client".into(),
                        p.at,
                    )
                    .await?;
                    summary.approvals += u32::from(approved.is_some());
                }
            }
            Act::Reject {
                workflow,
                record,
                who,
                reason,
            } => {
                // A deal's review is rejected the way a person does it on the
                // review page (status `rejected`, tasks released, the note
                // in the audit log).
                if workflow == DEALS {
                    if let Some(id) = find(store, DEALS, &record, Some("review")).await? {
                        let rejected =
                            ingest::reject(store, set.clone(), id, who, reason, p.at).await?;
                        summary.rejections += u32::from(rejected.is_some());
                    }
                    continue;
                }
                // A lead is turned down by sales after it was handed over:
                // not a review, the receiving team's note on the handoff.
                if let Some(id) = find(store, workflow, &record, None).await? {
                    let at = p.at;
                    store
                        .write(move |tx| {
                            tx.add_note(&NewNote {
                                handoff_id: id,
                                kind: "reject".into(),
                                who,
                                at,
                                text: reason,
                                data: None,
                            })
                        })
                        .await?;
                    summary.rejections += 1;
                }
            }
            Act::Escalate { record, who, note } => {
                if let Some(id) = find(store, DEALS, &record, None).await? {
                    escalations::escalate(store, id, who, note, p.at).await?;
                    summary.escalations += 1;
                }
            }
        }
    }
    Ok(summary)
}

/// One deal: created at Proposal, won (perhaps with fields missing, filled
/// in later), perhaps reviewed, then the kickoff scheduled; perhaps an
/// escalation afterwards.
fn plan_deal(
    plan: &mut Plan,
    id: &str,
    owner: &str,
    week_monday: Date,
    change_at: Timestamp,
    rename_from: Timestamp,
    renamed: bool,
) {
    let day = week_monday
        .checked_add(jiff::Span::new().days(plan.rng.range(0, 4)))
        .unwrap_or(week_monday);
    let hour = plan.rng.range(9, 16);
    let minute = plan.rng.range(0, 59);
    let won = plan.local(day, hour, minute);
    let created = won - SignedDuration::from_hours(plan.rng.range(24, 240));
    let enterprise = plan.rng.chance(0.06);
    let amount = if enterprise {
        plan.rng.range(60_000, 150_000)
    } else {
        plan.rng.range(3_000, 45_000)
    };
    let segment = if enterprise {
        "enterprise"
    } else {
        plan.rng.pick(&["smb", "mid"])
    };
    let name = format!("Client {id}");
    plan.event(
        created,
        "deal",
        id,
        json!({"name": name, "stage": "Proposal", "owner": owner, "amount": amount, "segment": segment}),
        None,
    );

    let after_change = won >= change_at;
    let start_date = day
        .checked_add(jiff::Span::new().days(plan.rng.range(14, 45)))
        .unwrap_or(day);
    let mut all = Map::new();
    all.insert(
        "buyer_goals".into(),
        json!("Launch before the spring campaign"),
    );
    all.insert(
        "main_contact".into(),
        json!(format!("buyer@{}.example.com", id.to_lowercase())),
    );
    all.insert(
        "signed_scope".into(),
        json!(format!("https://docs.example.com/sow/{id}")),
    );
    all.insert("start_date".into(), json!(start_date.to_string()));
    all.insert(
        "promised_deliverables".into(),
        json!(["Onboarding", "Training"]),
    );
    all.insert("risk_notes".into(), json!("Legal review of the data terms"));
    let mut missing: Vec<&str> = Vec::new();
    if plan.rng.chance(0.4) {
        missing.push(WEAK_FIELD);
    }
    for f in ["buyer_goals", "start_date", "promised_deliverables"] {
        if plan.rng.chance(0.05) {
            missing.push(f);
        }
    }
    let custom = plan.rng.chance(0.15);
    let mut at_trigger = all.clone();
    for f in &missing {
        at_trigger.remove(*f);
    }
    let stage = if renamed && won >= rename_from {
        RENAMED_STAGE
    } else {
        "Closed Won"
    };
    at_trigger.insert("stage".into(), json!(stage));
    at_trigger.insert("custom_scope".into(), json!(custom));
    plan.event(
        won,
        "deal",
        id,
        J::Object(at_trigger),
        Some(json!({"stage": "Proposal"})),
    );
    if stage == RENAMED_STAGE {
        // The handoff never fires: nothing more happens in the tool.
        return;
    }

    let mut ready = won;
    if !missing.is_empty() {
        ready = plan.business_in(won, 2, 20);
        let mut filled = Map::new();
        for f in &missing {
            if let Some(v) = all.get(*f) {
                filled.insert((*f).to_string(), v.clone());
            }
        }
        plan.event(ready, "deal", id, J::Object(filled), None);
    }
    if custom || (enterprise && amount > 50_000) {
        let decided = plan.business_in(ready, 2, 14);
        let roll = plan.rng.range(0, 99);
        if roll < 70 {
            plan.add(
                decided,
                Act::Approve {
                    record: id.to_string(),
                },
            );
        } else if roll < 80 {
            plan.event(decided, "deal", id, json!({"review_approved": true}), None);
        } else if roll >= 90 {
            // Nobody has looked yet: it waits in review.
            return;
        } else {
            plan.add(
                decided,
                Act::Reject {
                    workflow: DEALS,
                    record: id.to_string(),
                    who: "maya@example.com".into(),
                    reason: "Scope unclear: the SOW and the notes disagree".into(),
                },
            );
            return;
        }
        ready = decided + SignedDuration::from_mins(5);
    }
    // A few handoffs nobody picks up.
    if plan.rng.chance(0.04) {
        return;
    }
    // The mid-quarter change: a stronger first task gets kickoffs
    // scheduled in about a day instead of three or four.
    let lead = if after_change {
        plan.rng.range(3, 12)
    } else {
        plan.rng.range(14, 40)
    };
    let kickoff = plan.business(ready, lead);
    plan.event(
        kickoff,
        "deal",
        id,
        json!({"kickoff_scheduled_at": kickoff.to_string()}),
        None,
    );
    let escalation = if after_change { 0.04 } else { 0.12 };
    if plan.rng.chance(escalation) {
        let at = plan.business_in(kickoff, 4, 30);
        if plan.rng.chance(0.5) {
            plan.event(at, "deal", id, json!({"delivery_blocked": true}), None);
        } else {
            plan.add(
                at,
                Act::Escalate {
                    record: id.to_string(),
                    who: "ana@example.com".into(),
                    note: "Nobody knows what was promised about training".into(),
                },
            );
        }
    }
}

/// One lead: created, qualified (perhaps without its campaign), answered
/// by sales, perhaps rejected.
fn plan_lead(plan: &mut Plan, id: &str, week_monday: Date) {
    let day = week_monday
        .checked_add(jiff::Span::new().days(plan.rng.range(0, 4)))
        .unwrap_or(week_monday);
    let (hour, minute) = (plan.rng.range(9, 16), plan.rng.range(0, 59));
    let qualified = plan.local(day, hour, minute);
    let created = qualified - SignedDuration::from_hours(plan.rng.range(2, 72));
    let source = plan
        .rng
        .pick(&["webinar", "paid search", "referral", "newsletter"]);
    plan.event(
        created,
        "lead",
        id,
        json!({"name": format!("Prospect {id}"), "status": "New", "owner": "mia@example.com", "lead_source": source}),
        None,
    );
    let no_campaign = plan.rng.chance(0.12);
    let mut fields = json!({
        "status": "Sales Qualified",
        "campaign": "Q4 webinar series",
        "offer": "Free audit",
        "pain_point": "Handoffs get lost after the sale",
        "qualification_answer": "Team of 12, deciding this quarter",
        "budget_signal": "Has budget",
    });
    if no_campaign {
        if let Some(m) = fields.as_object_mut() {
            m.remove("campaign");
        }
    }
    plan.event(
        qualified,
        "lead",
        id,
        fields,
        Some(json!({"status": "Marketing Qualified"})),
    );
    let mut ready = qualified;
    if no_campaign {
        ready = plan.business_in(qualified, 1, 12);
        plan.event(
            ready,
            "lead",
            id,
            json!({"campaign": "Q4 webinar series"}),
            None,
        );
    }
    let answered = plan.business_in(ready, 1, 6);
    plan.event(
        answered,
        "lead",
        id,
        json!({"first_response_at": answered.to_string()}),
        None,
    );
    let roll = plan.rng.range(0, 99);
    if roll < 12 {
        let at = answered + SignedDuration::from_hours(1);
        let reason = if roll < 8 {
            "Qualification notes unclear: no budget owner named"
        } else {
            "No budget this year"
        };
        plan.add(
            at,
            Act::Reject {
                workflow: LEADS,
                record: id.to_string(),
                who: "sam@example.com".into(),
                reason: reason.into(),
            },
        );
        plan.event(
            at,
            "lead",
            id,
            json!({"status": "Rejected", "rejection_reason": reason}),
            None,
        );
    }
}

/// The newest handoff of `workflow` on `record` (in `status`, if given).
async fn find(
    store: &Arc<dyn Store>,
    workflow: &str,
    record: &str,
    status: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let filter = HandoffFilter {
        status: status.map(str::to_string),
        workflow: Some(workflow.to_string()),
        record_id: Some(record.to_string()),
        orphaned: None,
        stuck_before: None,
    };
    let store = store.clone();
    let page =
        tokio::task::spawn_blocking(move || store.list_handoffs(&filter, &PageRequest::first(1)))
            .await
            .map_err(|e| StoreError::Backend {
                doing: "looking up a demo handoff",
                reason: e.to_string(),
            })??;
    Ok(page.items.into_iter().next().map(|h| h.id))
}

async fn save_version(
    store: &Arc<dyn Store>,
    set: &WorkflowSet,
    at: Timestamp,
    stronger: bool,
) -> Result<(), StoreError> {
    let deals = if stronger {
        SALES_TO_DELIVERY.replace(WEAK_TASK, STRONGER_TASK)
    } else {
        SALES_TO_DELIVERY.to_string()
    };
    let files = vec![
        WorkflowFile {
            name: "crm.handoff".into(),
            text: CRM.into(),
        },
        WorkflowFile {
            name: "sales_to_delivery.handoff".into(),
            text: deals,
        },
    ];
    let version = WorkflowVersion {
        id: set.version().to_string(),
        first_loaded_at: at,
        files,
    };
    store
        .write(move |tx| tx.save_workflow_version(&version))
        .await
        .map(|_| ())
}

async fn refuse_unless_empty(store: &Arc<dyn Store>) -> Result<(), DemoError> {
    let s = store.clone();
    let (counts, versions) = tokio::task::spawn_blocking(move || {
        Ok::<_, StoreError>((s.counts()?, s.workflow_versions()?))
    })
    .await
    .map_err(|e| StoreError::Backend {
        doing: "checking the demo database is empty",
        reason: e.to_string(),
    })??;
    let events: u64 = counts.events_by_source.values().sum();
    let handoffs: u64 = counts.handoffs_by_status.values().sum();
    if events > 0 || handoffs > 0 || !versions.is_empty() {
        return Err(DemoError::NotEmpty {
            what: format!(
                "{events} events, {handoffs} handoffs, {} workflow versions",
                versions.len()
            ),
        });
    }
    Ok(())
}
