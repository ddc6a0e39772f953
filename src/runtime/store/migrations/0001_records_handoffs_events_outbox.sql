-- Schema version 1: what one CRM event reads and writes in its transaction.
-- Times are INTEGER microseconds since the Unix epoch (UTC), so SQL can
-- compare them (the outbox's `next_attempt_at <= now`). JSON columns are
-- text the engine writes; json_valid keeps a bug from storing half a value.

-- The engine's per-record state (field values with their occurred_at, the
-- record's handoff instances): one row per record, loaded and saved whole.
CREATE TABLE records (
    object           TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (json_valid(state)),
    workflow_version TEXT,
    updated_at       INTEGER NOT NULL,
    PRIMARY KEY (object, record_id)
) WITHOUT ROWID;

-- Handoff instances: a queryable projection of the records' state, written
-- in the same transaction. `seq` is the stable order the list pages by.
CREATE TABLE handoffs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    workflow         TEXT NOT NULL,
    object           TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    status           TEXT NOT NULL,
    workflow_version TEXT,
    triggered_at     INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    done_at          INTEGER,
    missing          TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(missing)),
    exceptions       TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(exceptions)),
    orphaned         INTEGER NOT NULL DEFAULT 0 CHECK (orphaned IN (0, 1))
);
CREATE INDEX handoffs_by_record ON handoffs (object, record_id);
CREATE INDEX handoffs_by_status ON handoffs (status, seq);
CREATE INDEX handoffs_by_workflow ON handoffs (workflow, seq);

-- The audit log: every event, as received and as decided.
CREATE TABLE events (
    audit_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    source           TEXT NOT NULL,
    event_id         TEXT,
    content_hash     TEXT NOT NULL,
    received_at      INTEGER NOT NULL,
    object           TEXT,
    record_id        TEXT,
    raw_body         BLOB NOT NULL,
    normalized       TEXT NOT NULL CHECK (json_valid(normalized)),
    workflow_version TEXT,
    outcome          TEXT NOT NULL CHECK (json_valid(outcome)),
    field_errors     TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(field_errors))
);
-- Dedupe: the sender's id when it gives one, else the body's hash.
CREATE UNIQUE INDEX events_by_source_id ON events (source, event_id)
    WHERE event_id IS NOT NULL;
CREATE UNIQUE INDEX events_by_source_hash ON events (source, content_hash)
    WHERE event_id IS NULL;
CREATE INDEX events_by_record ON events (object, record_id);

-- Which handoffs an event touched (the "audit rows" of a handoff's view).
CREATE TABLE event_handoffs (
    audit_id   INTEGER NOT NULL REFERENCES events (audit_id),
    handoff_id TEXT NOT NULL REFERENCES handoffs (id),
    PRIMARY KEY (audit_id, handoff_id)
);
CREATE INDEX event_handoffs_by_handoff ON event_handoffs (handoff_id, audit_id);

-- Every status change of a handoff: by an event or by a person.
CREATE TABLE status_changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id  TEXT NOT NULL REFERENCES handoffs (id),
    from_status TEXT,
    to_status   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    cause_event INTEGER REFERENCES events (audit_id),
    cause_person TEXT,
    note        TEXT,
    CHECK ((cause_event IS NULL) <> (cause_person IS NULL))
);
CREATE INDEX status_changes_by_handoff ON status_changes (handoff_id, seq);

-- The transactional outbox: one row per planned action, keyed by the
-- engine's stable action id so a replayed event cannot plan it twice.
CREATE TABLE actions (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT NOT NULL UNIQUE,
    handoff_id      TEXT NOT NULL REFERENCES handoffs (id),
    kind            TEXT NOT NULL
                    CHECK (kind IN ('task', 'notify', 'email_draft', 'set', 'assign')),
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    idempotency_key TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    state           TEXT NOT NULL
                    CHECK (state IN ('pending', 'leased', 'delivered', 'dead', 'draft')),
    lease_until     INTEGER,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    INTEGER
);
CREATE INDEX actions_due ON actions (state, next_attempt_at, seq);
CREATE INDEX actions_by_handoff ON actions (handoff_id, seq);
CREATE INDEX actions_by_kind ON actions (kind, seq);
