-- One row per completed command: the audit trail of remote control.
-- Written through the store's backlog and spool like samples, so a command
-- given while the database is away is still recorded; keyed by command id so
-- a replay lands once.
CREATE TABLE command_audit (
    command_id   TEXT    PRIMARY KEY,
    created_at   INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    completed_at INTEGER NOT NULL,
    actor        TEXT    NOT NULL,
    source       TEXT    NOT NULL, -- api, mqtt, schedule, expiry
    action       TEXT    NOT NULL, -- on, off, dim
    level        REAL,
    kind         TEXT    NOT NULL, -- lamp, circuit
    selector     TEXT    NOT NULL, -- JSON
    expires_at   INTEGER,
    targets      INTEGER NOT NULL,
    confirmed    INTEGER NOT NULL,
    failed       INTEGER NOT NULL,
    districts    TEXT    NOT NULL, -- JSON array of the districts reached
    outcome      TEXT    NOT NULL  -- JSON array: id, state, reason, attempts per target
);
CREATE INDEX command_audit_created ON command_audit (created_at);
CREATE INDEX command_audit_actor ON command_audit (actor, created_at);
