//! The durable store behind `handoff serve`: the [`Store`] trait, its row
//! types and [`StoreError`].
//!
//! Methods are domain verbs, never SQL types, so a second backend (Postgres,
//! several replicas sharing one database) implements the same trait and runs
//! the same test suite (`tests/store/suite.rs`) without touching ingest or the engine.
//! Only `sqlite.rs` imports rusqlite.
//!
//! Writes go through one path: a job, a closure given `&mut dyn WriteTx`,
//! submitted with [`StoreExt::write`] (or [`StoreExt::write_replayable`]).
//! Jobs run in a batch that commits once (group commit, see
//! [`crate::runtime::writer`]); a job that fails rolls back alone, and its
//! answer, like every other, arrives only after its batch is durable. Reads are blocking calls on separate connections: from async
//! code call them inside `tokio::task::spawn_blocking`.
//!
//! Engine payloads (record state, outcome, action payloads, missing fields,
//! exceptions) are JSON text the store keeps but does not interpret; the
//! database only checks that each is valid JSON.

pub mod sqlite;

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

pub use crate::runtime::writer::{
    BatchReport, Job, JobResult, Receipt, ReplayableJob, WriterCounters,
};
pub use sqlite::{SqliteOptions, SqliteStore, Synchronous};

/// The audit log's key for one stored event.
pub type AuditId = i64;

/// The largest page a list returns, whatever limit is asked for.
pub const MAX_PAGE: usize = 500;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    /// The database file could not be opened or set up.
    #[error("cannot open the database `{path}`: {reason}")]
    #[diagnostic(
        code(store::open),
        help("check that the folder exists and is writable, or point --db at another file")
    )]
    Open { path: String, reason: String },
    /// The file was written by a newer handoff.
    #[error(
        "the database `{path}` has schema version {found}, but this handoff knows versions up to {known}"
    )]
    #[diagnostic(
        code(store::too_new),
        help(
            "a newer handoff wrote this file: upgrade handoff to a release that knows schema version {found}, or point --db at another file"
        )
    )]
    TooNew {
        path: String,
        found: usize,
        known: usize,
    },
    /// A pragma read back a different value than was set (SQLite ignores
    /// pragmas it does not know, so a typo would otherwise pass silently).
    #[error(
        "the database `{path}` did not take `PRAGMA {pragma} = {wanted}`: it reads back `{got}`"
    )]
    #[diagnostic(
        code(store::pragma),
        help(
            "WAL needs a file on a local disk (not `:memory:` or a network share); point --db at a local file"
        )
    )]
    Pragma {
        path: String,
        pragma: &'static str,
        wanted: String,
        got: String,
    },
    /// Upgrading the schema failed.
    #[error("cannot upgrade the database `{path}` to schema version {to}: {reason}")]
    #[diagnostic(
        code(store::migrate),
        help("restore the file from its backup, or point --db at another file")
    )]
    Migrate {
        path: String,
        to: usize,
        reason: String,
    },
    /// The database failed a statement.
    #[error("the database failed while {doing}: {reason}")]
    #[diagnostic(code(store::backend))]
    Backend { doing: &'static str, reason: String },
    /// A row the verb needs does not exist.
    #[error("no {what} `{id}`")]
    #[diagnostic(code(store::not_found))]
    NotFound { what: &'static str, id: String },
    /// A stored value could not be read back (a hand-edited file).
    #[error("the database holds {what} `{value}`, which this handoff cannot read")]
    #[diagnostic(
        code(store::corrupt),
        help("the file was edited by hand or by another program; restore it from its backup")
    )]
    Corrupt { what: &'static str, value: String },
    /// A pagination cursor this store did not hand out.
    #[error("`{0}` is not a cursor this server gave out")]
    #[diagnostic(
        code(store::cursor),
        help("pass the `next` value of the previous page unchanged, or leave the cursor out to start over")
    )]
    BadCursor(String),
    /// The disk did not confirm that committed writes reached it. Nothing
    /// more is acknowledged after this (see `writer::Syncer`).
    #[error("the disk did not confirm a write to `{path}`: {reason}")]
    #[diagnostic(
        code(store::sync),
        help(
            "check the disk (space, errors in the system log), then restart handoff: it recovers the database from its log, and the CRM resends every event that was not acknowledged"
        )
    )]
    Sync { path: String, reason: String },
    /// The writer thread is gone (the store was closed).
    #[error("the store's writer has stopped, so nothing more can be saved")]
    #[diagnostic(code(store::stopped))]
    WriterStopped,
    /// A job panicked; its writes were rolled back, the batch went on.
    #[error("a write job panicked: {0}")]
    #[diagnostic(code(store::panic))]
    JobPanicked(String),
    /// A job gave up with its own error (see [`StoreError::abort`]); its
    /// writes were rolled back.
    #[error("{0}")]
    #[diagnostic(code(store::aborted))]
    Aborted(Arc<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    /// Ends a job with the caller's own error: the job's writes roll back,
    /// and the error comes back from `write` (downcast it with
    /// [`StoreError::aborted_with`]).
    pub fn abort(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Aborted(Arc::new(e))
    }

    /// The caller's own error, if a job aborted with one of type `E`.
    pub fn aborted_with<E: std::error::Error + 'static>(&self) -> Option<&E> {
        match self {
            StoreError::Aborted(e) => e.downcast_ref::<E>(),
            _ => None,
        }
    }
}

/// How an event is recognised when it comes again: the sender's id when it
/// gives one, else a hash of its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKey<'a> {
    /// `generic`, `hubspot`, `pipedrive`, ...
    pub source: &'a str,
    pub event_id: Option<&'a str>,
    pub content_hash: &'a str,
}

/// One event for the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub source: String,
    /// The sender's id; `None` when it gives none (dedupe by hash then).
    pub event_id: Option<String>,
    pub content_hash: String,
    pub received_at: Timestamp,
    pub object: Option<String>,
    pub record_id: Option<String>,
    /// The body exactly as received (signatures are over these bytes).
    pub raw_body: Vec<u8>,
    /// The normalized event, JSON.
    pub normalized: String,
    /// The workflow version that decided it.
    pub workflow_version: Option<String>,
    /// The outcome with its trace, JSON.
    pub outcome: String,
    /// Per-field errors (a value that did not fit its type), JSON.
    pub field_errors: String,
    /// The handoff instances this event touched. They must exist already:
    /// in an ingest job, upsert the instances, then append the event, then
    /// record status changes caused by it (they name its audit id).
    pub handoff_ids: Vec<String>,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub audit_id: AuditId,
    pub event: NewEvent,
}

/// What `append_event` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this audit id.
    New(AuditId),
    /// The same event was stored before, under this audit id; nothing changed.
    Duplicate(AuditId),
}

/// A newer `set` of the same field of the same record (see
/// [`WriteTx::newer_set`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewerSet {
    /// Its action id.
    pub id: String,
    /// Whether it was delivered (else it is pending or leased).
    pub delivered: bool,
}

/// The engine's state of one record, JSON it writes and reads back whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    pub object: String,
    pub record_id: String,
    /// Field values with their `occurred_at`, and the record's handoff
    /// instances: JSON the engine owns.
    pub state: String,
    /// The workflow version that last wrote it.
    pub workflow_version: Option<String>,
    pub updated_at: Timestamp,
}

/// A handoff instance, as lists and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffRow {
    /// Given by the caller, stable for the instance's life.
    pub id: String,
    pub workflow: String,
    pub object: String,
    pub record_id: String,
    /// `paused`, `review`, `proceeded`, `done`, `withdrawn`, ...
    pub status: String,
    pub workflow_version: Option<String>,
    pub triggered_at: Timestamp,
    pub updated_at: Timestamp,
    pub done_at: Option<Timestamp>,
    /// Missing fields, JSON.
    pub missing: String,
    /// Exceptions, JSON.
    pub exceptions: String,
    /// Its workflow is gone from the loaded version.
    pub orphaned: bool,
}

/// Who or what changed a status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The event stored under this audit id.
    Event(AuditId),
    /// A person (an email or a name).
    Person(String),
}

/// One status change of a handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub handoff_id: String,
    /// `None` for the change that created the instance.
    pub from: Option<String>,
    pub to: String,
    pub at: Timestamp,
    pub cause: Cause,
    pub note: Option<String>,
}

/// The kinds of planned action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ActionKind {
    Task,
    Notify,
    EmailDraft,
    Set,
    Assign,
}

impl ActionKind {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Task => "task",
            ActionKind::Notify => "notify",
            ActionKind::EmailDraft => "email_draft",
            ActionKind::Set => "set",
            ActionKind::Assign => "assign",
        }
    }

    /// The kind named `s`.
    pub fn parse(s: &str) -> Option<ActionKind> {
        Some(match s {
            "task" => ActionKind::Task,
            "notify" => ActionKind::Notify,
            "email_draft" => ActionKind::EmailDraft,
            "set" => ActionKind::Set,
            "assign" => ActionKind::Assign,
            _ => return None,
        })
    }
}

/// Where an action is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeliveryState {
    /// Waiting for its `next_attempt_at`.
    Pending,
    /// A worker holds it until `lease_until`.
    Leased,
    Delivered,
    /// Out of attempts; `redrive` puts it back.
    Dead,
    /// An email draft waiting for a person: never delivered until approved.
    Draft,
}

impl DeliveryState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Leased => "leased",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Draft => "draft",
        }
    }

    /// The state named `s`.
    pub fn parse(s: &str) -> Option<DeliveryState> {
        Some(match s {
            "pending" => DeliveryState::Pending,
            "leased" => DeliveryState::Leased,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            "draft" => DeliveryState::Draft,
            _ => return None,
        })
    }
}

/// One planned action for the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    /// The engine's stable action id: enqueueing it again changes nothing.
    pub id: String,
    pub handoff_id: String,
    pub kind: ActionKind,
    /// JSON.
    pub payload: String,
    /// Derived from (record, handoff instance, action); sent to the target.
    pub idempotency_key: String,
    pub created_at: Timestamp,
}

/// An outbox row with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRow {
    pub id: String,
    pub handoff_id: String,
    pub kind: ActionKind,
    pub payload: String,
    pub idempotency_key: String,
    pub created_at: Timestamp,
    pub state: DeliveryState,
    pub lease_until: Option<Timestamp>,
    /// Deliveries started (a claim counts one).
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
}

/// One sink that took an action: kept so a retry skips it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkDelivery {
    pub action_id: String,
    /// `hubspot`, `pipedrive`, `slack`, `webhook`.
    pub sink: String,
    pub delivered_at: Timestamp,
    /// What the sink answered, e.g. the CRM task's id.
    pub remote_ref: Option<String>,
}

/// One file of a workflow version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowFile {
    pub name: String,
    pub text: String,
}

/// A workflow version that served, with its files' text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowVersion {
    /// The content hash.
    pub id: String,
    pub first_loaded_at: Timestamp,
    /// In load order.
    pub files: Vec<WorkflowFile>,
}

/// A workflow version without its text, for lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowVersionSummary {
    pub id: String,
    pub first_loaded_at: Timestamp,
    pub file_names: Vec<String>,
}

/// What a person did to a handoff: approve, reject, answer, escalation, ...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    pub handoff_id: String,
    /// `approve`, `reject`, `answer`, `escalation`, `edit_draft`, ...
    pub kind: String,
    pub who: String,
    pub at: Timestamp,
    pub text: String,
    /// Anything structured (answers to questions), JSON.
    pub data: Option<String>,
}

/// A stored note, in the order written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRow {
    pub seq: i64,
    pub note: NewNote,
}

/// Which handoffs a list shows; `None` matches any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandoffFilter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    pub record_id: Option<String>,
    pub orphaned: Option<bool>,
    /// Only the stuck: open (paused, in review, or proceeded and not done)
    /// and triggered before this moment (the health report's definition).
    pub stuck_before: Option<Timestamp>,
}

/// A page to read: start after `cursor` (the `next` of the previous page),
/// at most `limit` items (clamped to 1..=[`MAX_PAGE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub cursor: Option<String>,
    pub limit: usize,
}

impl PageRequest {
    /// The first page of at most `limit` items.
    pub fn first(limit: usize) -> PageRequest {
        PageRequest {
            cursor: None,
            limit,
        }
    }
}

/// One page, newest first. `next` is `None` on the last page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// Everything the API shows about one handoff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandoffDetail {
    pub handoff: HandoffRow,
    /// Oldest first.
    pub history: Vec<StatusChange>,
    pub record: Option<RecordRow>,
    /// The events that touched it, oldest first.
    pub events: Vec<EventRow>,
    /// Its actions with their delivery state, in planning order.
    pub actions: Vec<ActionRow>,
    /// What people did to it, oldest first.
    pub notes: Vec<NoteRow>,
}

/// A signed-in person's web session, named by the SHA-256 of the random id
/// only their browser's cookie holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub key: [u8; 32],
    /// The name recorded with everything they do.
    pub who: String,
    /// The token the session's forms carry back.
    pub csrf: String,
    /// A fingerprint of the sign-in tokens the server had when the session
    /// started; the session counts only while they are the same.
    pub credentials: [u8; 32],
    pub started_at: Timestamp,
    pub expires_at: Timestamp,
}

/// How many handoffs of a workflow are in an open status now (the
/// dashboard's counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    pub workflow: String,
    /// `proceeded`, `paused` or `review`.
    pub status: String,
    pub count: u64,
}

/// Counts for /metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Outbox rows per delivery state (states with no rows are absent).
    pub outbox: BTreeMap<DeliveryState, u64>,
    pub events_by_source: BTreeMap<String, u64>,
    pub handoffs_by_status: BTreeMap<String, u64>,
}

/// The verbs a write job may use. Everything a job does commits together
/// with the rest of its batch, or (if the job returns an error) not at all.
pub trait WriteTx {
    /// The audit id of the event stored under `key`, if one was.
    fn processed(&mut self, key: &EventKey<'_>) -> Result<Option<AuditId>, StoreError>;
    /// Stores an event in the audit log, unless the same event (same source
    /// and id, or same source and hash when it has no id) is there already.
    fn append_event(&mut self, event: &NewEvent) -> Result<Appended, StoreError>;
    /// One record's state.
    fn load_record(
        &mut self,
        object: &str,
        record_id: &str,
    ) -> Result<Option<RecordRow>, StoreError>;
    /// Saves one record's state, replacing what was there.
    fn save_record(&mut self, record: &RecordRow) -> Result<(), StoreError>;
    /// One handoff instance.
    fn load_instance(&mut self, id: &str) -> Result<Option<HandoffRow>, StoreError>;
    /// The handoff instances of one record, oldest first.
    fn instances_of_record(
        &mut self,
        object: &str,
        record_id: &str,
    ) -> Result<Vec<HandoffRow>, StoreError>;
    /// Creates or replaces a handoff instance (its list position stays).
    fn upsert_instance(&mut self, handoff: &HandoffRow) -> Result<(), StoreError>;
    /// Appends to a handoff's status history (the instance must exist; the
    /// instance's own `status` is set by `upsert_instance`).
    fn status_change(&mut self, change: &StatusChange) -> Result<(), StoreError>;
    /// Marks the unfinished handoffs whose (workflow, object) is not in
    /// `live` as orphaned and clears the mark on the rest; returns how many
    /// are orphaned. A workflow that keeps its name and object across
    /// versions is live: its instances migrate on their next decision. One
    /// whose name now runs on another object is gone for the old object's
    /// instances, as the engine decides. Done and withdrawn handoffs are
    /// never orphaned (nothing is left to settle).
    fn mark_orphans(&mut self, live: &[(&str, &str)]) -> Result<u64, StoreError>;
    /// Adds an action to the outbox; `false` when its id was there already
    /// (the row is left as it was). Email drafts start as `draft`, the rest
    /// as `pending`, due at `created_at`.
    fn enqueue_action(&mut self, action: &NewAction) -> Result<bool, StoreError>;
    /// Replaces a draft's payload; `false` if `id` is not a draft.
    fn edit_draft(&mut self, id: &str, payload: &str) -> Result<bool, StoreError>;
    /// Releases a draft for delivery at `at`; `false` if `id` is not a draft.
    fn approve_draft(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// The team's round-robin position, then moves it on by one (0 first).
    fn next_cursor(&mut self, team: &str) -> Result<u64, StoreError>;
    /// How many tasks a person has open.
    fn open_tasks(&mut self, person: &str) -> Result<u32, StoreError>;
    /// Adds `delta` to a person's open tasks (never below 0); the new count.
    fn adjust_open_tasks(&mut self, person: &str, delta: i64) -> Result<u32, StoreError>;
    /// Keeps a workflow version; `false` when its id was kept before.
    fn save_workflow_version(&mut self, version: &WorkflowVersion) -> Result<bool, StoreError>;
    /// Records what a person did to a handoff; the note's seq.
    fn add_note(&mut self, note: &NewNote) -> Result<i64, StoreError>;
    /// Leases up to `limit` pending actions due at `now` until `now + lease`.
    fn claim_due(
        &mut self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ActionRow>, StoreError>;
    /// A leased action was delivered; `false` if it was not leased (its
    /// lease expired and it went back to pending).
    fn mark_delivered(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// For a `set` action: the newest `set` of the same field on the same
    /// record planned after it that was delivered or is still to be sent
    /// (pending or leased; one in the dead letters does not count).
    /// Writing the older value now (a retry that came late, or a first try
    /// claimed in the same pass as the newer one and sent beside it) could
    /// leave it in the CRM over the newer one.
    fn newer_set(&mut self, id: &str) -> Result<Option<NewerSet>, StoreError>;
    /// A leased action failed; try again at `at`. `false` if it was not leased.
    fn schedule_retry(&mut self, id: &str, at: Timestamp, error: &str) -> Result<bool, StoreError>;
    /// A leased action's sink asked us to slow down (HTTP 429): back to
    /// pending, due at `at`, and this try does not count toward the
    /// attempts (a rate limit is not a failure; it must not dead-letter an
    /// action). `false` if it was not leased.
    fn throttled(&mut self, id: &str, at: Timestamp, error: &str) -> Result<bool, StoreError>;
    /// A leased action is out of attempts. `false` if it was not leased.
    fn dead_letter(&mut self, id: &str, error: &str) -> Result<bool, StoreError>;
    /// A dead action goes back to pending, due at `at`, attempts reset.
    /// `false` if it was not dead.
    fn redrive(&mut self, id: &str, at: Timestamp) -> Result<bool, StoreError>;
    /// Leases that ended before `now` go back to pending (a worker died
    /// holding them), due no earlier than `retry_at` (a CRM's search may
    /// need a while to list what the lost try made); how many.
    fn release_expired_leases(
        &mut self,
        now: Timestamp,
        retry_at: Timestamp,
    ) -> Result<u64, StoreError>;

    // --- health ---
    /// Records that delivery escalated a handoff (the handoff must exist):
    /// by a rule (`escalate when`) or by a person (the API); its seq.
    fn record_escalation(
        &mut self,
        escalation: &crate::health::EscalationFact,
    ) -> Result<i64, StoreError>;
    // --- crm ---
    /// Whether a CRM event of `object/record_id` waits for its decision
    /// (then later events of the record wait behind it).
    fn crm_has_pending(&mut self, object: &str, record_id: &str) -> Result<bool, StoreError>;
    /// Stores a CRM event whose decision must wait; false when the same
    /// `(source, event_id)` already waits.
    fn crm_add_pending(&mut self, pending: &NewPending) -> Result<bool, StoreError>;
    /// Deletes a pending event (in the job that decided it).
    fn crm_remove_pending(&mut self, seq: i64) -> Result<bool, StoreError>;
    /// Records a failed attempt and when to try again.
    fn crm_pending_failed(
        &mut self,
        seq: i64,
        next_attempt_at: Timestamp,
        error: &str,
    ) -> Result<bool, StoreError>;
    // --- delivery ---
    /// The sinks that already took action `action_id`.
    fn sink_deliveries(&mut self, action_id: &str) -> Result<Vec<SinkDelivery>, StoreError>;
    /// Records that a sink took an action; `false` if it was recorded before.
    fn sink_delivered(&mut self, delivery: &SinkDelivery) -> Result<bool, StoreError>;
    // --- web ---
    /// Keeps a new web session. Sessions expired by the time it started are
    /// dropped, and past `keep` live sessions the ones that expire first go.
    fn start_session(&mut self, session: &SessionRow, keep: usize) -> Result<(), StoreError>;
    /// Ends the session whose id hashes to `key`; `false` if there was none.
    fn end_session(&mut self, key: &[u8; 32]) -> Result<bool, StoreError>;
}

/// A durable store. Writes go through [`Store::submit`] (use
/// [`StoreExt::write`]); the rest are blocking reads and outbox verbs.
pub trait Store: Send + Sync {
    /// Queues a boxed write job; prefer [`StoreExt::write`].
    fn submit(&self, job: Job) -> Receipt;
    /// Queues a boxed job that may run more than once (see
    /// [`ReplayableJob`]); prefer [`StoreExt::write_replayable`]. A backend
    /// that gains nothing from replaying runs it once, as this default does.
    fn submit_replayable(&self, job: ReplayableJob) -> Receipt {
        self.submit(Box::new(move |tx: &mut dyn WriteTx| job(tx)))
    }
    /// Batch sizes and commit latency so far.
    fn writer_counters(&self) -> WriterCounters;

    /// Handoffs matching `filter`, newest first.
    fn list_handoffs(
        &self,
        filter: &HandoffFilter,
        page: &PageRequest,
    ) -> Result<Page<HandoffRow>, StoreError>;
    /// One handoff with its history, record, events, actions and notes.
    fn handoff(&self, id: &str) -> Result<Option<HandoffDetail>, StoreError>;
    /// One event by audit id.
    fn event(&self, audit_id: AuditId) -> Result<Option<EventRow>, StoreError>;
    /// One event by the sender's id.
    fn event_by_source_id(
        &self,
        source: &str,
        event_id: &str,
    ) -> Result<Option<EventRow>, StoreError>;
    /// Actions of kind `task`, newest first.
    fn list_tasks(&self, page: &PageRequest) -> Result<Page<ActionRow>, StoreError>;
    /// Dead actions, newest first.
    fn dead_letters(&self, page: &PageRequest) -> Result<Page<ActionRow>, StoreError>;
    /// Every workflow version that served, oldest first.
    fn workflow_versions(&self) -> Result<Vec<WorkflowVersionSummary>, StoreError>;
    /// One workflow version with its files.
    fn workflow_version(&self, id: &str) -> Result<Option<WorkflowVersion>, StoreError>;
    /// Counts for /metrics.
    fn counts(&self) -> Result<StoreCounts, StoreError>;

    // --- delivery ---
    /// One outbox row by its id.
    fn action(&self, id: &str) -> Result<Option<ActionRow>, StoreError>;
    /// The sinks that already took action `action_id`, in the order they did.
    fn sink_deliveries(&self, action_id: &str) -> Result<Vec<SinkDelivery>, StoreError>;

    /// See [`WriteTx::claim_due`]. Blocking: goes through the writer.
    fn claim_due(
        &self,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ActionRow>, StoreError> {
        self.write_blocking(move |tx| tx.claim_due(now, lease, limit))
    }
    /// See [`WriteTx::mark_delivered`].
    fn mark_delivered(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write_blocking(move |tx| tx.mark_delivered(&id, at))
    }
    /// See [`WriteTx::schedule_retry`].
    fn schedule_retry(&self, id: &str, at: Timestamp, error: &str) -> Result<bool, StoreError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        self.write_blocking(move |tx| tx.schedule_retry(&id, at, &error))
    }
    /// See [`WriteTx::throttled`].
    fn throttled(&self, id: &str, at: Timestamp, error: &str) -> Result<bool, StoreError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        self.write_blocking(move |tx| tx.throttled(&id, at, &error))
    }
    /// See [`WriteTx::dead_letter`].
    fn dead_letter(&self, id: &str, error: &str) -> Result<bool, StoreError> {
        let (id, error) = (id.to_owned(), error.to_owned());
        self.write_blocking(move |tx| tx.dead_letter(&id, &error))
    }
    /// See [`WriteTx::redrive`].
    fn redrive(&self, id: &str, at: Timestamp) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.write_blocking(move |tx| tx.redrive(&id, at))
    }
    /// See [`WriteTx::release_expired_leases`].
    fn release_expired_leases(
        &self,
        now: Timestamp,
        retry_at: Timestamp,
    ) -> Result<u64, StoreError> {
        self.write_blocking(move |tx| tx.release_expired_leases(now, retry_at))
    }

    // --- web ---
    /// Email drafts waiting for a person, newest first.
    fn drafts(&self, page: &PageRequest) -> Result<Page<ActionRow>, StoreError>;
    /// How many handoffs of each workflow are `proceeded`, `paused` or in
    /// `review` now, for the dashboard: counted by the store (it reads the
    /// open handoffs only, however long the history).
    fn open_counts(&self) -> Result<Vec<StatusCount>, StoreError>;
    /// The session whose id hashes to `key`, unless it expired by `now`.
    fn session(&self, key: &[u8; 32], now: Timestamp) -> Result<Option<SessionRow>, StoreError>;
    // --- health ---
    /// What the health report reads, in one snapshot: the handoffs
    /// triggered at or after `since` and every handoff still open, with
    /// their status changes (a change into `paused` or `review` carries the
    /// missing fields or exceptions of the event that caused it), notes,
    /// escalations and next owner; the field errors of events received
    /// since `since`; and the workflow versions.
    fn health_rows(&self, since: Timestamp) -> Result<crate::health::HealthRows, StoreError>;
    // --- crm ---
    /// A record's stored state, read outside the writer (the adapters read
    /// it to see which fields were never heard of before they decide).
    fn crm_record(&self, object: &str, record_id: &str) -> Result<Option<RecordRow>, StoreError>;
    /// Pending CRM events due by `now`, oldest first, at most `limit`.
    fn crm_due_pending(&self, now: Timestamp, limit: usize) -> Result<Vec<PendingRow>, StoreError>;
    /// How many CRM events wait for their decision.
    fn crm_pending_count(&self) -> Result<u64, StoreError>;
    /// How many CRM events wait for their decision and when the oldest was
    /// received: the `handoff_crm_pending_*` gauges, read on every scrape.
    fn crm_pending_summary(&self) -> Result<PendingSummary, StoreError>;
    // --- load ---
    /// Actions waiting for delivery (pending or leased, not drafts waiting
    /// for a person): the `handoff_outbox_depth` gauge, read on every
    /// scrape. Backends should answer from an index over the state, so the
    /// cost follows the depth, not the table; this default counts them all.
    fn outbox_depth(&self) -> Result<u64, StoreError> {
        let counts = self.counts()?;
        let n = |s| counts.outbox.get(&s).copied().unwrap_or(0);
        Ok(n(DeliveryState::Pending) + n(DeliveryState::Leased))
    }
}

/// Typed writes on any [`Store`]: the job's return type is boxed on the way
/// through the writer and unboxed here.
pub trait StoreExt: Store {
    /// Runs `job` in the next batch; resolves once that batch committed.
    /// The job is queued before this returns (not on first poll), so the
    /// order of `write` calls is the order jobs run in.
    fn write<T, F>(&self, job: F) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    {
        let receipt = self.submit(box_job(job));
        async move { unbox(receipt.wait().await) }
    }

    /// [`StoreExt::write`] for a job that may run more than once: if
    /// another job of its batch fails, the batch is rolled back and run
    /// again (see [`ReplayableJob`]), which spares the writer a savepoint
    /// per job. Only the run that commits counts; the job must have no
    /// effect outside the transaction.
    fn write_replayable<T, F>(
        &self,
        job: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: Fn(&mut dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    {
        let receipt = self.submit_replayable(Box::new(move |tx: &mut dyn WriteTx| {
            job(tx).map(|v| Box::new(v) as Box<dyn Any + Send>)
        }));
        async move { unbox(receipt.wait().await) }
    }

    /// [`StoreExt::write`] for blocking code (a thread, `spawn_blocking`);
    /// panics if called on an async runtime's thread.
    fn write_blocking<T, F>(&self, job: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    {
        unbox(self.submit(box_job(job)).wait_blocking())
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

fn box_job<T, F>(job: F) -> Job
where
    T: Send + 'static,
    F: FnOnce(&mut dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(move |tx: &mut dyn WriteTx| job(tx).map(|v| Box::new(v) as Box<dyn Any + Send>))
}

fn unbox<T: 'static>(result: JobResult) -> Result<T, StoreError> {
    let boxed = result?;
    match boxed.downcast::<T>() {
        Ok(v) => Ok(*v),
        // Only a backend that answers a job with another job's value gets here.
        Err(_) => Err(StoreError::Backend {
            doing: "answering a write job",
            reason: "the writer returned a value of another type".into(),
        }),
    }
}

// --- crm ---
/// A CRM event stored before its decision (the CRM's API was unreachable).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPending {
    pub source: String,
    pub event_id: String,
    pub object: String,
    pub record_id: String,
    /// The normalized event, in the generic event shape (JSON).
    pub event: String,
    pub raw_body: Vec<u8>,
    pub received_at: Timestamp,
    pub next_attempt_at: Timestamp,
    pub error: String,
}

/// The CRM events waiting for their decision, in brief.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PendingSummary {
    pub events: u64,
    /// When the oldest waiting event was received; `None` when none waits.
    pub oldest_received_at: Option<Timestamp>,
}

/// A stored pending CRM event.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingRow {
    pub seq: i64,
    pub source: String,
    pub event_id: String,
    pub object: String,
    pub record_id: String,
    pub event: String,
    pub raw_body: Vec<u8>,
    pub received_at: Timestamp,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: String,
}
