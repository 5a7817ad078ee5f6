-- From this release the audit table keeps each body without the values its own columns hold
-- (the id, time, kind, action, outcome and request id it opens with are left out, the
-- principal, person, grant and secret ids left empty), and every read puts them back byte for
-- byte (gateway/src/store/stored_body.rs). Nothing is rewritten: bodies stored whole before
-- read as they are. This migration changes no schema; it exists so that an older release,
-- which would read the new bodies as they are stored and report them as changed, refuses to
-- start on this database instead.
SELECT 1;
