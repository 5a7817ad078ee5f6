-- The trail in about two thirds of the space (BENCHMARKS.md, "Where a record's bytes are"):
-- ids as their 16 bytes instead of 36 characters, the hash as its 32 bytes instead of 64 hex
-- digits, and no `prev_hash` column (it is always the previous record's hash, read from that
-- record or from the checkpoint that archived it). `seq INTEGER PRIMARY KEY` makes the
-- sequence number SQLite's own row id, so a record no longer carries a hidden row id and a
-- unique index besides. The chain is unchanged: hashes still cover the hex of the previous
-- hash, the sequence number and the body, byte for byte, so every record verifies as before.
-- One copy of the table: about 12 s per million records on two cores (BENCHMARKS.md).
CREATE TABLE audit_events_binary (
    seq                INTEGER PRIMARY KEY,
    id                 BLOB NOT NULL,
    at                 BIGINT NOT NULL,
    kind               TEXT NOT NULL,
    action             TEXT NOT NULL,
    outcome            TEXT NOT NULL,
    principal_id       BLOB,
    grant_id           BLOB,
    secret_id          BLOB,
    request_id         TEXT,
    user_principal_id  BLOB,
    body               TEXT NOT NULL,
    hash               BLOB NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO audit_events_binary
SELECT seq, unhex(replace(id, '-', '')), at, kind, action, outcome,
       unhex(replace(principal_id, '-', '')), unhex(replace(grant_id, '-', '')),
       unhex(replace(secret_id, '-', '')), request_id, unhex(replace(user_principal_id, '-', '')),
       body, unhex(hash)
FROM audit_events ORDER BY seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_binary RENAME TO audit_events;
CREATE INDEX audit_events_principal ON audit_events (principal_id, seq);
CREATE INDEX audit_events_grant ON audit_events (grant_id, seq);
CREATE INDEX audit_events_secret ON audit_events (secret_id, seq);
CREATE INDEX audit_events_outcome ON audit_events (outcome, seq);
CREATE INDEX audit_events_request ON audit_events (request_id, seq);
CREATE INDEX audit_events_user ON audit_events (user_principal_id, seq) WHERE user_principal_id IS NOT NULL;
