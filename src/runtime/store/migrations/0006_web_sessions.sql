-- Web sessions, kept in the database so that a restart (or, later, another
-- replica) does not sign people out.
--
-- A session is named by a random id held only in the browser's cookie;
-- the row keeps its SHA-256, so reading the file does not hand out live
-- sessions. The CSRF token is the session's own (the synchronizer token
-- the pages' forms carry back). `credentials` is a fingerprint of the
-- sign-in tokens the server had when the session started: a session counts
-- only while they are the same (a changed token, a person added or
-- removed, tokens set where there were none, sign everyone out).
CREATE TABLE web_sessions (
    key         BLOB PRIMARY KEY,
    who         TEXT NOT NULL,
    csrf        TEXT NOT NULL,
    credentials BLOB NOT NULL,
    started_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
