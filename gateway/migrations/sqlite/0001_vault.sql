-- The vault core. Portable types: ids are UUID text, times are microseconds since the epoch.

CREATE TABLE key_checks (
    kek_id      TEXT PRIMARY KEY,
    sealed      BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE admin_tokens (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    prefix      TEXT NOT NULL UNIQUE,
    hash        BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE principals (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id    TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members (member_id);

-- Keys outlive their principal (revoked) so the audit trail can still name them.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    principal_id  TEXT NOT NULL,
    name          TEXT,
    prefix        TEXT NOT NULL UNIQUE,
    hash          BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT
);
CREATE INDEX api_keys_principal ON api_keys (principal_id);

CREATE TABLE secrets (
    id                          TEXT PRIMARY KEY,
    name                        TEXT NOT NULL,
    slug                        TEXT NOT NULL,
    secret_type                 TEXT NOT NULL,
    config                      TEXT NOT NULL,
    allowed_hosts               TEXT NOT NULL,
    allow_private_destinations  BOOLEAN NOT NULL,
    allow_insecure_http         BOOLEAN NOT NULL,
    credential_fields           TEXT NOT NULL,
    current_version             BIGINT NOT NULL,
    created_at                  BIGINT NOT NULL,
    updated_at                  BIGINT NOT NULL,
    deleted_at                  BIGINT
);
-- Names are unique among live secrets; a deleted secret's name can be reused.
CREATE UNIQUE INDEX secrets_live_slug ON secrets (slug) WHERE deleted_at IS NULL;

-- Only the current version keeps its sealed value; older ones keep their metadata.
CREATE TABLE secret_versions (
    secret_id     TEXT NOT NULL REFERENCES secrets (id),
    version       BIGINT NOT NULL,
    kek_id        TEXT,
    wrapped_key   BLOB,
    ciphertext    BLOB,
    created_at    BIGINT NOT NULL,
    destroyed_at  BIGINT,
    PRIMARY KEY (secret_id, version)
);
CREATE INDEX secret_versions_kek ON secret_versions (kek_id);

CREATE TABLE grants (
    id              TEXT PRIMARY KEY,
    secret_id       TEXT NOT NULL,
    principal_id    TEXT NOT NULL,
    policy          TEXT NOT NULL,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT,
    revoked_reason  TEXT
);
CREATE INDEX grants_secret ON grants (secret_id);
CREATE INDEX grants_principal ON grants (principal_id);

-- One hash chain: each row's hash covers the previous row's hash, its seq and its body.
-- The other columns copy fields of the body for filtering; verification checks they agree.
CREATE TABLE audit_events (
    seq           BIGINT PRIMARY KEY,
    id            TEXT NOT NULL,
    at            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    action        TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    principal_id  TEXT,
    grant_id      TEXT,
    secret_id     TEXT,
    request_id    TEXT,
    body          TEXT NOT NULL,
    prev_hash     TEXT NOT NULL,
    hash          TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_principal ON audit_events (principal_id);
CREATE INDEX audit_events_grant ON audit_events (grant_id);
CREATE INDEX audit_events_secret ON audit_events (secret_id);
CREATE INDEX audit_events_request ON audit_events (request_id);
