-- Grant limits shared by every replica (rate limits and quotas; crate::limits). One row per
-- grant and kind: for `rate`, the tokens left in micro-tokens and when they were last
-- refilled; for `quota`, the calls taken in the period and when the period began. Replicas
-- lease slices of these and count the calls within a slice in memory, so a call within its
-- limits does not come here.
CREATE TABLE grant_limits (
    grant_id  TEXT NOT NULL,
    kind      TEXT NOT NULL,
    value     BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (grant_id, kind)
);
