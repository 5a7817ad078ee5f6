-- Retention: records older than --audit-retain-days leave the database for archive files, one
-- per period (compressed JSON lines, each record exactly as chained). Each file has a
-- checkpoint here: the span of records it holds, the hash the first one links to, the chain's
-- head hash at the cut, the file's SHA-256, and an Ed25519 signature over all of it by the
-- trail's signing key. The live chain then starts from the newest checkpoint, so the whole
-- trail still verifies end to end: files against their checkpoints, records against the chain.
CREATE TABLE audit_checkpoints (
    first_seq        BIGINT PRIMARY KEY,
    last_seq         BIGINT NOT NULL UNIQUE,
    period           TEXT NOT NULL,
    first_prev_hash  TEXT NOT NULL,
    head_hash        TEXT NOT NULL,
    records          BIGINT NOT NULL,
    first_at         BIGINT NOT NULL,
    last_at          BIGINT NOT NULL,
    file             TEXT NOT NULL,
    file_sha256      TEXT NOT NULL,
    file_bytes       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    key_id           TEXT NOT NULL,
    signature        TEXT NOT NULL
);

-- The trail's signing key: Ed25519, its private half sealed with the master key like a
-- credential (version -3 of its id in the envelope's associated data), so it is re-wrapped on
-- rotation and no one with the database alone can sign a checkpoint. One key (`one`): replicas
-- that both find none cannot both make one.
CREATE TABLE audit_signing_keys (
    id           TEXT PRIMARY KEY,
    one          INTEGER NOT NULL DEFAULT 1 UNIQUE CHECK (one = 1),
    public_key   TEXT NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped_key  BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL
);

-- Which replica archives: a lease taken for a pass and renewed as it goes, so replicas sharing
-- the database archive one at a time.
CREATE TABLE audit_archiver (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    holder  TEXT NOT NULL,
    until   BIGINT NOT NULL
);
