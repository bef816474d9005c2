-- Every alarm the engine kept, as its latest change left it: one row per
-- alarm id. Written through the store's backlog and spool like samples, so a
-- change made while the database is away is kept; each change carries the
-- whole record with a growing version, and the upsert keeps the highest
-- (`WHERE alarms.version < excluded.version`), so a replayed or reordered
-- change never goes back.
CREATE TABLE alarms (
    id              INTEGER PRIMARY KEY,
    kind            TEXT    NOT NULL, -- alarm::AlarmKind, snake_case
    severity        TEXT    NOT NULL, -- emergency, serious, ordinary
    state           TEXT    NOT NULL, -- active, acknowledged, cleared, closed
    device_kind     TEXT    NOT NULL, -- lamp, rtu, circuit, cabinet, endpoint
    device_id       TEXT    NOT NULL, -- lamp id, RTU id, CABINET/n, cabinet id, endpoint
    circuit         INTEGER,
    cabinet         TEXT,
    district        TEXT    NOT NULL,
    raised_at       INTEGER NOT NULL, -- microseconds since the Unix epoch, UTC
    acknowledged_at INTEGER,
    acknowledged_by TEXT,
    comment         TEXT,
    cleared_at      INTEGER,
    closed_at       INTEGER,
    occurrences     INTEGER NOT NULL,
    deadline        INTEGER NOT NULL,
    overdue         INTEGER NOT NULL, -- as of the change; reads compute it as of now
    detail          TEXT    NOT NULL, -- JSON
    version         INTEGER NOT NULL
);
-- Newest first (the list's order), and its filters.
CREATE INDEX alarms_raised ON alarms (raised_at DESC, id DESC);
CREATE INDEX alarms_state ON alarms (state, raised_at DESC);
CREATE INDEX alarms_district ON alarms (district, raised_at DESC);
CREATE INDEX alarms_kind ON alarms (kind, raised_at DESC);
-- Windows: cleared in the window; still open.
CREATE INDEX alarms_cleared ON alarms (cleared_at);
