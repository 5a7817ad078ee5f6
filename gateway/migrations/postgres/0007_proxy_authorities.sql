-- Forward-proxy mode: credgate's own certificate authorities. The certificate is public; the
-- private key is sealed with the master key like a credential (version 0 of the CA's id in
-- the envelope's associated data). The newest CA whose activates_at has passed signs leaf
-- certificates; a newer one not yet active is already in the trust bundle, so clients can
-- take it before it is used.
CREATE TABLE proxy_authorities (
    id            TEXT PRIMARY KEY,
    cert_pem      TEXT NOT NULL,
    kek_id        TEXT NOT NULL,
    wrapped_key   BYTEA NOT NULL,
    ciphertext    BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    activates_at  BIGINT NOT NULL,
    not_after     BIGINT NOT NULL
);
CREATE INDEX proxy_authorities_kek ON proxy_authorities (kek_id);
