-- A forwarded call is chained once, as `proxy.response` when it ends; its opening stays in the
-- gateway's audit journal. A call still in flight when its journal lines are indexed is kept
-- here, opening body and all, until its outcome is chained; whatever a stopped gateway left
-- here is chained as `interrupted` at its next start. `journal` names the gateway's journal
-- directory (stable across its restarts): each replica settles only its own calls.
CREATE TABLE audit_open_calls (
    id       TEXT PRIMARY KEY,
    journal  TEXT NOT NULL,
    body     TEXT NOT NULL
);
CREATE INDEX audit_open_calls_journal ON audit_open_calls (journal);
-- The secrets list's last use is the newest `proxy.response` of the secret: one index seek.
-- Narrower than the index it replaces (action instead of kind and outcome).
DROP INDEX audit_events_secret_use;
CREATE INDEX audit_events_secret_use ON audit_events (secret_id, action, at);
