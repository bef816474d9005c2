//! A command body as `POST /api/v1/commands` and MQTT `…/set` receive it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| lamp_gateway::fuzzing::command_json(data));
