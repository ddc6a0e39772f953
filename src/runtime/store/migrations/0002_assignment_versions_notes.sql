-- Schema version 2: the memory around decisions: assignment, every
-- workflow version that served, and what people did to handoffs.

-- Round-robin position per team: the next index to hand out.
CREATE TABLE team_cursors (
    team TEXT PRIMARY KEY,
    next INTEGER NOT NULL
) WITHOUT ROWID;

-- Open tasks per person, for `least loaded`. Never below zero.
CREATE TABLE open_tasks (
    person TEXT PRIMARY KEY,
    count  INTEGER NOT NULL CHECK (count >= 0)
) WITHOUT ROWID;

-- Every workflow version that ever served, by content hash, with its files,
-- so any past decision can be explained and replayed.
CREATE TABLE workflow_versions (
    id              TEXT PRIMARY KEY,
    first_loaded_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE workflow_files (
    version_id TEXT NOT NULL REFERENCES workflow_versions (id),
    position   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (version_id, position)
) WITHOUT ROWID;

-- Who did what to which handoff, when, with what text: approvals,
-- rejections, answers, escalations, draft edits.
CREATE TABLE notes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    handoff_id TEXT NOT NULL REFERENCES handoffs (id),
    kind       TEXT NOT NULL,
    who        TEXT NOT NULL,
    at         INTEGER NOT NULL,
    text       TEXT NOT NULL DEFAULT '',
    data       TEXT CHECK (data IS NULL OR json_valid(data))
);
CREATE INDEX notes_by_handoff ON notes (handoff_id, seq);
