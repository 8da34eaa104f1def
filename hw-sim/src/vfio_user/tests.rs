use super::client::VfioUserPort;
use super::server::serve;
use super::uplink::UplinkClient;
use super::{uplink_socket, vf_socket};
use crate::guest::GuestPort;
use crate::memfd::SharedMemory;
use crate::{Function, Nic, SimConfig, SimError};
use shared_regs::{pf, vf};
use std::path::PathBuf;

/// Where a test maps its memory in a function's DMA space (above 4 GiB).
const GUEST_IOVA: u64 = 0x1_0000_0000;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A test's socket directory, removed when the test ends (the serving threads outlive it).
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh directory for one test's sockets.
fn socket_dir() -> PathBuf {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "hw-sim-vfio-user-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn served() -> (Nic, PathBuf, Dir) {
    let nic = Nic::start(SimConfig {
        num_vfs: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let dir = Dir(socket_dir());
    let path = dir.0.join("nic.sock");
    let s = serve(&nic, &path).unwrap();
    assert_eq!(
        s.sockets,
        vec![
            path.clone(),
            vf_socket(&path, 0),
            vf_socket(&path, 1),
            uplink_socket(&path)
        ]
    );
    (nic, path, dir)
}

#[test]
fn the_pf_answers_over_its_socket_and_bad_accesses_fail_before_sending() {
    let (nic, path, _dir) = served();
    let port = VfioUserPort::connect(&path, Function::Pf).unwrap();
    assert_eq!(port.bar_size(), nic.pf().bar_size());
    assert_eq!(
        port.bar_read32(u64::from(pf::ID)).unwrap(),
        shared_regs::DEVICE_ID_MAGIC
    );
    assert!(matches!(
        port.bar_read32(2),
        Err(SimError::MisalignedAccess { offset: 2, .. })
    ));
    assert!(matches!(
        port.bar_write32(port.bar_size(), 0),
        Err(SimError::OutsideBar { .. })
    ));
    // The connection survives refused accesses.
    assert_eq!(
        port.bar_read32(u64::from(pf::ID)).unwrap(),
        shared_regs::DEVICE_ID_MAGIC
    );
    assert!(
        serve(&nic, &path).is_err(),
        "a socket path in use is refused"
    );
}

#[test]
fn a_disconnect_drops_the_clients_mappings() {
    let (nic, path, _dir) = served();
    let shm = SharedMemory::new("vu-test", GUEST_IOVA, 4096).unwrap();
    let port = VfioUserPort::connect(&vf_socket(&path, 0), Function::Vf(0)).unwrap();
    port.dma_map(GUEST_IOVA, 4096, shm.file(), 0).unwrap();
    let inproc = nic.vf(0).unwrap();
    assert!(
        inproc.dma_map(GUEST_IOVA, 4096, shm.file(), 0).is_err(),
        "the client's mapping is in place"
    );
    drop(port);
    let deadline = Instant::now() + Duration::from_secs(2);
    while inproc.dma_map(GUEST_IOVA, 4096, shm.file(), 0).is_err() {
        assert!(Instant::now() < deadline, "the mapping outlived its client");
        std::thread::sleep(Duration::from_millis(5));
    }
    inproc.dma_unmap(GUEST_IOVA, 4096).unwrap();
    // The socket takes the next client.
    let again = VfioUserPort::connect(&vf_socket(&path, 0), Function::Vf(0)).unwrap();
    assert_eq!(again.bar_read32(u64::from(vf::VF_INDEX)).unwrap(), 0);
}

#[test]
fn the_uplink_socket_takes_a_far_end() {
    // Frames crossing it both ways are tested end to end by the tests crate's
    // vfio_user_conformance (VXLAN in and out of the uplink); here: it connects, and a
    // frame sent towards an unprogrammed NIC is dropped by its firmware, not echoed.
    let (_nic, path, _dir) = served();
    let far = UplinkClient::connect(&uplink_socket(&path)).unwrap();
    far.send(&[0xab; 60]);
    assert_eq!(far.recv(Duration::from_millis(20)), None);
}

#[test]
fn frames_are_length_prefixed_and_bounded() {
    let (mut a, mut b) = std::os::unix::net::UnixStream::pair().unwrap();
    super::uplink::write_frame(&mut a, b"one").unwrap();
    super::uplink::write_frame(&mut a, &[7; 1500]).unwrap();
    assert_eq!(super::uplink::read_frame(&mut b).unwrap(), b"one");
    assert_eq!(super::uplink::read_frame(&mut b).unwrap(), vec![7; 1500]);
    use std::io::Write;
    a.write_all(&u32::MAX.to_le_bytes()).unwrap();
    assert!(
        super::uplink::read_frame(&mut b).is_err(),
        "oversized frame"
    );
}
