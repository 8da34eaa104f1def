//! TCP segments from the uplink through two whole firmwares, one whose VFs take super-frames
//! and one whose VFs do not: see `nic_firmware::fuzz::coalesce`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    nic_firmware::fuzz::coalesce::coalesce(data);
});
