-- The trail in less space (BENCHMARKS.md, "Where a record's bytes are"): ids as `uuid` (16
-- bytes instead of 36 characters), the hash as its 32 bytes instead of 64 hex digits, and no
-- `prev_hash` column (it is always the previous record's hash, read from that record or from
-- the checkpoint that archived it). One ALTER, so the table and its indexes are rewritten
-- once. The chain is unchanged: hashes still cover the hex of the previous hash, the sequence
-- number and the body, byte for byte, so every record verifies as before.
ALTER TABLE audit_events
    DROP COLUMN prev_hash,
    ALTER COLUMN id TYPE uuid USING id::uuid,
    ALTER COLUMN principal_id TYPE uuid USING principal_id::uuid,
    ALTER COLUMN grant_id TYPE uuid USING grant_id::uuid,
    ALTER COLUMN secret_id TYPE uuid USING secret_id::uuid,
    ALTER COLUMN user_principal_id TYPE uuid USING user_principal_id::uuid,
    ALTER COLUMN hash TYPE bytea USING decode(hash, 'hex'),
    ADD CONSTRAINT audit_events_hash_bytes CHECK (octet_length(hash) = 32);
