-- The dark-lamp cap of a road over a window (issue 15; the rules are in
-- src/figures/sampler.rs and src/figures/evaluation_window.rs).
--
-- Per road, hour and run: the time its dark lamps were over the cap for
-- its size (`over_cap_ms`: dark lamps only; `over_cap_with_unknown_ms`:
-- the unknown ones counted dark too), and the most dark lamps at any one
-- tick (`dark_max`, `dark_with_unknown_max`). Both readings are kept so the
-- window follows `figures.unknown_counts_as` as it stands when read, as
-- the rates do. Rows written before this migration read as never over cap.
ALTER TABLE evaluation_hourly ADD COLUMN over_cap_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE evaluation_hourly ADD COLUMN over_cap_with_unknown_ms bigint NOT NULL DEFAULT 0;
ALTER TABLE evaluation_hourly ADD COLUMN dark_max bigint NOT NULL DEFAULT 0;
ALTER TABLE evaluation_hourly ADD COLUMN dark_with_unknown_max bigint NOT NULL DEFAULT 0;
