#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| switchyard_esl_fuzz::decode_messages(data));
