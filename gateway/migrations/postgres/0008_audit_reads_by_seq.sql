-- Filtered reads of the trail (newest first, as the admin API and the portal ask) stay fast
-- however long it grows: each filter's index carries the sequence number, so
-- `WHERE grant_id = ? ORDER BY seq DESC LIMIT 50` reads fifty index entries, where an index on
-- the id alone made the database fetch every record of the grant and sort them (370 ms for a
-- grant with 100,000 records; BENCHMARKS.md, the audit trail at scale). A secret's last use is
-- its newest `proxy.response`, found on the secret's index the same way, so the index kept for
-- it alone goes.
DROP INDEX audit_events_principal;
CREATE INDEX audit_events_principal ON audit_events (principal_id, seq);
DROP INDEX audit_events_grant;
CREATE INDEX audit_events_grant ON audit_events (grant_id, seq);
DROP INDEX audit_events_secret_use;
CREATE INDEX audit_events_secret ON audit_events (secret_id, seq);
CREATE INDEX audit_events_outcome ON audit_events (outcome, seq);
-- Unique in practice, but with the sequence number the planner never prefers walking the whole
-- trail backwards for it (PostgreSQL did, before its statistics caught up with a bulk load).
DROP INDEX audit_events_request;
CREATE INDEX audit_events_request ON audit_events (request_id, seq);
