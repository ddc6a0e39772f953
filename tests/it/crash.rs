//! Crash safety (issue 10, acceptance 2): the real `handoff serve` under
//! concurrent load is killed with SIGKILL at [`KILLS`] random points and
//! restarted on the same database each time. Then the SQLite file is read
//! directly and held against what the clients were told and against a
//! replay of the audit log with the library:
//!
//! - every event answered 2xx is in the audit log exactly once (under the
//!   audit id it was answered with); an event that got no answer is there
//!   at most once; nothing is there that no client sent;
//! - each record's events are in the log in the order its client sent them;
//! - `eval::step` over the logged events in audit order (one
//!   `MemoryAssignments` for all, each event at its stored `received_at`)
//!   gives every stored decision, record state, handoff row, outbox row and
//!   assignment counter exactly: nothing applied twice, nothing lost;
//! - no outbox row exists twice (idempotency keys unique).
//!
//! Clients own their records and send each record's events in order, some
//! in batches, some without an id (deduped by content hash, or named by
//! the request's `webhook-id` and their content when it has one), some sent
//! again after their answer (must come back `duplicate`), and retry or
//! abandon a request that got no answer. Kill points are counted in
//! acknowledged requests, never timed. The seed is printed; set
//! `CRASH_SEED` to run one again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use handoff::compile::WorkflowSet;
use handoff::eval::{self, Event, MemoryAssignments, RecordState, StoredRecord};
use handoff::runtime::ingest;
use serde_json::{json, Value as J};
use tokio::sync::watch;

use crate::helpers::{start_binary_in, workspace, BinApp, BOUND};

/// How many times the server is killed.
const KILLS: usize = 10;
/// Concurrent clients, each owning its records.
const TASKS: usize = 6;
/// Deals per client (each client also owns one lead).
const DEALS_PER_TASK: usize = 3;
/// At most this many acknowledged requests between two kills.
const MAX_ACKS_BETWEEN_KILLS: u64 = 60;

/// splitmix64: a small seeded generator, so a failing run can be repeated
/// from its printed seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One event as a client sent it.
#[derive(Debug, Clone)]
struct Sent {
    /// The dedupe key: the event id, or, when it has none, the request's
    /// `webhook-id` and 16 hex digits of its content
    /// (`t1-m3#0123456789abcdef`, see `hooks::MessageNames`) or the content
    /// hash alone.
    key: String,
    object: String,
    record_id: String,
    json: J,
    /// Answered 2xx, with this audit id.
    acked: Option<i64>,
}

/// What one client did.
#[derive(Debug, Default)]
struct Log {
    /// Every event, in the order first sent.
    sent: Vec<Sent>,
    /// Anything the server answered that it should not have.
    errors: Vec<String>,
    /// Requests sent again after their 2xx, all answered `duplicate`.
    duplicates: usize,
    /// Requests that got no answer and were sent again.
    retried: usize,
    /// Requests that got no answer and were given up.
    abandoned: usize,
}

/// What the clients share with the supervisor.
struct Shared {
    /// (restart count, base URL) of the server now running.
    server: watch::Sender<(usize, String)>,
    /// Requests answered 2xx so far.
    acked: watch::Sender<u64>,
    stop: AtomicBool,
}

/// Values worth sending per field: ones that fire, pause, review, finish
/// and re-trigger handoffs, plus a value of the wrong type and one outside
/// a `one of` list (stored as per-field errors, never rejected).
fn fields(object: &str) -> Vec<(&'static str, Vec<J>)> {
    match object {
        "deal" => vec![
            ("name", vec![json!("Acme"), json!("Beta LLC")]),
            (
                "stage",
                vec![
                    json!("Proposal"),
                    json!("Closed Won"),
                    json!("Closed Won"),
                    json!("Closed Lost"),
                    json!("Qualified"),
                    json!("Closed-Won"),
                ],
            ),
            (
                "owner",
                vec![json!("sam@example.com"), json!("kim@example.com")],
            ),
            (
                "amount",
                vec![json!(8000), json!(60000), json!(0), json!("12.50")],
            ),
            ("segment", vec![json!("smb"), json!("enterprise")]),
            ("buyer_goals", vec![json!("Launch by January")]),
            ("main_contact", vec![json!("li@beta.example")]),
            ("signed_scope", vec![json!("https://docs.example/sow")]),
            (
                "start_date",
                vec![
                    json!("2026-12-14"),
                    json!("2027-01-05"),
                    json!("next tuesday"),
                ],
            ),
            ("promised_deliverables", vec![json!(["Setup", "Training"])]),
            ("pricing_exceptions", vec![json!("None")]),
            (
                "risk_notes",
                vec![json!("None"), json!("blocker: legal review")],
            ),
            ("kickoff_preference", vec![json!("Async first")]),
            ("custom_scope", vec![json!(true), json!(false)]),
            ("review_approved", vec![json!(true), json!(false)]),
            ("kickoff_scheduled_at", vec![json!("2026-12-02T15:00:00Z")]),
        ],
        _ => vec![
            ("name", vec![json!("Dana")]),
            (
                "status",
                vec![
                    json!("New"),
                    json!("Sales Qualified"),
                    json!("Sales Qualified"),
                    json!("Rejected"),
                ],
            ),
            ("owner", vec![json!("sam@example.com")]),
            ("lead_source", vec![json!("webinar")]),
            ("campaign", vec![json!("Q4 launch")]),
            ("offer", vec![json!("Free audit")]),
            ("pain_point", vec![json!("Slow onboarding")]),
            ("qualification_answer", vec![json!("Yes, this quarter")]),
            ("budget_signal", vec![json!("Approved")]),
            ("last_touchpoint", vec![json!("2026-11-19T10:00:00Z")]),
            ("first_response_at", vec![json!("2026-11-21T10:00:00Z")]),
        ],
    }
}

/// A client: its records, its generator, its clock for `occurred_at`.
struct Client {
    task: usize,
    rng: Rng,
    records: Vec<(&'static str, String)>,
    minute: i64,
    next_id: usize,
    set: WorkflowSet,
    log: Log,
}

impl Client {
    fn event(&mut self) -> Sent {
        let (object, record_id) = self.rng.pick(&self.records).clone();
        let all = fields(object);
        let mut record = serde_json::Map::new();
        for _ in 0..1 + self.rng.below(8) {
            let (name, values) = self.rng.pick(&all);
            record.insert(name.to_string(), self.rng.pick(values).clone());
        }
        // The stage (status) often: it is what fires handoffs.
        if self.rng.percent(40) {
            let (name, values) = &all[1];
            record.insert(name.to_string(), self.rng.pick(values).clone());
        }
        self.minute += 1;
        let with_id = self.rng.percent(85);
        // Out of order (an older event after a newer one), only for events
        // with an id: an id-less event must differ in content from every other.
        let back = if with_id && self.rng.percent(10) {
            self.rng.below(90) as i64
        } else {
            0
        };
        let at = jiff::Timestamp::from_second(1_795_132_800 + (self.minute - back) * 60).unwrap();
        let mut json = json!({"object": object, "record_id": record_id,
                              "occurred_at": at.to_string(), "record": record});
        if self.rng.percent(20) {
            let (field, values) = &all[1];
            json["previous"] = json!({ *field: self.rng.pick(values).clone() });
        }
        let key = if with_id {
            self.next_id += 1;
            let id = format!("t{}-e{}", self.task, self.next_id);
            json["id"] = json!(id);
            id
        } else {
            let e = Event::decode_lenient(&self.set, json.to_string().as_bytes()).unwrap();
            ingest::content_hash(&e, &ingest::normalized(&self.set, &e))
        };
        Sent {
            key,
            object: object.to_string(),
            record_id,
            json,
            acked: None,
        }
    }

    /// Sends requests until told to stop.
    async fn run(mut self, shared: Arc<Shared>) -> Log {
        // A fresh connection per request: a pooled one to a killed server
        // (whose restart may get the same port) would fail without the
        // server being down, and the client would wait for a restart that
        // is not coming.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        while !shared.stop.load(Ordering::Relaxed) {
            let n = if self.rng.percent(30) {
                2 + self.rng.below(3) as usize
            } else {
                1
            };
            let first = self.log.sent.len();
            // Half the requests are Standard Webhooks messages: their
            // id-less events are named by the message and their content.
            let message = self.rng.percent(50).then(|| {
                self.next_id += 1;
                format!("t{}-m{}", self.task, self.next_id)
            });
            let mut names = handoff::runtime::http::hooks::MessageNames::default();
            for _ in 0..n {
                let mut e = self.event();
                if let (Some(m), None) = (&message, e.json.get("id")) {
                    e.key = names.name(m, &e.json.to_string());
                }
                self.log.sent.push(e);
            }
            let batch: Vec<J> = self.log.sent[first..]
                .iter()
                .map(|s| s.json.clone())
                .collect();
            let body = if n == 1 {
                batch[0].to_string()
            } else {
                J::Array(batch).to_string()
            };
            let answer = loop {
                match send(&client, &shared, &body, message.as_deref()).await {
                    Some(answer) => break Some(answer),
                    None if self.rng.percent(60) => self.log.retried += 1,
                    None => {
                        self.log.abandoned += 1;
                        break None;
                    }
                }
            };
            let Some((status, reply)) = answer else {
                continue;
            };
            if status != 200 {
                self.log
                    .errors
                    .push(format!("{body} was answered {status}: {reply}"));
                continue;
            }
            shared.acked.send_modify(|n| *n += 1);
            for (i, sent) in self.log.sent[first..].iter_mut().enumerate() {
                sent.acked = Some(reply["events"][i]["audit_id"].as_i64().unwrap_or(-1));
            }
            // The CRM retries a request it already got an answer for.
            if self.rng.percent(10) {
                if let Some((status, again)) =
                    send(&client, &shared, &body, message.as_deref()).await
                {
                    self.check_duplicate(first, &body, status, &again);
                }
            }
        }
        self.log
    }

    fn check_duplicate(&mut self, first: usize, body: &str, status: u16, reply: &J) {
        self.log.duplicates += 1;
        for (i, sent) in self.log.sent[first..].iter().enumerate() {
            let e = &reply["events"][i];
            if status != 200 || e["duplicate"] != true || e["audit_id"].as_i64() != sent.acked {
                self.log.errors.push(format!(
                    "sent again, {body} was answered {status}: {reply} (first answer: audit id {:?})",
                    sent.acked
                ));
            }
        }
    }
}

/// Posts `body` to the server running now, with `message` as its
/// `webhook-id` (the same on every try). `None` when no answer came (the
/// server was killed): waits, within [`BOUND`], for its restart first.
async fn send(
    client: &reqwest::Client,
    shared: &Shared,
    body: &str,
    message: Option<&str>,
) -> Option<(u16, J)> {
    let (restarts, base) = shared.server.borrow().clone();
    let mut request = client
        .post(format!("{base}/hooks/generic"))
        .body(body.to_string())
        .timeout(BOUND);
    if let Some(m) = message {
        request = request.header("webhook-id", m);
    }
    let sent = request.send().await;
    match sent {
        Ok(res) => {
            let status = res.status().as_u16();
            // A 2xx is an acknowledgement even if the body were cut off.
            Some((status, res.json().await.unwrap_or(J::Null)))
        }
        Err(_) => {
            let mut rx = shared.server.subscribe();
            tokio::time::timeout(BOUND, rx.wait_for(|(r, _)| *r > restarts))
                .await
                .expect("the server is restarted in time")
                .expect("the supervisor is running");
            None
        }
    }
}

/// Waits, within [`BOUND`], until `more` requests more were acknowledged.
async fn wait_for_acks(acked: &mut watch::Receiver<u64>, more: u64) {
    let target = *acked.borrow() + more;
    tokio::time::timeout(BOUND, acked.wait_for(|n| *n >= target))
        .await
        .unwrap_or_else(|_| panic!("{more} more requests acknowledged within {BOUND:?}"))
        .expect("the counter is kept");
}

async fn start(dir: tempfile::TempDir) -> BinApp {
    match start_binary_in(dir, &[], &[("HANDOFF_WATCH", "false")]).await {
        Ok(app) => app,
        Err(stopped) => panic!("the server did not start again: {}", stopped.stderr),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_events_survive_sigkill_exactly_once() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond() as u64);
    println!("crash test seed: {seed} (CRASH_SEED={seed} repeats this run)");
    let mut rng = Rng(seed);

    let dir = workspace();
    let set = handoff::compile::load(&[dir.path().join("workflows")])
        .expect("the bundled workflows load")
        .0;
    let mut app = start(dir).await;
    let shared = Arc::new(Shared {
        server: watch::channel((0, app.base.clone())).0,
        acked: watch::channel(0).0,
        stop: AtomicBool::new(false),
    });

    let clients: Vec<_> = (0..TASKS)
        .map(|task| {
            let mut records: Vec<(&'static str, String)> = (0..DEALS_PER_TASK)
                .map(|i| ("deal", format!("D-{task}-{i}")))
                .collect();
            records.push(("lead", format!("L-{task}")));
            let client = Client {
                task,
                rng: Rng(rng.next()),
                records,
                minute: 0,
                next_id: 0,
                set: set.clone(),
                log: Log::default(),
            };
            tokio::spawn(client.run(shared.clone()))
        })
        .collect();

    let mut acked_rx = shared.acked.subscribe();
    for kill in 1..=KILLS {
        // Sometimes right after the start (while it records its workflow
        // version), mostly while requests are in flight.
        let after = rng.below(MAX_ACKS_BETWEEN_KILLS + 1);
        wait_for_acks(&mut acked_rx, after).await;
        let (dir, stopped) = app.kill().await;
        println!(
            "kill {kill}: SIGKILL after {after} more acknowledged requests ({} in all)",
            *shared.acked.borrow()
        );
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&stopped.status),
            Some(libc::SIGKILL)
        );
        app = start(dir).await;
        shared.server.send_modify(|(restarts, base)| {
            *restarts += 1;
            *base = app.base.clone();
        });
    }
    wait_for_acks(&mut acked_rx, 20).await;
    shared.stop.store(true, Ordering::Relaxed);
    let mut logs = Vec::new();
    for c in clients {
        logs.push(
            tokio::time::timeout(BOUND, c)
                .await
                .expect("the clients stop in time")
                .expect("a client did not panic"),
        );
    }
    let (dir, stopped) = app.stop_keeping_dir().await;
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);

    let errors: Vec<&String> = logs.iter().flat_map(|l| &l.errors).collect();
    assert!(errors.is_empty(), "unexpected answers: {errors:#?}");
    let sent: Vec<&Sent> = logs.iter().flat_map(|l| &l.sent).collect();
    let total = |f: fn(&Log) -> usize| logs.iter().map(f).sum::<usize>();
    let named = sent.iter().filter(|s| s.key.contains('#')).count();
    let hashed = sent
        .iter()
        .filter(|s| s.json.get("id").is_none() && !s.key.contains('#'))
        .count();
    // Every kind of event key is exercised (each run sends hundreds).
    assert!(
        named > 0 && hashed > 0,
        "{named} named by their message, {hashed} by content"
    );
    println!(
        "{} events sent ({named} named by their message, {hashed} by their content alone), \
         {} acknowledged; {} requests sent again after their answer, \
         {} retried and {} abandoned after no answer",
        sent.len(),
        sent.iter().filter(|s| s.acked.is_some()).count(),
        total(|l| l.duplicates),
        total(|l| l.retried),
        total(|l| l.abandoned),
    );
    let db = rusqlite::Connection::open_with_flags(
        dir.path().join("handoff.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    check(&db, &set, &sent);
}

/// An audit row.
struct Logged {
    audit_id: i64,
    key: String,
    object: String,
    record_id: String,
    received_at: i64,
    version: String,
    outcome: J,
}

fn query<T>(
    db: &rusqlite::Connection,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    db.prepare(sql)
        .unwrap()
        .query_map([], row)
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn json_of(text: String) -> J {
    serde_json::from_str(&text).unwrap()
}

fn check(db: &rusqlite::Connection, set: &WorkflowSet, sent: &[&Sent]) {
    let log: Vec<Logged> = query(
        db,
        "SELECT audit_id, coalesce(event_id, content_hash), object, record_id, received_at, \
         workflow_version, outcome FROM events ORDER BY audit_id",
        |r| {
            Ok(Logged {
                audit_id: r.get(0)?,
                key: r.get(1)?,
                object: r.get(2)?,
                record_id: r.get(3)?,
                received_at: r.get(4)?,
                version: r.get(5)?,
                outcome: json_of(r.get(6)?),
            })
        },
    );

    // Every event in the log was sent, and is there once.
    let by_key: HashMap<&str, &Sent> = sent.iter().map(|s| (s.key.as_str(), *s)).collect();
    assert_eq!(by_key.len(), sent.len(), "the clients sent distinct events");
    let mut logged: HashMap<&str, i64> = HashMap::new();
    for row in &log {
        assert!(
            by_key.contains_key(row.key.as_str()),
            "audit row {} ({}) was never sent",
            row.audit_id,
            row.key
        );
        let again = logged.insert(&row.key, row.audit_id);
        assert_eq!(again, None, "{} is in the audit log twice", row.key);
    }
    // Every acknowledged event is there, under the id it was answered with.
    let mut unanswered = (0, 0);
    for s in sent {
        match s.acked {
            Some(id) => assert_eq!(
                logged.get(s.key.as_str()),
                Some(&id),
                "{} was acknowledged as audit id {id}",
                s.key
            ),
            None if logged.contains_key(s.key.as_str()) => unanswered.0 += 1,
            None => unanswered.1 += 1,
        }
    }
    println!(
        "{} events in the audit log; of the events that got no answer, {} were stored and {} not",
        log.len(),
        unanswered.0,
        unanswered.1
    );
    // Each record's events are logged in the order its client sent them.
    let mut order: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for s in sent {
        if logged.contains_key(s.key.as_str()) {
            order
                .entry((&s.object, &s.record_id))
                .or_default()
                .push(&s.key);
        }
    }
    let mut in_log: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for row in &log {
        in_log
            .entry((&row.object, &row.record_id))
            .or_default()
            .push(&row.key);
    }
    assert_eq!(in_log, order, "records' events are logged in send order");

    // Replay the log with the library, in audit order.
    let mut memory = MemoryAssignments::default();
    let mut records: BTreeMap<(String, String), RecordState> = BTreeMap::new();
    let mut planned: BTreeMap<String, J> = BTreeMap::new();
    let mut instances: BTreeMap<String, J> = BTreeMap::new();
    for row in &log {
        assert_eq!(row.version, set.version(), "audit row {}", row.audit_id);
        let s = by_key[row.key.as_str()];
        let mut event = Event::decode_lenient(set, s.json.to_string().as_bytes()).unwrap();
        if s.key.contains('#') {
            // Named by its message: the server decided it under that id.
            event.id = s.key.clone();
        }
        let now = jiff::Timestamp::from_microsecond(row.received_at).unwrap();
        let key = (row.object.clone(), row.record_id.clone());
        let before = records.remove(&key);
        let (state, outcome) = eval::step(set, before, &event, now, &mut memory).unwrap();
        let replayed = serde_json::to_value(&outcome).unwrap();
        assert_eq!(
            row.outcome, replayed,
            "the decision stored for audit row {} ({}) is not what a replay decides",
            row.audit_id, row.key
        );
        for h in &outcome.handoffs {
            if h.instance.is_some() {
                for a in &h.actions {
                    let again = planned.insert(a.id.clone(), serde_json::to_value(a).unwrap());
                    assert_eq!(again, None, "the replay planned {} twice", a.id);
                }
            }
        }
        // The last state of every run, including runs a re-trigger replaced
        // (their rows stay).
        for (workflow, inst) in &state.handoffs {
            instances.insert(inst.id.clone(), projection(workflow, &key.0, &key.1, inst));
        }
        records.insert(key, state);
    }

    // Record states.
    let stored: BTreeMap<(String, String), StoredRecord> =
        query(db, "SELECT object, record_id, state FROM records", |r| {
            Ok(((r.get(0)?, r.get(1)?), r.get::<_, String>(2)?))
        })
        .into_iter()
        .map(|(k, state)| (k, serde_json::from_str(&state).unwrap()))
        .collect();
    let replayed: BTreeMap<(String, String), StoredRecord> = records
        .iter()
        .map(|((object, id), state)| {
            let schema = set.object(object).unwrap();
            ((object.clone(), id.clone()), state.to_stored(schema))
        })
        .collect();
    assert_eq!(stored.len(), replayed.len(), "records stored vs replayed");
    for (key, state) in &replayed {
        assert_eq!(stored.get(key), Some(state), "the state of {key:?}");
    }

    // The handoff rows are the projection of the replayed instances.
    let rows: BTreeMap<String, J> = query(
        db,
        "SELECT id, workflow, object, record_id, status, workflow_version, triggered_at, \
         updated_at, done_at, missing, exceptions, orphaned FROM handoffs",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                json!([
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                    json_of(r.get(9)?),
                    json_of(r.get(10)?),
                    r.get::<_, bool>(11)?
                ]),
            ))
        },
    )
    .into_iter()
    .collect();
    assert_eq!(
        rows.len(),
        instances.len(),
        "handoff rows stored vs replayed"
    );
    for (id, row) in &instances {
        assert_eq!(rows.get(id), Some(row), "handoff row {id}");
    }

    // The outbox: exactly the planned actions, each once.
    let outbox: Vec<(String, String, String)> = query(
        db,
        "SELECT id, idempotency_key, payload FROM actions ORDER BY seq",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    let keys: BTreeSet<&str> = outbox.iter().map(|(_, k, _)| k.as_str()).collect();
    assert_eq!(keys.len(), outbox.len(), "an idempotency key is used twice");
    let stored_actions: BTreeMap<String, J> = outbox
        .iter()
        .map(|(id, _, payload)| (id.clone(), json_of(payload.clone())))
        .collect();
    assert_eq!(stored_actions.len(), outbox.len(), "an action id is twice");
    assert_eq!(
        stored_actions.keys().collect::<Vec<_>>(),
        planned.keys().collect::<Vec<_>>(),
        "the outbox holds exactly the actions the replay plans"
    );
    assert_eq!(stored_actions, planned, "outbox payloads");
    let tasks = outbox
        .iter()
        .filter(|(_, _, p)| json_of(p.clone())["type"] == "task")
        .count();

    // No event changed a handoff's status twice.
    let doubled: Vec<(String, i64, i64)> = query(
        db,
        "SELECT handoff_id, cause_event, count(*) FROM status_changes \
         WHERE cause_event IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    assert!(
        doubled.is_empty(),
        "status changes recorded twice: {doubled:?}"
    );

    // The assignment memory moved once per decision.
    let cursors: BTreeMap<String, u64> = query(db, "SELECT team, next FROM team_cursors", |r| {
        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
    })
    .into_iter()
    .collect();
    let replayed_cursors: BTreeMap<String, u64> = memory
        .teams
        .iter()
        .map(|(t, s)| (t.clone(), s.cursor))
        .collect();
    assert_eq!(cursors, replayed_cursors, "round-robin cursors");
    let open: BTreeMap<String, u32> = query(
        db,
        "SELECT person, count FROM open_tasks WHERE count > 0",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .into_iter()
    .collect();
    let replayed_open: BTreeMap<String, u32> = memory
        .open_tasks
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(open, replayed_open, "open tasks per person");
    println!(
        "replayed {} events over {} records: {} handoffs, {} outbox rows ({tasks} tasks), all equal",
        log.len(),
        records.len(),
        rows.len(),
        outbox.len()
    );
}

/// A handoff row as the test compares it: `ingest::row` of the instance.
fn projection(workflow: &str, object: &str, record_id: &str, inst: &eval::Instance) -> J {
    let h = ingest::row(workflow, object, record_id, inst);
    json!([
        h.workflow,
        h.object,
        h.record_id,
        h.status,
        h.workflow_version,
        h.triggered_at.as_microsecond(),
        h.updated_at.as_microsecond(),
        h.done_at.map(|t| t.as_microsecond()),
        json_of(h.missing),
        json_of(h.exceptions),
        h.orphaned
    ])
}
