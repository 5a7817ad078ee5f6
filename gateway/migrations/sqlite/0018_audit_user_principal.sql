-- The person a call was made for (the user principal its user token named), as a column the
-- hash chain's check compares with the body, and an index only over the records that have
-- one: the trail filtered by a person reads fifty index entries, like by the app's principal.
ALTER TABLE audit_events ADD COLUMN user_principal_id TEXT;
UPDATE audit_events SET user_principal_id = json_extract(body, '$.user_principal_id')
    WHERE body LIKE '%"user_principal_id"%';
CREATE INDEX audit_events_user ON audit_events (user_principal_id, seq) WHERE user_principal_id IS NOT NULL;
