#![no_main]
//! See `fuzz::targets::token_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::token_request(data));
