-- The evaluation-grade lighting figures over windows (issue 15; the rules
-- are in src/figures/sampler.rs and src/figures/evaluation_window.rs).
--
-- Lamp-time per verdict, per UTC hour, scope and gateway run: every
-- `figures.evaluation_interval` the gateway takes the evaluation now (every
-- lamp of the inventory a verdict) and adds each verdict's lamps × the time
-- since the previous tick to the hour's running total of its run, written
-- again each tick with a higher `seq` (the upsert keeps the highest). A
-- scope is a road (`road` its id) or a district's lamps on no road (`road`
-- ''); every district has its '' row every tick, so its `sampled_ms` is
-- the time the district was evaluated. Each run has its own rows: a window
-- adds them up. Lamp-milliseconds, whole numbers.
CREATE TABLE evaluation_hourly (
    hour            timestamptz NOT NULL,
    district        text   NOT NULL,
    road            text   NOT NULL,
    run_id          text   NOT NULL,
    seq             bigint NOT NULL,
    sampled_ms      bigint NOT NULL,
    expected_lit_ms bigint NOT NULL,
    lit_ms          bigint NOT NULL,
    dark_ms         bigint NOT NULL,
    unknown_ms      bigint NOT NULL,
    estimated_ms    bigint NOT NULL,
    PRIMARY KEY (district, road, hour, run_id)
);
CREATE INDEX evaluation_hourly_hour ON evaluation_hourly (hour);
