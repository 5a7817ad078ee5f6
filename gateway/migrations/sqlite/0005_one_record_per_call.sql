-- A forwarded call is chained once, as `proxy.response` when it ends; its opening stays in the
-- gateway's audit journal. A call still in flight when its journal lines are indexed is kept
-- here, opening body and all, until its outcome is chained; whatever a stopped gateway left
-- here is chained as `interrupted` at the next start.
CREATE TABLE audit_open_calls (
    id    TEXT PRIMARY KEY,
    body  TEXT NOT NULL
);
-- The secrets list's last use is the newest `proxy.response` of the secret: one index seek.
-- Narrower than the index it replaces (action instead of kind and outcome).
DROP INDEX audit_events_secret_use;
CREATE INDEX audit_events_secret_use ON audit_events (secret_id, action, at);
