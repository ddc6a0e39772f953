-- Schema version 8: `records` becomes a rowid table, keyed by a UNIQUE
-- (object, record_id).
--
-- As a WITHOUT ROWID table it kept at most about 1,000 bytes of a row on
-- its b-tree page (SQLite's limit for index-shaped pages) and put the rest
-- on an overflow page of its own. A deal with the bundled workflows' fields
-- and one handoff is about 1.4 KB of state, so every record had a 4 KB
-- overflow page that was mostly empty, and every event wrote, synced and
-- checkpointed it again. A rowid table keeps up to about 4,000 bytes of a
-- row on its page. Measured with `benches/load.sh`-style runs: about 9 %
-- less server CPU per event and 7-10 % more events a second
-- (benches/README.md, eighth round).
--
-- The copy below reads every record once: its time grows with the number
-- of records, not with the audit log.
CREATE TABLE records_v8 (
    object           TEXT NOT NULL,
    record_id        TEXT NOT NULL,
    state            TEXT NOT NULL,
    workflow_version TEXT,
    updated_at       INTEGER NOT NULL,
    UNIQUE (object, record_id)
);
INSERT INTO records_v8 (object, record_id, state, workflow_version, updated_at)
    SELECT object, record_id, state, workflow_version, updated_at FROM records;
DROP TABLE records;
ALTER TABLE records_v8 RENAME TO records;
