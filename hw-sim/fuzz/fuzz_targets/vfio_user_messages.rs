//! What a client sends on one vfio-user connection: see `hw_sim::vfio_user::fuzz_messages`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hw_sim::vfio_user::fuzz_messages(data));
