-- How much of each audit journal segment (a file of events on a gateway's own disk, written
-- before each call is forwarded) has been copied into the chain. Updated in the transaction
-- that copies the events, so after a crash every journaled event is indexed exactly once.
CREATE TABLE audit_journal (
    segment        TEXT PRIMARY KEY,
    indexed_bytes  BIGINT NOT NULL
);
