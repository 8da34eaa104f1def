//! Any bytes as a VPC file: see `nicctl::config::fuzz_vpc_file`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nicctl::config::fuzz_vpc_file(data));
