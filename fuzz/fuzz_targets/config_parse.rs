//! The Junos configuration parser and commit checks on arbitrary text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = control::config::parse(text);
    }
});
