#![no_main]
//! See `fuzz::targets::bff_callback`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::targets::bff_callback(data));
