//! A poll's reply over the MBAP wire: arbitrary bytes, then end of stream.
#![no_main]
use lamp_gateway::fuzzing::{modbus_reply, Wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| modbus_reply(Wire::Mbap, data));
