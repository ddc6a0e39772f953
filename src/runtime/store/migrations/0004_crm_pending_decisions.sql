-- Schema version 4 (issue 11): CRM events stored but not yet decided,
-- because the record had to be read from the CRM's API first and the API
-- could not be reached. Each row is acknowledged to the CRM (it is stored);
-- `handoff serve` retries it, in `seq` order per record, and deletes it in
-- the same transaction that decides it.
CREATE TABLE crm_pending (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    source          TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    object          TEXT NOT NULL,
    record_id       TEXT NOT NULL,
    -- The adapter's normalized event (the generic event shape), before
    -- hydration: decoded again by whatever workflow version is serving.
    event           TEXT NOT NULL CHECK (json_valid(event)),
    raw_body        BLOB NOT NULL,
    received_at     INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    UNIQUE (source, event_id)
);
CREATE INDEX crm_pending_by_record ON crm_pending (object, record_id, seq);
CREATE INDEX crm_pending_due ON crm_pending (next_attempt_at, seq);
