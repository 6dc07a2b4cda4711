#![no_main]
//! See `fuzz::targets::cookies`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::cookies(data));
