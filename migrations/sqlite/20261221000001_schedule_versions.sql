-- The schedule's history (issue 15; the rules are in
-- src/schedule/history.rs): what the plan is built from — the book and the
-- control groups, as one JSON text — each time it changed, with the time it
-- took effect (microseconds since the epoch, UTC) and the SHA-256 of the
-- text. No two consecutive rows have the same content: a version equal to
-- the one in force at its time is not inserted, one equal to the next moves
-- that one's time back. The energy baseline of a window follows the
-- versions in force in it.
CREATE TABLE schedule_versions (
    version_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    effective_at INTEGER NOT NULL,
    digest       TEXT    NOT NULL,
    content      TEXT    NOT NULL
);
CREATE INDEX schedule_versions_effective ON schedule_versions (effective_at);
