-- Calls that wait for an operator's approval (crate::approvals). The request as the app sent
-- it (method, URL, headers without the app key, body) and, once made, the upstream's response
-- are sealed with the master key like a credential: bodies carry the app's data. Method, host,
-- path, reason and context are in the clear, as in the audit trail, for the list operators see.
CREATE TABLE approvals (
    id                    TEXT PRIMARY KEY,
    status                TEXT NOT NULL,
    grant_id              TEXT NOT NULL,
    secret_id             TEXT NOT NULL,
    principal_id          TEXT NOT NULL,
    key_id                TEXT NOT NULL,
    request_id            TEXT NOT NULL,
    method                TEXT NOT NULL,
    host                  TEXT NOT NULL,
    path                  TEXT NOT NULL,
    reason                TEXT,
    context               TEXT,
    body_bytes            BIGINT NOT NULL,
    created_at            BIGINT NOT NULL,
    -- Pending until then; once made, its response is kept until then.
    expires_at            BIGINT NOT NULL,
    ttl_seconds           BIGINT NOT NULL,
    decided_at            BIGINT,
    decided_by            TEXT,
    note                  TEXT,
    finished_at           BIGINT,
    failure               TEXT,
    response_status       BIGINT,
    request_kek_id        TEXT,
    request_wrapped_key   BLOB,
    request_ciphertext    BLOB,
    response_kek_id       TEXT,
    response_wrapped_key  BLOB,
    response_ciphertext   BLOB
);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE INDEX approvals_request_kek ON approvals (request_kek_id);
CREATE INDEX approvals_response_kek ON approvals (response_kek_id);
