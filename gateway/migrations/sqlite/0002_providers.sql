-- Provider components uploaded through the admin API: stored here so every replica runs the
-- same set and a restart keeps them.
CREATE TABLE uploaded_providers (
    id           TEXT PRIMARY KEY,
    version      TEXT NOT NULL,
    digest       TEXT NOT NULL,
    component    BLOB NOT NULL,
    size         BIGINT NOT NULL,
    uploaded_at  BIGINT NOT NULL
);

-- Providers an operator switched off, whatever their source (bundled, directory, uploaded).
CREATE TABLE disabled_providers (
    id           TEXT PRIMARY KEY,
    disabled_at  BIGINT NOT NULL
);

CREATE INDEX secrets_type ON secrets (secret_type);
