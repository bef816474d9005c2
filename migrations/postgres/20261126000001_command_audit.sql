-- One row per completed command: the audit trail of remote control.
-- Written through the store's backlog and spool like samples, so a command
-- given while the database is away is still recorded; keyed by command id so
-- a replay lands once.
CREATE TABLE command_audit (
    command_id   text        PRIMARY KEY,
    created_at   timestamptz NOT NULL,
    completed_at timestamptz NOT NULL,
    actor        text        NOT NULL,
    source       text        NOT NULL, -- api, mqtt, schedule, expiry
    action       text        NOT NULL, -- on, off, dim
    level        double precision,
    kind         text        NOT NULL, -- lamp, circuit
    selector     jsonb       NOT NULL,
    expires_at   timestamptz,
    targets      integer     NOT NULL,
    confirmed    integer     NOT NULL,
    failed       integer     NOT NULL,
    districts    jsonb       NOT NULL, -- the districts reached
    outcome      jsonb       NOT NULL  -- id, state, reason, attempts per target
);
CREATE INDEX command_audit_created ON command_audit (created_at);
CREATE INDEX command_audit_actor ON command_audit (actor, created_at);
