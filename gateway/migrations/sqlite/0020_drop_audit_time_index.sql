-- No read uses the index on `at` any more: a time range of the trail is found through
-- `audit_minutes` (0017), and its queries compare `at + 0` so the planner never walks this
-- index instead. It cost every appended record an eighth b-tree insert and 19 bytes on disk
-- (SQLite's dbstat over 120,000 records; BENCHMARKS.md, "Where a record's bytes are").
DROP INDEX audit_events_at;
