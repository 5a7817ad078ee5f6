-- The portal's sign-in through an OpenID Provider. An attempt lives from the redirect to the
-- provider until its answer (ten minutes at most), found by the hash of its `state`; a
-- session is found by the hash of its cookie. Neither secret is stored as itself, except the
-- PKCE verifier, which is worthless without the code the provider gives only to the browser.
CREATE TABLE signin_attempts (
    state_hash  TEXT PRIMARY KEY,
    verifier    TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE portal_sessions (
    id_hash     TEXT PRIMARY KEY,
    actor       TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
