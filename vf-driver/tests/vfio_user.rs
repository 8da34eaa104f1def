//! The VF driver on a VF that `nic-sim` serves over vfio-user, as a VMM would hand it.
use hw_sim::guest::GuestPort;
use hw_sim::vfio_user::client::VfioUserPort;
use hw_sim::vfio_user::server::serve;
use hw_sim::vfio_user::vf_socket;
use hw_sim::{Function, Nic, SimConfig};
use shared_regs::vf;
use vf_driver::{VfDriver, GUEST_IOVA};

#[test]
fn a_vm_drives_its_vf_through_the_vf_socket() {
    let nic = Nic::start(SimConfig {
        num_vfs: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let dir = std::env::temp_dir().join(format!("vf-driver-vfio-user-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("nic.sock");
    let _served = serve(&nic, &path).unwrap();
    let port = VfioUserPort::connect(&vf_socket(&path, 1), Function::Vf(1)).unwrap();
    assert_eq!(port.bar_read32(u64::from(vf::VF_INDEX)).unwrap(), 1);
    let driver = VfDriver::attach(port, 8).unwrap();
    // The driver's ring programming reached the device's registers.
    let inproc = nic.vf(1).unwrap();
    assert_eq!(
        inproc.bar_read32(u64::from(vf::TX_BASE_HI)).unwrap(),
        (GUEST_IOVA >> 32) as u32
    );
    assert_eq!(inproc.bar_read32(u64::from(vf::TX_SIZE)).unwrap(), 8);
    drop(driver);
    assert_eq!(inproc.bar_read32(u64::from(vf::CONTROL)).unwrap(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}
