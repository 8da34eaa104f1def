//! A batch of frames from one port through the pipeline: see `nic_firmware::fuzz::pipeline`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nic_firmware::fuzz::pipeline(data));
