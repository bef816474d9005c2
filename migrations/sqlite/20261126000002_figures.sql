-- Windowed supervision figures (issue 5).
--
-- Lighting rate over a window comes from the hourly rollups: per lamp-hour,
-- the seconds the lamp should have been lit (SLC answering, supply at the
-- lamp >= 100 V, relay on) and the seconds it was (also drawing more than its
-- profile's threshold with no lamp-failure flag). Hours rolled up before this
-- migration keep 0 in both, so they do not count.
ALTER TABLE lamp_hourly ADD COLUMN expected_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE lamp_hourly ADD COLUMN lit_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE circuit_hourly ADD COLUMN expected_seconds REAL NOT NULL DEFAULT 0;
ALTER TABLE circuit_hourly ADD COLUMN lit_seconds REAL NOT NULL DEFAULT 0;
-- The profile's lit threshold per lamp, written with the inventory at start.
ALTER TABLE lamps ADD COLUMN lit_threshold_w REAL NOT NULL DEFAULT 0;

-- The lighting columns per district and hour (sums of circuit_hourly), so a
-- month for the city reads districts × 720 rows, not circuits × 720.
CREATE TABLE district_hourly (
    hour             INTEGER NOT NULL,
    district         TEXT NOT NULL,
    lamps            INTEGER NOT NULL,
    expected_seconds REAL NOT NULL,
    lit_seconds      REAL NOT NULL,
    PRIMARY KEY (district, hour)
) WITHOUT ROWID;
CREATE INDEX district_hourly_hour ON district_hourly (hour);
-- City-wide online rates read every transition of a window in time order.
CREATE INDEX transitions_time ON transitions (time, device_kind, device_id, online);
CREATE INDEX gateway_runs_gateway_started ON gateway_runs (gateway_id, started_at);
