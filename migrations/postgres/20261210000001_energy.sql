-- Energy, savings and maintenance figures (issue 15; the rules are in
-- src/figures/energy.rs).
--
-- The inventory as the gateway last started, which the rollups take the
-- road of a lamp and the cabinet of an RTU from.
ALTER TABLE lamps ADD COLUMN road text;
CREATE TABLE cabinets (
    cabinet_id text PRIMARY KEY,
    district   text NOT NULL,
    rtu_id     text
);
CREATE INDEX cabinets_rtu ON cabinets (rtu_id);

-- On/off changes of `is_on` between consecutive samples at most an hour
-- apart, counted in the hour of the later one. Hours rolled up before this
-- migration keep 0. The SLC energy of lamp_hourly counts its deltas by the
-- same hour rule from now on, so that a recomputed hour does not depend on
-- where a rollup pass began.
ALTER TABLE lamp_hourly ADD COLUMN switches integer NOT NULL DEFAULT 0;

-- The cabinet meter: Σ of the positive deltas of the RTU's energy counter
-- between consecutive readings at most an hour apart (a reset counts 0, as
-- for the SLCs' counters), in the hour of the later reading; `samples` are
-- the RTU samples with a meter reading in the hour.
CREATE TABLE cabinet_hourly (
    hour      timestamptz NOT NULL,
    cabinet   text NOT NULL,
    district  text NOT NULL,
    meter_kwh double precision NOT NULL,
    samples   integer NOT NULL,
    PRIMARY KEY (cabinet, hour)
);
CREATE INDEX cabinet_hourly_district_hour ON cabinet_hourly (district, hour);
CREATE INDEX cabinet_hourly_hour ON cabinet_hourly (hour);

-- The SLC energy and burning time per road and hour (sums of lamp_hourly;
-- road '' holds the lamps on no road).
CREATE TABLE road_hourly (
    hour       timestamptz NOT NULL,
    road       text NOT NULL,
    district   text NOT NULL,
    lamps      integer NOT NULL,
    energy_kwh double precision NOT NULL,
    on_seconds double precision NOT NULL,
    PRIMARY KEY (district, road, hour)
);
CREATE INDEX road_hourly_hour ON road_hourly (hour);

-- City-wide energy reads every circuit's hours of a window.
CREATE INDEX circuit_hourly_hour ON circuit_hourly (hour);
