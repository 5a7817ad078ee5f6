-- Data-plane calls counted in two rollups instead of one row per minute and grant (0011),
-- whose rows were nearly as many as the calls once many grants are busy at once:
--   call_totals: per minute, hour and day, by outcome and provider: the overview's chart
--     and provider list, at any traffic, from a few rows a minute;
--   call_grants: per hour and day, by grant (with its principal and secret), outcome and
--     provider: the busiest grants and principals, and one grant's or secret's calls.
-- `grain` is the bucket's size in seconds (60, 3600, 86400) and `bucket` its start, in
-- microseconds since the epoch. Both are kept in the transaction that chains each batch of
-- records (crate::store's index_journal), so the counts and the trail agree. Empty strings
-- stand for "none" (a call refused before its grant was known, say).
CREATE TABLE call_totals (
    grain     BIGINT NOT NULL,
    bucket    BIGINT NOT NULL,
    outcome   TEXT NOT NULL,
    provider  TEXT NOT NULL,
    calls     BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, outcome, provider)
) WITHOUT ROWID;
CREATE TABLE call_grants (
    grain         BIGINT NOT NULL,
    bucket        BIGINT NOT NULL,
    grant_id      TEXT NOT NULL,
    outcome       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    principal_id  TEXT NOT NULL,
    secret_id     TEXT NOT NULL,
    calls         BIGINT NOT NULL,
    PRIMARY KEY (grain, bucket, grant_id, outcome, provider, principal_id, secret_id)
) WITHOUT ROWID;
CREATE INDEX call_grants_grant ON call_grants (grant_id, grain, bucket);
CREATE INDEX call_grants_secret ON call_grants (secret_id, grain, bucket);
CREATE INDEX call_grants_principal ON call_grants (principal_id, grain, bucket);
-- What 0011 counted, carried over.
INSERT INTO call_totals (grain, bucket, outcome, provider, calls)
SELECT 60, bucket, outcome, provider, SUM(calls) FROM call_counts GROUP BY bucket, outcome, provider;
INSERT INTO call_totals (grain, bucket, outcome, provider, calls)
SELECT 3600, (bucket / 3600000000) * 3600000000, outcome, provider, SUM(calls)
FROM call_counts GROUP BY (bucket / 3600000000) * 3600000000, outcome, provider;
INSERT INTO call_totals (grain, bucket, outcome, provider, calls)
SELECT 86400, (bucket / 86400000000) * 86400000000, outcome, provider, SUM(calls)
FROM call_counts GROUP BY (bucket / 86400000000) * 86400000000, outcome, provider;
INSERT INTO call_grants (grain, bucket, grant_id, outcome, provider, principal_id, secret_id, calls)
SELECT 3600, (bucket / 3600000000) * 3600000000, grant_id, outcome, provider, principal_id, secret_id, SUM(calls)
FROM call_counts GROUP BY (bucket / 3600000000) * 3600000000, grant_id, outcome, provider, principal_id, secret_id;
INSERT INTO call_grants (grain, bucket, grant_id, outcome, provider, principal_id, secret_id, calls)
SELECT 86400, (bucket / 86400000000) * 86400000000, grant_id, outcome, provider, principal_id, secret_id, SUM(calls)
FROM call_counts GROUP BY (bucket / 86400000000) * 86400000000, grant_id, outcome, provider, principal_id, secret_id;
DROP TABLE call_counts;
