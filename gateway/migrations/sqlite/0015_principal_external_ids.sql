-- Users and groups known to a company's OpenID Provider: a user by the issuer and its `sub`,
-- a group by the issuer and the group's name in the token's groups claim. Both columns are
-- set together or not at all; one principal of each kind per external identity.
ALTER TABLE principals ADD COLUMN issuer TEXT;
ALTER TABLE principals ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX principals_external ON principals (issuer, kind, external_id);

-- A call held for approval that an app made for a person (a user token): the user principal,
-- so that the approved call is made for the same person.
ALTER TABLE approvals ADD COLUMN user_principal_id TEXT;
