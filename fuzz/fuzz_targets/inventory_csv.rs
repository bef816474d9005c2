//! districts.csv, cabinets.csv and lamps.csv, separated by 0x1e, through
//! the whole-configuration check.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lamp_gateway::fuzzing::inventory_csv(data));
