//! Admin commands through the admin queue of a fresh firmware: see `nic_firmware::fuzz::admin`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nic_firmware::fuzz::admin(data);
});
