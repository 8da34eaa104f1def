//! One frame from a VF with TX checksum offload and TSO flags through a whole firmware's
//! rings: see `nic_firmware::fuzz::offload`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nic_firmware::fuzz::offload::offload(data);
});
