-- When each secret was last injected: one index seek per secret instead of a scan of the
-- trail, for the secrets list (`last_used_at`). It also serves every lookup by secret, so the
-- single-column index goes: one index fewer to update per audit record.
CREATE INDEX audit_events_secret_use ON audit_events (secret_id, kind, outcome, at);
DROP INDEX audit_events_secret;
