#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_media_fuzz::inspect_bytes(data));
