#![no_main]
//! See `fuzz::targets::logout_token`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::logout_token(data));
