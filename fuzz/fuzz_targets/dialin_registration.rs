//! The first bytes a dial-in DTU sends.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lamp_gateway::fuzzing::dialin_registration(data));
