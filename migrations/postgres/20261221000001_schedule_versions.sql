-- The schedule's history (issue 15; the rules are in
-- src/schedule/history.rs): what the plan is built from — the book and the
-- control groups, as one JSON text — each time it changed, with the time it
-- took effect and the SHA-256 of the text. No two consecutive rows have the
-- same content: a version equal to the one in force at its time is not
-- inserted, one equal to the next moves that one's time back; under a
-- transaction advisory lock, so cluster instances sharing this database
-- take turns. The energy baseline of a window follows the versions in force
-- in it.
CREATE TABLE schedule_versions (
    version_id   bigserial   PRIMARY KEY,
    effective_at timestamptz NOT NULL,
    digest       text        NOT NULL,
    content      text        NOT NULL
);
CREATE INDEX schedule_versions_effective ON schedule_versions (effective_at);
