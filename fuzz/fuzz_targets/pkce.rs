#![no_main]
//! See `fuzz::targets::pkce`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::pkce(data));
