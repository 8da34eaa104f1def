//! first_packet.rs's scenarios, once more with the board as a `nic-sim` process: the driver
//! reaches the PF through its `vfio-user:PATH` backend, each VM its VF through `PATH.vfN`.
//! In this binary (its name starts with `vfio_user_`), `Testbed::start` starts `nic-sim`.
#[path = "first_packet.rs"]
mod first_packet;

use hw_sim::SimConfig;
use tests::Testbed;

#[test]
fn the_testbed_of_this_binary_is_a_nic_sim_process() {
    assert!(tests::vfio_user::selected());
    let tb = Testbed::start(SimConfig::default()).expect("nic-sim comes up");
    let info = tb.driver.info();
    assert!(info.device.ends_with("(vfio-user)"), "{info:?}");
    assert_eq!(info.num_vfs, u32::from(SimConfig::default().num_vfs));
}
