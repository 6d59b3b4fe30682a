#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_media_fuzz::capture_ops(data));
