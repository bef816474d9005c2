-- Every alarm the engine kept, as its latest change left it: one row per
-- alarm id. Written through the store's backlog and spool like samples, so a
-- change made while the database is away is kept; each change carries the
-- whole record with a growing version, and the upsert keeps the highest
-- (`WHERE alarms.version < excluded.version`), so a replayed or reordered
-- change never goes back.
CREATE TABLE alarms (
    id              bigint      PRIMARY KEY,
    kind            text        NOT NULL, -- alarm::AlarmKind, snake_case
    severity        text        NOT NULL, -- emergency, serious, ordinary
    state           text        NOT NULL, -- active, acknowledged, cleared, closed
    device_kind     text        NOT NULL, -- lamp, rtu, circuit, cabinet, endpoint
    device_id       text        NOT NULL, -- lamp id, RTU id, CABINET/n, cabinet id, endpoint
    circuit         smallint,
    cabinet         text,
    district        text        NOT NULL,
    raised_at       timestamptz NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text,
    comment         text,
    cleared_at      timestamptz,
    closed_at       timestamptz,
    occurrences     bigint      NOT NULL,
    deadline        timestamptz NOT NULL,
    overdue         boolean     NOT NULL, -- as of the change; reads compute it as of now
    detail          jsonb       NOT NULL,
    version         bigint      NOT NULL
);
-- Newest first (the list's order), and its filters.
CREATE INDEX alarms_raised ON alarms (raised_at DESC, id DESC);
CREATE INDEX alarms_state ON alarms (state, raised_at DESC);
CREATE INDEX alarms_district ON alarms (district, raised_at DESC);
CREATE INDEX alarms_kind ON alarms (kind, raised_at DESC);
-- Windows: cleared in the window; still open.
CREATE INDEX alarms_cleared ON alarms (cleared_at);
