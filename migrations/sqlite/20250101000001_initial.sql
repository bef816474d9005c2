-- lamp-gateway store, SQLite. Times are INTEGER microseconds since the Unix
-- epoch (UTC); ids are the inventory's strings. Samples are keyed by
-- (device, time) so a replayed write is a no-op.

CREATE TABLE lamp_samples (
    time          INTEGER NOT NULL,
    lamp_id       TEXT    NOT NULL,
    district      TEXT    NOT NULL,
    is_on         INTEGER NOT NULL,
    dim_level     REAL    NOT NULL,
    voltage_v     REAL,
    current_a     REAL,
    power_w       REAL,
    power_factor  REAL,
    energy_kwh    REAL,
    burning_hours REAL,
    fault_flags   INTEGER NOT NULL,
    PRIMARY KEY (lamp_id, time)
) WITHOUT ROWID;
CREATE INDEX lamp_samples_district_time ON lamp_samples (district, time);
CREATE INDEX lamp_samples_time ON lamp_samples (time);

CREATE TABLE rtu_samples (
    time           INTEGER NOT NULL,
    rtu_id         TEXT    NOT NULL,
    district       TEXT    NOT NULL,
    circuits       INTEGER NOT NULL,
    contactors     INTEGER NOT NULL, -- bit n-1 set: circuit n closed
    voltage_a_v    REAL,
    voltage_b_v    REAL,
    voltage_c_v    REAL,
    current_a_a    REAL,
    current_b_a    REAL,
    current_c_a    REAL,
    active_power_w REAL,
    energy_kwh     REAL,
    door_alarm     INTEGER NOT NULL,
    leakage_alarm  INTEGER NOT NULL,
    PRIMARY KEY (rtu_id, time)
) WITHOUT ROWID;
CREATE INDEX rtu_samples_district_time ON rtu_samples (district, time);
CREATE INDEX rtu_samples_time ON rtu_samples (time);

CREATE TABLE transitions (
    time        INTEGER NOT NULL,
    device_kind TEXT    NOT NULL, -- 'slc' or 'rtu'
    device_id   TEXT    NOT NULL,
    district    TEXT    NOT NULL,
    online      INTEGER NOT NULL,
    reason      TEXT,             -- failure kind that took it offline
    detail      TEXT,
    PRIMARY KEY (device_kind, device_id, time)
) WITHOUT ROWID;
CREATE INDEX transitions_district_time ON transitions (district, time);

-- One row per gateway process: time outside [started_at, coalesce(stopped_at,
-- heartbeat_at)] was not observed, which is not the same as offline.
CREATE TABLE gateway_runs (
    run_id       TEXT    PRIMARY KEY,
    gateway_id   TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stopped_at   INTEGER
);

-- Lamps as the inventory had them when the gateway last started; rollups
-- take the cabinet and circuit from here.
CREATE TABLE lamps (
    lamp_id  TEXT PRIMARY KEY,
    district TEXT NOT NULL,
    cabinet  TEXT NOT NULL,
    circuit  INTEGER NOT NULL,
    slc_id   TEXT
);

CREATE TABLE lamp_hourly (
    hour           INTEGER NOT NULL, -- start of the UTC hour, microseconds
    lamp_id        TEXT    NOT NULL,
    district       TEXT    NOT NULL,
    cabinet        TEXT    NOT NULL,
    circuit        INTEGER NOT NULL,
    samples        INTEGER NOT NULL,
    on_seconds     REAL    NOT NULL,
    online_seconds REAL    NOT NULL,
    energy_kwh     REAL    NOT NULL,
    failures       INTEGER NOT NULL, -- lamp-failure flag raised
    PRIMARY KEY (lamp_id, hour)
) WITHOUT ROWID;
CREATE INDEX lamp_hourly_district_hour ON lamp_hourly (district, hour);

CREATE TABLE circuit_hourly (
    hour           INTEGER NOT NULL,
    cabinet        TEXT    NOT NULL,
    circuit        INTEGER NOT NULL,
    district       TEXT    NOT NULL,
    lamps          INTEGER NOT NULL,
    on_seconds     REAL    NOT NULL,
    online_seconds REAL    NOT NULL,
    energy_kwh     REAL    NOT NULL,
    failures       INTEGER NOT NULL,
    PRIMARY KEY (cabinet, circuit, hour)
) WITHOUT ROWID;
CREATE INDEX circuit_hourly_district_hour ON circuit_hourly (district, hour);

-- Commands and audit rows: filled by the control issue.
CREATE TABLE commands (
    command_id   TEXT    PRIMARY KEY,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    target_kind  TEXT    NOT NULL, -- 'lamp', 'rtu', 'group'
    target       TEXT    NOT NULL, -- id or selector
    action       TEXT    NOT NULL,
    params       TEXT    NOT NULL, -- JSON
    requested_by TEXT,
    status       TEXT    NOT NULL, -- queued, sent, confirmed, failed
    detail       TEXT
);
CREATE INDEX commands_created ON commands (created_at);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    time   INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT,
    detail TEXT    -- JSON
);
CREATE INDEX audit_log_time ON audit_log (time);

CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
