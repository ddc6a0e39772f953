-- Escalations (delivery came back because context was missing), and the
-- indexes the health report reads by.

-- One row per escalation: by a rule (`escalate when` became true on an
-- event) or by a person (POST /handoffs/{id}/escalations, who also leaves
-- a note).
CREATE TABLE escalations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id TEXT NOT NULL REFERENCES handoffs (id),
    at         INTEGER NOT NULL,
    source     TEXT NOT NULL CHECK (source IN ('rule', 'person')),
    who        TEXT NOT NULL,
    reason     TEXT NOT NULL DEFAULT ''
);
CREATE INDEX escalations_by_handoff ON escalations (handoff_id, seq);

-- The report's window: handoffs by when they were triggered.
CREATE INDEX handoffs_by_triggered ON handoffs (triggered_at);

-- Only events that carried a value that did not fit: a few among many, so
-- the data-quality read skips the rest without parsing their JSON.
CREATE INDEX events_with_field_errors ON events (received_at)
    WHERE field_errors NOT IN ('[]', '{"errors":[],"unknown_values":[]}');
