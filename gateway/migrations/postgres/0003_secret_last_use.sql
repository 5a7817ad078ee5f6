-- When each secret was last injected: one index seek per secret instead of a scan of the
-- trail, for the secrets list (`last_used_at`).
CREATE INDEX audit_events_secret_use ON audit_events (secret_id, kind, outcome, at);
