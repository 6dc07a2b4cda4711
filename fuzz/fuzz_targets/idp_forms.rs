#![no_main]
//! See `fuzz::targets::idp_forms`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::idp_forms(data));
