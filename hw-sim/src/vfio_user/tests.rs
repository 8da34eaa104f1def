use super::client::VfioUserPort;
use super::server::serve;
use super::uplink::UplinkClient;
use super::{uplink_socket, vf_socket};
use crate::guest::GuestPort;
use crate::memfd::SharedMemory;
use crate::{Function, Nic, SimConfig, SimError};
use shared_regs::{pf, vf};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

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

/// The vfio-user header, written out here byte by byte (not with the server's own layouts)
/// so that these tests say what goes on the wire whatever the server is built from.
const HEADER: u32 = 16;
const VERSION: u16 = 1;
const DMA_MAP: u16 = 2;
const REGION_READ: u16 = 9;
const FLAG_REPLY: u32 = 1;
const FLAG_ERROR: u32 = 1 << 5;

fn header(id: u16, command: u16, message_size: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER as usize);
    h.extend_from_slice(&id.to_ne_bytes());
    h.extend_from_slice(&command.to_ne_bytes());
    h.extend_from_slice(&message_size.to_ne_bytes());
    h.extend_from_slice(&0u32.to_ne_bytes()); // flags: a command
    h.extend_from_slice(&0u32.to_ne_bytes()); // error
    h
}

/// A reply as it came off the wire.
#[derive(Debug)]
struct Reply {
    id: u16,
    command: u16,
    message_size: u32,
    flags: u32,
    error: u32,
    /// The bytes after the header, unless `message_size` was too large to be worth reading.
    body: Vec<u8>,
}

impl Reply {
    fn is_error(&self) -> bool {
        self.flags & FLAG_ERROR != 0
    }
}

/// A vfio-user client that sends whatever bytes a test gives it, as a broken or hostile
/// VMM would.
struct Raw(UnixStream);

impl Raw {
    fn connect(path: &Path) -> Raw {
        let s = UnixStream::connect(path).unwrap();
        // A server that neither answers nor hangs up fails the test instead of hanging it.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw(s)
    }

    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).unwrap();
    }

    fn send_with_fd(&mut self, bytes: &[u8], fd: &impl AsRawFd) {
        let sent = self.0.send_with_fd(bytes, fd.as_raw_fd()).unwrap();
        assert_eq!(sent, bytes.len());
    }

    /// The next reply, or `None` once the server has closed the connection.
    fn reply(&mut self) -> Option<Reply> {
        let mut h = [0u8; HEADER as usize];
        match self.0.read_exact(&mut h) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("the server neither answered nor closed the connection")
            }
            // EOF, or ECONNRESET when the server closed with bytes of ours unread.
            Err(_) => return None,
        }
        let u16_at = |i: usize| u16::from_ne_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_ne_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let message_size = u32_at(4);
        let mut body = Vec::new();
        if (HEADER..=64 * 1024).contains(&message_size) {
            body.resize((message_size - HEADER) as usize, 0);
            self.0.read_exact(&mut body).ok()?;
        }
        Some(Reply {
            id: u16_at(0),
            command: u16_at(2),
            message_size,
            flags: u32_at(8),
            error: u32_at(12),
            body,
        })
    }

    /// `DMA_MAP` of `[iova, +size)` to `file` from offset 0, and its reply.
    fn dma_map(&mut self, id: u16, iova: u64, size: u64, file: &File) -> Reply {
        let mut msg = header(id, DMA_MAP, HEADER + 32);
        msg.extend_from_slice(&32u32.to_ne_bytes()); // argsz
        msg.extend_from_slice(&3u32.to_ne_bytes()); // READ | WRITE
        msg.extend_from_slice(&0u64.to_ne_bytes()); // file offset
        msg.extend_from_slice(&iova.to_ne_bytes());
        msg.extend_from_slice(&size.to_ne_bytes());
        self.send_with_fd(&msg, file);
        self.reply().expect("DMA_MAP is answered")
    }

    /// `REGION_READ` of `count` bytes of BAR0 at `offset`, and its reply.
    fn region_read(&mut self, id: u16, offset: u64, count: u32) -> Option<Reply> {
        let mut msg = header(id, REGION_READ, HEADER + 16);
        msg.extend_from_slice(&offset.to_ne_bytes());
        msg.extend_from_slice(&super::BAR0_REGION.to_ne_bytes());
        msg.extend_from_slice(&count.to_ne_bytes());
        self.send(&msg);
        self.reply()
    }
}

/// A memfd of `size` bytes (sparse: it costs nothing to make large), sealed against
/// shrinking or, as a careless VMM creates it, not.
fn memfd(size: u64, seal: bool) -> File {
    let flags = libc::MFD_CLOEXEC | if seal { libc::MFD_ALLOW_SEALING } else { 0 };
    // SAFETY: the name is a valid NUL-terminated string; memfd_create returns a new
    // descriptor or -1.
    let fd = unsafe { libc::memfd_create(c"vu-test".as_ptr(), flags) };
    assert!(fd >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
    let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    file.set_len(size).unwrap();
    if seal {
        // SAFETY: F_ADD_SEALS takes an int argument; `file` owns the descriptor.
        let sealed =
            unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) };
        assert_eq!(sealed, 0, "{}", std::io::Error::last_os_error());
    }
    file
}

/// A fresh, well-formed client reads the function's identity: it is still served.
fn answers(path: &Path, function: Function) {
    let port = VfioUserPort::connect(path, function)
        .unwrap_or_else(|e| panic!("{} is no longer served: {e}", path.display()));
    let (offset, expected) = match function {
        Function::Pf => (pf::ID, shared_regs::DEVICE_ID_MAGIC),
        Function::Vf(n) => (vf::VF_INDEX, u32::from(n)),
    };
    assert_eq!(port.bar_read32(u64::from(offset)).unwrap(), expected);
}

#[test]
fn an_unsealed_memfd_is_refused_and_every_function_stays_up() {
    let (nic, path, _dir) = served();
    let vf1 = vf_socket(&path, 1);
    let unsealed = memfd(4096, false);
    // What a VMM that skips the seal sends: refused with an error reply, and nothing is
    // mapped (the in-process view of VF 1 can take the range).
    let mut raw = Raw::connect(&vf1);
    let reply = raw.dma_map(7, GUEST_IOVA, 4096, &unsealed);
    assert!(reply.is_error(), "{reply:?}");
    assert_eq!(
        (reply.id, reply.command, reply.message_size),
        (7, DMA_MAP, HEADER)
    );
    let inproc = nic.vf(1).unwrap();
    let shm = SharedMemory::new("vu-sealed", GUEST_IOVA, 4096).unwrap();
    inproc.dma_map(GUEST_IOVA, 4096, shm.file(), 0).unwrap();
    inproc.dma_unmap(GUEST_IOVA, 4096).unwrap();
    // The connection goes on.
    let read = raw.region_read(8, u64::from(vf::VF_INDEX), 4).unwrap();
    assert!(!read.is_error(), "{read:?}");
    assert_eq!(read.body[16..], 1u32.to_le_bytes());
    drop(raw);

    // Our own client refuses before sending, and says why.
    let port = VfioUserPort::connect(&vf1, Function::Vf(1)).unwrap();
    let e = port.dma_map(GUEST_IOVA, 4096, &unsealed, 0).unwrap_err();
    assert!(e.to_string().contains("F_SEAL_SHRINK"), "{e}");
    // The helper's memfd is sealed: it maps, and can no longer shrink under the device.
    port.dma_map(GUEST_IOVA, 4096, shm.file(), 0).unwrap();
    assert!(inproc.dma_map(GUEST_IOVA, 4096, shm.file(), 0).is_err());
    let e = shm.file().set_len(0).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    assert_eq!(port.bar_read32(u64::from(vf::VF_INDEX)).unwrap(), 1);
    answers(&path, Function::Pf);
    answers(&vf_socket(&path, 0), Function::Vf(0));
}

/// Sends `msg` to VF 1 as a client of its own, then checks that the server either refused
/// it with an error reply or hung up (never something else), that it is not answered
/// with a huge reply, and that every function is still served.
fn survives(path: &Path, what: &str, msg: &[u8]) -> Option<Reply> {
    let mut raw = Raw::connect(&vf_socket(path, 1));
    raw.send(msg);
    let reply = raw.reply();
    if let Some(r) = &reply {
        assert!(r.message_size <= 64 * 1024, "{what}: a huge reply: {r:?}");
    }
    drop(raw);
    answers(&vf_socket(path, 1), Function::Vf(1));
    answers(path, Function::Pf);
    reply
}

#[test]
fn a_version_without_capabilities_is_answered() {
    // 20 bytes: the header, major and minor, and no capabilities string.
    let (_nic, path, _dir) = served();
    let mut msg = header(1, VERSION, HEADER + 4);
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&1u16.to_ne_bytes());
    let reply = survives(&path, "20-byte VERSION", &msg).expect("VERSION is answered");
    assert_eq!(reply.command, VERSION);
    assert_eq!(reply.flags, FLAG_REPLY, "{reply:?}");
}

#[test]
fn a_capabilities_string_without_nul_is_refused() {
    let (_nic, path, _dir) = served();
    let caps = br#"{"capabilities":{}}"#;
    let mut msg = header(1, VERSION, HEADER + 4 + caps.len() as u32);
    msg.extend_from_slice(&0u16.to_ne_bytes());
    msg.extend_from_slice(&1u16.to_ne_bytes());
    msg.extend_from_slice(caps);
    let reply = survives(&path, "capabilities without NUL", &msg);
    assert!(reply.is_some_and(|r| r.is_error() && r.error == libc::EINVAL as u32));
}

#[test]
fn a_message_shorter_than_its_header_ends_the_connection() {
    let (_nic, path, _dir) = served();
    for command in [VERSION, DMA_MAP, REGION_READ, 0, 0xffff] {
        let reply = survives(&path, "message_size 10", &header(1, command, 10));
        assert!(
            reply.as_ref().is_none_or(|r| r.is_error()),
            "command {command}: {reply:?}"
        );
    }
}

#[test]
fn sizes_past_the_limits_are_refused() {
    let (_nic, path, _dir) = served();
    // A message longer than any the protocol needs: not read, the connection ends.
    let reply = survives(&path, "a 4 GiB message", &header(1, VERSION, u32::MAX));
    assert!(reply.as_ref().is_none_or(|r| r.is_error()), "{reply:?}");
    // A REGION_WRITE whose count is not its data.
    let mut msg = header(2, 10, HEADER + 16 + 4);
    msg.extend_from_slice(&0u64.to_ne_bytes());
    msg.extend_from_slice(&super::BAR0_REGION.to_ne_bytes());
    msg.extend_from_slice(&4096u32.to_ne_bytes());
    msg.extend_from_slice(&[0; 4]);
    let reply = survives(&path, "REGION_WRITE count 4096 with 4 bytes", &msg);
    assert!(reply.as_ref().is_some_and(|r| r.is_error()), "{reply:?}");
    // Commands the device does not serve.
    let reply = survives(&path, "unknown command", &header(3, 0x7777, HEADER));
    assert!(reply.as_ref().is_some_and(|r| r.is_error()), "{reply:?}");
}

#[test]
fn a_region_read_past_the_region_is_refused_without_allocating_it() {
    let (_nic, path, _dir) = served();
    let mut raw = Raw::connect(&vf_socket(&path, 1));
    let reply = raw.region_read(1, 0, 256 << 20).expect("an error reply");
    assert!(reply.is_error(), "{reply:?}");
    assert!(
        reply.message_size < 4096,
        "the 256 MiB were sent: {reply:?}"
    );
    assert!(
        big_allocations::largest() < big_allocations::THRESHOLD,
        "the server allocated {} bytes",
        big_allocations::largest()
    );
    // Past the end by one register, and from a region the device does not have.
    let reply = raw.region_read(2, u64::from(vf::BAR0_SIZE) - 4, 8).unwrap();
    assert!(reply.is_error(), "{reply:?}");
    let mut msg = header(3, REGION_READ, HEADER + 16);
    msg.extend_from_slice(&0u64.to_ne_bytes());
    msg.extend_from_slice(&7u32.to_ne_bytes()); // region 7
    msg.extend_from_slice(&4u32.to_ne_bytes());
    raw.send(&msg);
    let reply = raw.reply().unwrap();
    assert!(reply.is_error(), "{reply:?}");
    // The connection goes on.
    let reply = raw.region_read(4, u64::from(vf::VF_INDEX), 4).unwrap();
    assert!(!reply.is_error(), "{reply:?}");
    assert_eq!(reply.body[16..], 1u32.to_le_bytes());
}

#[test]
fn a_broken_connection_releases_its_dma_mappings() {
    let (nic, path, _dir) = served();
    let shm = SharedMemory::new("vu-broken", GUEST_IOVA, 4096).unwrap();
    let mut raw = Raw::connect(&vf_socket(&path, 1));
    assert!(!raw.dma_map(1, GUEST_IOVA, 4096, shm.file()).is_error());
    let inproc = nic.vf(1).unwrap();
    assert!(inproc.dma_map(GUEST_IOVA, 4096, shm.file(), 0).is_err());
    raw.send(&header(2, VERSION, 10));
    let deadline = Instant::now() + Duration::from_secs(2);
    while inproc.dma_map(GUEST_IOVA, 4096, shm.file(), 0).is_err() {
        assert!(
            Instant::now() < deadline,
            "the mapping outlived its connection"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    inproc.dma_unmap(GUEST_IOVA, 4096).unwrap();
    answers(&vf_socket(&path, 1), Function::Vf(1));
}

#[test]
fn an_interrupt_descriptor_that_is_not_an_eventfd_is_refused() {
    // The device thread writes the vector's descriptor: a pipe would block it once full.
    let (_nic, path, _dir) = served();
    let mut raw = Raw::connect(&vf_socket(&path, 1));
    let set_irqs = |id: u16| {
        let mut msg = header(id, 8, HEADER + 20);
        msg.extend_from_slice(&20u32.to_ne_bytes()); // argsz
        let flags = vfio_bindings::bindings::vfio::VFIO_IRQ_SET_DATA_EVENTFD
            | vfio_bindings::bindings::vfio::VFIO_IRQ_SET_ACTION_TRIGGER;
        msg.extend_from_slice(&flags.to_ne_bytes());
        msg.extend_from_slice(&super::MSIX_IRQ_INDEX.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // start
        msg.extend_from_slice(&1u32.to_ne_bytes()); // count
        msg
    };
    let (pipe_out, _pipe_in) = std::io::pipe().unwrap();
    raw.send_with_fd(&set_irqs(1), &pipe_out);
    let reply = raw.reply().unwrap();
    assert!(reply.is_error(), "{reply:?}");
    assert_eq!(reply.error, libc::EINVAL as u32);
    let efd = vmm_sys_util::eventfd::EventFd::new(libc::EFD_NONBLOCK).unwrap();
    raw.send_with_fd(&set_irqs(2), &efd);
    let reply = raw.reply().unwrap();
    assert!(!reply.is_error(), "{reply:?}");
}

/// A device model with a bug: reading BAR0 at [`Panicky::BUG_AT`] panics.
struct Panicky {
    releases: Arc<AtomicU32>,
}

impl Panicky {
    const BUG_AT: u64 = 0x100;
}

impl super::connection::Backend for Panicky {
    fn log(&self, _: &str) {}
    fn bar_size(&self) -> u64 {
        0x1000
    }
    fn region_read(&mut self, offset: u64, data: &mut [u8]) {
        assert_ne!(offset, Panicky::BUG_AT, "a bug in the device model");
        data.fill(0x5a);
    }
    fn region_write(&mut self, _: u64, _: &[u8]) {}
    fn dma_map(
        &mut self,
        _: u64,
        _: u64,
        _: File,
        _: u64,
    ) -> Result<(), super::connection::Refusal> {
        Ok(())
    }
    fn dma_unmap(&mut self, _: u64, _: u64) -> Result<(), super::connection::Refusal> {
        Ok(())
    }
    fn set_irq(&mut self, _: u32, _: Option<File>) -> Result<(), super::connection::Refusal> {
        Ok(())
    }
    fn release(&mut self) {
        self.releases.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_panic_ends_only_its_connection_and_releases_what_it_set_up() {
    let dir = Dir(socket_dir());
    let path = dir.0.join("panicky.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let releases = Arc::new(AtomicU32::new(0));
    let mut dev = Panicky {
        releases: Arc::clone(&releases),
    };
    std::thread::spawn(move || super::server::serve_clients(&listener, &mut dev));
    let mut raw = Raw::connect(&path);
    assert!(
        raw.region_read(1, Panicky::BUG_AT, 4).is_none(),
        "the connection whose message panicked is closed"
    );
    let deadline = Instant::now() + Duration::from_secs(2);
    while releases.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "the connection was not released");
        std::thread::sleep(Duration::from_millis(5));
    }
    // The next client is served.
    let mut again = Raw::connect(&path);
    let reply = again.region_read(2, 0, 4).unwrap();
    assert!(!reply.is_error(), "{reply:?}");
    assert_eq!(reply.body[16..], [0x5a; 4]);
}

#[test]
fn a_client_holds_a_bounded_number_of_dma_mappings() {
    let (nic, path, _dir) = served();
    let limit = super::wire::MAX_DMA_MAPS as u64;
    let shm = SharedMemory::new("vu-many", 0, 4096).unwrap();
    let mut raw = Raw::connect(&vf_socket(&path, 1));
    for page in 0..limit {
        let reply = raw.dma_map(1, GUEST_IOVA + page * 4096, 4096, shm.file());
        assert!(!reply.is_error(), "mapping {page}: {reply:?}");
    }
    let reply = raw.dma_map(2, GUEST_IOVA + limit * 4096, 4096, shm.file());
    assert!(reply.is_error(), "{reply:?}");
    assert_eq!(reply.error, libc::ENOSPC as u32);
    // And a bounded number of bytes: a sparse memfd costs nothing to make large.
    let mut other = Raw::connect(&vf_socket(&path, 0));
    let huge = super::wire::MAX_DMA_BYTES + 4096;
    let reply = other.dma_map(3, GUEST_IOVA, huge, &memfd(huge, true));
    assert!(reply.is_error(), "{reply:?}");
    assert_eq!(reply.error, libc::ENOSPC as u32);
    drop(other);
    // They all go with the client.
    drop(raw);
    let inproc = nic.vf(1).unwrap();
    let whole = SharedMemory::new("vu-whole", 0, (limit * 4096) as usize).unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while inproc
        .dma_map(GUEST_IOVA, limit * 4096, whole.file(), 0)
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the mappings outlived their client"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Records the largest allocation of [`big_allocations::THRESHOLD`] bytes or more made
/// by this test binary: none of its tests needs one, so one is a server allocating what a
/// client asked for.
mod big_allocations {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub const THRESHOLD: usize = 64 << 20;
    static LARGEST: AtomicUsize = AtomicUsize::new(0);

    pub fn largest() -> usize {
        LARGEST.load(Ordering::Relaxed)
    }

    fn note(size: usize) {
        if size >= THRESHOLD {
            LARGEST.fetch_max(size, Ordering::Relaxed);
        }
    }

    struct Recording;

    // SAFETY: every call is passed to the system allocator unchanged; the recording only
    // touches an atomic and never allocates.
    unsafe impl GlobalAlloc for Recording {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            // SAFETY: the caller's contract is the system allocator's.
            unsafe { System.alloc(layout) }
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note(layout.size());
            // SAFETY: as above.
            unsafe { System.alloc_zeroed(layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            note(new_size);
            // SAFETY: as above.
            unsafe { System.realloc(ptr, layout, new_size) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: as above.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: Recording = Recording;
}

#[test]
fn every_socket_is_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let nic = Nic::start(SimConfig {
        num_vfs: 2,
        ..SimConfig::default()
    })
    .unwrap();
    let dir = Dir(socket_dir());
    let path = dir.0.join("nic.sock");
    // The umask is the process's: other tests running now create their files under it too,
    // which only makes their temporary files more open for a moment.
    // SAFETY: umask cannot fail and has no memory effects.
    let old = unsafe { libc::umask(0) };
    let served = serve(&nic, &path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let served = served.unwrap();
    assert_eq!(served.sockets.len(), 4);
    for socket in &served.sockets {
        let mode = std::fs::metadata(socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o600, "{}: {mode:o}", socket.display());
    }
}

/// The fuzzer's body over its seeds and a few thousand random and mutated messages: the
/// server never panics, whatever a client sends.
#[test]
fn the_message_fuzzer_body_holds_on_its_seeds_and_random_bytes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/seeds/vfio_user_messages");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read(e.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(!seeds.is_empty(), "no seeds in {dir}");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for round in 0..2000 {
        let base = seeds[round % seeds.len()].clone();
        let mut m = base.clone();
        for _ in 0..(next() % 4) {
            if m.is_empty() {
                break;
            }
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        if next() % 5 == 0 {
            m.truncate((next() as usize) % (m.len() + 1));
        }
        super::fuzz_messages(&m);
        if round % 200 == 0 {
            seeds.push(m);
        }
    }
}

#[test]
fn a_client_that_stalls_inside_a_message_loses_its_connection_not_the_function() {
    let (_nic, path, _dir) = served();
    let vf1 = vf_socket(&path, 1);
    // Half a header, then nothing: a VMM whose writer died mid-message while its process
    // (and so the socket) lives on.
    let mut stalled = Raw::connect(&vf1);
    stalled.send(&header(1, REGION_READ, HEADER + 16)[..8]);
    let start = Instant::now();
    assert!(
        stalled.reply().is_none(),
        "the server answers half a header"
    );
    let waited = start.elapsed();
    assert!(
        waited >= super::connection::MESSAGE_TIMEOUT / 2 && waited < Duration::from_secs(9),
        "the connection ended after {waited:?}"
    );
    answers(&vf1, Function::Vf(1));

    // Idle between messages is no stall: a VM's VMM stays connected and silent for long.
    let mut idle = Raw::connect(&vf1);
    std::thread::sleep(super::connection::MESSAGE_TIMEOUT * 2);
    let read = idle.region_read(2, u64::from(vf::VF_INDEX), 4).unwrap();
    assert!(!read.is_error(), "{read:?}");
}
