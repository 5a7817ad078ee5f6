-- Data-plane calls counted per minute, by outcome, provider, grant, principal and secret: what
-- the overview and GET /admin/v1/stats read, so a day of traffic is summed from a few
-- thousand rows instead of millions of records. Kept in the transaction that chains each
-- batch of records (crate::store's index_journal), so the counts and the trail agree. Empty
-- strings stand for "none" (a refusal before the grant was known, say).
CREATE TABLE call_counts (
    bucket        BIGINT NOT NULL,
    outcome       TEXT NOT NULL,
    provider      TEXT NOT NULL,
    grant_id      TEXT NOT NULL,
    principal_id  TEXT NOT NULL,
    secret_id     TEXT NOT NULL,
    calls         BIGINT NOT NULL,
    PRIMARY KEY (bucket, outcome, provider, grant_id, principal_id, secret_id)
);
CREATE INDEX call_counts_grant ON call_counts (grant_id, bucket);
CREATE INDEX call_counts_secret ON call_counts (secret_id, bucket);
CREATE INDEX call_counts_principal ON call_counts (principal_id, bucket);
-- The trail so far, counted once.
INSERT INTO call_counts (bucket, outcome, provider, grant_id, principal_id, secret_id, calls)
SELECT (at / 60000000) * 60000000, outcome, COALESCE(body::jsonb ->> 'provider', ''),
       COALESCE(grant_id, ''), COALESCE(principal_id, ''), COALESCE(secret_id, ''), COUNT(*)
FROM audit_events
WHERE kind = 'proxy' AND action IN ('proxy.request', 'proxy.response')
GROUP BY 1, 2, 3, 4, 5, 6;
