-- lamp-gateway store, PostgreSQL. Ids are the inventory's strings. Sample
-- tables are partitioned by day (UTC); the gateway creates partitions ahead
-- and drops them past retention. Samples are keyed by (device, time) so a
-- replayed write is a no-op.

CREATE TABLE lamp_samples (
    time          timestamptz      NOT NULL,
    lamp_id       text             NOT NULL,
    district      text             NOT NULL,
    is_on         boolean          NOT NULL,
    dim_level     double precision NOT NULL,
    voltage_v     double precision,
    current_a     double precision,
    power_w       double precision,
    power_factor  double precision,
    energy_kwh    double precision,
    burning_hours double precision,
    fault_flags   integer          NOT NULL,
    PRIMARY KEY (lamp_id, time)
) PARTITION BY RANGE (time);
CREATE INDEX lamp_samples_district_time ON lamp_samples (district, time);

CREATE TABLE rtu_samples (
    time           timestamptz      NOT NULL,
    rtu_id         text             NOT NULL,
    district       text             NOT NULL,
    circuits       smallint         NOT NULL,
    contactors     integer          NOT NULL, -- bit n-1 set: circuit n closed
    voltage_a_v    double precision,
    voltage_b_v    double precision,
    voltage_c_v    double precision,
    current_a_a    double precision,
    current_b_a    double precision,
    current_c_a    double precision,
    active_power_w double precision,
    energy_kwh     double precision,
    door_alarm     boolean          NOT NULL,
    leakage_alarm  boolean          NOT NULL,
    PRIMARY KEY (rtu_id, time)
) PARTITION BY RANGE (time);
CREATE INDEX rtu_samples_district_time ON rtu_samples (district, time);

CREATE TABLE transitions (
    time        timestamptz NOT NULL,
    device_kind text        NOT NULL, -- 'slc' or 'rtu'
    device_id   text        NOT NULL,
    district    text        NOT NULL,
    online      boolean     NOT NULL,
    reason      text,                 -- failure kind that took it offline
    detail      text,
    PRIMARY KEY (device_kind, device_id, time)
);
CREATE INDEX transitions_district_time ON transitions (district, time);

-- One row per gateway process: time outside [started_at, coalesce(stopped_at,
-- heartbeat_at)] was not observed, which is not the same as offline.
CREATE TABLE gateway_runs (
    run_id       text        PRIMARY KEY,
    gateway_id   text        NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    stopped_at   timestamptz
);

-- Lamps as the inventory had them when the gateway last started; rollups
-- take the cabinet and circuit from here.
CREATE TABLE lamps (
    lamp_id  text     PRIMARY KEY,
    district text     NOT NULL,
    cabinet  text     NOT NULL,
    circuit  smallint NOT NULL,
    slc_id   text
);

CREATE TABLE lamp_hourly (
    hour           timestamptz      NOT NULL,
    lamp_id        text             NOT NULL,
    district       text             NOT NULL,
    cabinet        text             NOT NULL,
    circuit        smallint         NOT NULL,
    samples        integer          NOT NULL,
    on_seconds     double precision NOT NULL,
    online_seconds double precision NOT NULL,
    energy_kwh     double precision NOT NULL,
    failures       integer          NOT NULL, -- lamp-failure flag raised
    PRIMARY KEY (lamp_id, hour)
);
CREATE INDEX lamp_hourly_district_hour ON lamp_hourly (district, hour);

CREATE TABLE circuit_hourly (
    hour           timestamptz      NOT NULL,
    cabinet        text             NOT NULL,
    circuit        smallint         NOT NULL,
    district       text             NOT NULL,
    lamps          integer          NOT NULL,
    on_seconds     double precision NOT NULL,
    online_seconds double precision NOT NULL,
    energy_kwh     double precision NOT NULL,
    failures       integer          NOT NULL,
    PRIMARY KEY (cabinet, circuit, hour)
);
CREATE INDEX circuit_hourly_district_hour ON circuit_hourly (district, hour);

-- Commands and audit rows: filled by the control issue.
CREATE TABLE commands (
    command_id   text        PRIMARY KEY,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    target_kind  text        NOT NULL, -- 'lamp', 'rtu', 'group'
    target       text        NOT NULL, -- id or selector
    action       text        NOT NULL,
    params       jsonb       NOT NULL,
    requested_by text,
    status       text        NOT NULL, -- queued, sent, confirmed, failed
    detail       text
);
CREATE INDEX commands_created ON commands (created_at);

CREATE TABLE audit_log (
    id     bigserial   PRIMARY KEY,
    time   timestamptz NOT NULL,
    actor  text        NOT NULL,
    action text        NOT NULL,
    target text,
    detail jsonb
);
CREATE INDEX audit_log_time ON audit_log (time);

CREATE TABLE store_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
