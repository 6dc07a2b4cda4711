#![no_main]
//! See `fuzz::targets::api_jwt`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::api_jwt(data));
