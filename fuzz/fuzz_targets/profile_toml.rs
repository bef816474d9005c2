//! A register-map profile file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = lamp_profile::Profile::from_toml(text, "fuzz.toml");
    }
});
