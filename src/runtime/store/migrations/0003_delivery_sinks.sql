-- Schema version 3: which sinks already have an action.
-- An action may go to several sinks (a HubSpot task and the outbound
-- webhook). A retry after one sink failed must not send to the ones that
-- already took it, so each sink's success is kept here, with what the sink
-- answered (the CRM task's id), in the same batch as the action's state.
CREATE TABLE action_sinks (
    action_id    TEXT NOT NULL REFERENCES actions (id),
    sink         TEXT NOT NULL,
    delivered_at INTEGER NOT NULL,
    remote_ref   TEXT,
    PRIMARY KEY (action_id, sink)
) WITHOUT ROWID;
