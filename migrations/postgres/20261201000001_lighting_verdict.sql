-- The lighting rule's verdict kept with every lamp sample (issue 10): the
-- live state judges each sample by the one rule (src/lighting.rs: RTU
-- contactor when online, else supply voltage; last confirmed command, else
-- relay) and the rollups only add up seconds. `commanded` is the switch state
-- of the last confirmed command (NULL before one). Samples written before
-- this migration keep 0: their hours were rolled up already and those rollups
-- are kept as they are.
ALTER TABLE lamp_samples ADD COLUMN commanded boolean;
ALTER TABLE lamp_samples ADD COLUMN should_be_lit boolean NOT NULL DEFAULT false;
ALTER TABLE lamp_samples ADD COLUMN lit boolean NOT NULL DEFAULT false;
