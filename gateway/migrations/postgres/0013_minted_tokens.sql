-- Tokens that minting templates obtained (crate::minting), sealed with the master key like a
-- credential, one per secret version: every replica uses the token one of them minted instead
-- of minting its own, and a template whose provider rotates its refresh token on use mints
-- on one replica at a time (the lease), so a refresh token is never used twice. A row whose
-- key was retired is minted afresh rather than re-wrapped: the tokens live an hour or so.
CREATE TABLE minted_tokens (
    secret_id    TEXT NOT NULL,
    version      BIGINT NOT NULL,
    kek_id       TEXT NOT NULL,
    wrapped_key  BYTEA NOT NULL,
    ciphertext   BYTEA NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (secret_id, version)
);
-- Who mints for a secret now, until when (microseconds since the epoch).
CREATE TABLE mint_leases (
    secret_id  TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    lease_until  BIGINT NOT NULL
);
