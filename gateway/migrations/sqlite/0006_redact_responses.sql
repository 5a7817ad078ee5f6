-- Per secret: scrub the credential from response bodies as well as headers, for upstreams
-- that echo what they were sent. Off by default: it costs a pass over every byte.
ALTER TABLE secrets ADD COLUMN redact_responses BOOLEAN NOT NULL DEFAULT FALSE;
