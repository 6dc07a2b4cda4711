#![no_main]
//! See `fuzz::targets::authorize_query`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::authorize_query(data));
