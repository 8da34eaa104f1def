//! One client's connection: each message is read whole, checked against the protocol and
//! the device before anything acts on it, and answered.
//!
//! A client is a VMM that the device does not trust, so nothing it sends may end more than
//! its own connection:
//!
//! - The header is read first. A `message_size` shorter than the header or longer than
//!   [`MAX_MESSAGE`] leaves no way to find the next message: it gets an error reply and the
//!   connection ends. So does a client that hangs up inside a message or sends more than
//!   [`MAX_FDS`] descriptors.
//! - Otherwise the whole message is read, so the stream stays in step whatever its body
//!   holds. A body that is not the command's layout, a string without its NUL, a count past
//!   the region or the message, an index the device does not have, a command it does not
//!   serve: each gets an error reply (`EINVAL`, or `ENOTSUP` for what is not served), and
//!   the connection goes on. Nothing is allocated from a count before it is checked.
//! - Descriptors that come with a message that takes none, or is refused, are closed.
//! - A message, once begun, must arrive whole within [`MESSAGE_TIMEOUT`]; a client that
//!   stalls inside one (a VMM whose writer died with its process alive) loses the
//!   connection, so the function can serve its next client. Between messages a client may
//!   stay silent as long as it likes: a VM's VMM does.
//!
//! An error reply is padded to the size of the command's reply ([`wire::reply_body_size`]),
//! so the `vfio_user` 0.1 client, which reads that size and ignores the error flag, stays
//! in step too.
use super::wire::{
    self, command, DeviceInfo, DmaMap, DmaUnmap, Header, IrqInfo, RegionAccess, RegionInfo,
    SetIrqs, Version, FLAGS_TYPE, FLAG_ERROR, FLAG_NO_REPLY, HEADER_SIZE, MAX_DATA_XFER, MAX_FDS,
    MAX_MESSAGE, MAX_VERSION_DATA, TYPE_COMMAND,
};
use super::{BAR0_REGION, MSIX_IRQ_INDEX, MSIX_VECTORS};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use vfio_bindings::bindings::vfio::{
    VFIO_DEVICE_FLAGS_PCI, VFIO_DEVICE_FLAGS_RESET, VFIO_IRQ_INFO_EVENTFD,
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_TYPE_MASK, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSI_IRQ_INDEX, VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;
use zerocopy::{FromBytes, IntoBytes};

/// The interrupt indexes a function has, and their vectors: only MSI-X has any.
const IRQS: [(u32, u32); 3] = [
    (VFIO_PCI_INTX_IRQ_INDEX, 0),
    (VFIO_PCI_MSI_IRQ_INDEX, 0),
    (MSIX_IRQ_INDEX, MSIX_VECTORS),
];

/// Why a well-formed command was not carried out: the errno of the error reply, and the
/// reason for the server's log.
#[derive(Debug)]
pub(super) struct Refusal {
    pub errno: i32,
    pub reason: String,
}

impl Refusal {
    pub fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal {
            errno: libc::EINVAL,
            reason: reason.into(),
        }
    }

    pub fn unsupported(reason: impl Into<String>) -> Refusal {
        Refusal {
            errno: libc::ENOTSUP,
            reason: reason.into(),
        }
    }
}

/// What a connection serves: one PCI function, whose only region is BAR0.
pub(super) trait Backend {
    /// Reports `what` on the server's log, naming the function.
    fn log(&self, what: &str);
    /// Size of BAR0.
    fn bar_size(&self) -> u64;
    /// Reads `data.len()` bytes of BAR0 at `offset`, inside the BAR (checked before). What
    /// the registers refuse reads as all ones, as a PCI read nobody claims does.
    fn region_read(&mut self, offset: u64, data: &mut [u8]);
    /// Writes `data` to BAR0 at `offset`, inside the BAR (checked before). What the
    /// registers refuse is dropped, as on PCI.
    fn region_write(&mut self, offset: u64, data: &[u8]);
    /// Maps `[iova, iova + size)` to `file` from `file_offset`.
    fn dma_map(
        &mut self,
        iova: u64,
        size: u64,
        file: File,
        file_offset: u64,
    ) -> Result<(), Refusal>;
    /// Unmaps the mappings in `[iova, iova + size)`.
    fn dma_unmap(&mut self, iova: u64, size: u64) -> Result<(), Refusal>;
    /// Wires MSI-X `vector` (one the function has) to `eventfd`, or unwires it.
    fn set_irq(&mut self, vector: u32, eventfd: Option<File>) -> Result<(), Refusal>;
    /// Drops every mapping and interrupt the client set up: `DEVICE_RESET`, and the end of
    /// a connection.
    fn release(&mut self);
}

/// One message as read off the socket.
struct Message {
    header: Header,
    body: Vec<u8>,
    fds: Vec<File>,
}

/// Why the connection cannot go on, and the header of the message that ended it if there
/// was one (it gets an error reply).
struct Broken {
    header: Option<Header>,
    reason: String,
}

impl Broken {
    fn io(what: &str, e: impl std::fmt::Display) -> Broken {
        Broken {
            header: None,
            reason: format!("{what}: {e}"),
        }
    }

    /// A read inside a message failed: a stall past [`MESSAGE_TIMEOUT`] says so.
    fn inside(what: &str, e: std::io::Error) -> Broken {
        match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => Broken::io(
                what,
                format!(
                    "the client stalled inside the message for {:?}",
                    MESSAGE_TIMEOUT
                ),
            ),
            _ => Broken::io(what, e),
        }
    }
}

/// Serves the client on `stream` until it hangs up (`Ok`) or the connection cannot go on
/// (`Err`, why). The caller releases what the client set up.
pub(super) fn serve(stream: &mut UnixStream, dev: &mut impl Backend) -> Result<(), String> {
    loop {
        let msg = match read_message(stream) {
            Ok(Some(msg)) => msg,
            Ok(None) => return Ok(()),
            Err(broken) => {
                if let Some(h) = broken.header {
                    // The connection ends anyway: a client that no longer reads is no loss.
                    let _ =
                        stream.write_all(&wire::reply(&h, FLAG_ERROR, libc::EINVAL as u32, &[]));
                }
                return Err(broken.reason);
            }
        };
        if let Some(reply) = handle(dev, msg) {
            stream
                .write_all(&reply)
                .map_err(|e| format!("writing a reply: {e}"))?;
        }
    }
}

/// How long the rest of a message may take once its first bytes have come.
#[cfg(not(test))]
pub(super) const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
#[cfg(test)]
pub(super) const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);

/// Reads the next message whole, or `None` when the client hung up between messages.
fn read_message(stream: &mut UnixStream) -> Result<Option<Message>, Broken> {
    stream
        .set_read_timeout(None)
        .map_err(|e| Broken::io("waiting for a message", e))?;
    let mut raw = [0u8; HEADER_SIZE];
    let (got, fds) = recv_with_fds(stream, &mut raw)?;
    if got == 0 {
        return Ok(None);
    }
    stream
        .set_read_timeout(Some(MESSAGE_TIMEOUT))
        .map_err(|e| Broken::io("reading a message", e))?;
    stream
        .read_exact(&mut raw[got..])
        .map_err(|e| Broken::inside("reading a message header", e))?;
    let header = Header::read_from_bytes(&raw)
        .map_err(|_| Broken::io("reading a message header", "short header"))?;
    let size = header.message_size;
    if !(HEADER_SIZE as u32..=MAX_MESSAGE).contains(&size) {
        return Err(Broken {
            header: Some(header),
            reason: format!(
                "message {} (command {}) claims {size} bytes: a message is {HEADER_SIZE} to \
                 {MAX_MESSAGE} bytes, so where the next one starts is unknown",
                header.message_id, header.command
            ),
        });
    }
    let mut body = vec![0u8; size as usize - HEADER_SIZE];
    stream.read_exact(&mut body).map_err(|e| {
        Broken::inside(
            &format!("reading the {size}-byte message {}", header.message_id),
            e,
        )
    })?;
    Ok(Some(Message { header, body, fds }))
}

/// The first bytes of a message into `buf`, and the descriptors that came with them.
fn recv_with_fds(stream: &UnixStream, buf: &mut [u8]) -> Result<(usize, Vec<File>), Broken> {
    let mut fds: [RawFd; MAX_FDS] = [-1; MAX_FDS];
    let mut iov = [libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    }];
    loop {
        // SAFETY: the iovec describes `buf`, which is valid for writes of its length for the
        // whole call; `fds` has room for MAX_FDS descriptors, the most the call accepts.
        match unsafe { stream.recv_with_fds(&mut iov, &mut fds) } {
            Ok((got, nfds)) => {
                let files = fds[..nfds]
                    .iter()
                    // SAFETY: recvmsg has just installed these descriptors in this process
                    // for us, and nothing else owns them.
                    .map(|&fd| unsafe { File::from_raw_fd(fd) })
                    .collect();
                return Ok((got, files));
            }
            Err(e) if e.errno() == libc::EINTR => continue,
            // ENOBUFS: more descriptors than MAX_FDS (closed by the call); the bytes that
            // came with them are gone too.
            Err(e) => return Err(Broken::io("receiving a message", e)),
        }
    }
}

/// Carries out one message: the reply to send, if any.
fn handle(dev: &mut impl Backend, msg: Message) -> Option<Vec<u8>> {
    let h = msg.header;
    let done = if h.flags & FLAGS_TYPE != TYPE_COMMAND {
        Err(Refusal::invalid(
            "a reply or unknown message type where a command was expected",
        ))
    } else {
        dispatch(dev, h.command, &msg.body, msg.fds)
    };
    match done {
        Ok(body) if h.flags & FLAG_NO_REPLY == 0 => Some(wire::reply(&h, 0, 0, &body)),
        Ok(_) => None,
        Err(refusal) => {
            dev.log(&format!(
                "refused {} (message {}): {}",
                name(h.command),
                h.message_id,
                refusal.reason
            ));
            let padding = vec![0u8; wire::reply_body_size(h.command)];
            Some(wire::reply(&h, FLAG_ERROR, refusal.errno as u32, &padding))
        }
    }
}

fn name(command: u16) -> String {
    match command {
        command::VERSION => "VERSION".into(),
        command::DMA_MAP => "DMA_MAP".into(),
        command::DMA_UNMAP => "DMA_UNMAP".into(),
        command::DEVICE_GET_INFO => "DEVICE_GET_INFO".into(),
        command::DEVICE_GET_REGION_INFO => "DEVICE_GET_REGION_INFO".into(),
        command::DEVICE_GET_IRQ_INFO => "DEVICE_GET_IRQ_INFO".into(),
        command::DEVICE_SET_IRQS => "DEVICE_SET_IRQS".into(),
        command::REGION_READ => "REGION_READ".into(),
        command::REGION_WRITE => "REGION_WRITE".into(),
        command::DEVICE_RESET => "DEVICE_RESET".into(),
        other => format!("command {other}"),
    }
}

/// The command's body as a `T`, which it must be exactly.
fn exact<T: FromBytes>(command: u16, body: &[u8]) -> Result<T, Refusal> {
    T::read_from_bytes(body).map_err(|_| {
        Refusal::invalid(format!(
            "a {}-byte body where {} has {}",
            body.len(),
            name(command),
            size_of::<T>()
        ))
    })
}

/// Carries out a command: the body of its reply.
fn dispatch(
    dev: &mut impl Backend,
    cmd: u16,
    body: &[u8],
    mut fds: Vec<File>,
) -> Result<Vec<u8>, Refusal> {
    match cmd {
        command::VERSION => version(body),
        command::DMA_MAP => {
            let m: DmaMap = exact(cmd, body)?;
            // The device's IOMMU cannot honour a one-way mapping: its DMA may go either way.
            if m.flags != wire::DMA_MAP_READ_WRITE {
                return Err(Refusal::unsupported(format!(
                    "flags {:#x}: only read-write mappings ({:#x}) are supported",
                    m.flags,
                    wire::DMA_MAP_READ_WRITE
                )));
            }
            let file = match (fds.pop(), fds.len()) {
                (Some(file), 0) => file,
                (None, _) => {
                    return Err(Refusal::invalid(
                        "no file descriptor: only memory shared by fd is supported",
                    ))
                }
                (Some(_), more) => {
                    return Err(Refusal::invalid(format!(
                        "{} file descriptors, one expected",
                        more + 1
                    )))
                }
            };
            dev.dma_map(m.address, m.size, file, m.offset)?;
            Ok(Vec::new())
        }
        command::DMA_UNMAP => {
            let m: DmaUnmap = exact(cmd, body)?;
            if m.flags != 0 {
                return Err(Refusal::unsupported(format!(
                    "flags {:#x}: neither dirty-page bitmaps nor unmap-all are supported",
                    m.flags
                )));
            }
            dev.dma_unmap(m.address, m.size)?;
            Ok(m.as_bytes().to_vec())
        }
        command::DEVICE_GET_INFO => {
            let _: DeviceInfo = exact(cmd, body)?;
            Ok(DeviceInfo {
                argsz: size_of::<DeviceInfo>() as u32,
                flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
                // Region indexes are 0..num_regions, and BAR0 is index 0.
                num_regions: BAR0_REGION + 1,
                num_irqs: IRQS.len() as u32,
            }
            .as_bytes()
            .to_vec())
        }
        command::DEVICE_GET_REGION_INFO => {
            let r: RegionInfo = exact(cmd, body)?;
            if r.index != BAR0_REGION {
                return Err(Refusal::invalid(format!(
                    "no region {}: the function has BAR0 ({BAR0_REGION}) only",
                    r.index
                )));
            }
            Ok(RegionInfo {
                argsz: size_of::<RegionInfo>() as u32,
                flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
                index: BAR0_REGION,
                cap_offset: 0,
                size: dev.bar_size(),
                offset: 0,
            }
            .as_bytes()
            .to_vec())
        }
        command::DEVICE_GET_IRQ_INFO => {
            let i: IrqInfo = exact(cmd, body)?;
            let count = vectors(i.index)?;
            Ok(IrqInfo {
                argsz: size_of::<IrqInfo>() as u32,
                flags: VFIO_IRQ_INFO_EVENTFD,
                index: i.index,
                count,
            }
            .as_bytes()
            .to_vec())
        }
        command::DEVICE_SET_IRQS => {
            let s: SetIrqs = exact(cmd, body)?;
            set_irqs(dev, s, fds)?;
            Ok(Vec::new())
        }
        command::REGION_READ => {
            let a: RegionAccess = exact(cmd, body)?;
            check_access(dev, &a)?;
            let mut reply = a.as_bytes().to_vec();
            let data_at = reply.len();
            reply.resize(data_at + a.count as usize, 0);
            dev.region_read(a.offset, &mut reply[data_at..]);
            Ok(reply)
        }
        command::REGION_WRITE => {
            let (a, data) = RegionAccess::read_from_prefix(body).map_err(|_| {
                Refusal::invalid(format!(
                    "a {}-byte body is shorter than REGION_WRITE's {}",
                    body.len(),
                    size_of::<RegionAccess>()
                ))
            })?;
            if data.len() != a.count as usize {
                return Err(Refusal::invalid(format!(
                    "count {} with {} bytes of data",
                    a.count,
                    data.len()
                )));
            }
            check_access(dev, &a)?;
            dev.region_write(a.offset, data);
            Ok(a.as_bytes().to_vec())
        }
        command::DEVICE_RESET => {
            if !body.is_empty() {
                return Err(Refusal::invalid(format!(
                    "a {}-byte body where DEVICE_RESET has none",
                    body.len()
                )));
            }
            dev.release();
            Ok(Vec::new())
        }
        other => Err(Refusal::unsupported(format!(
            "{} is not served by this device",
            name(other)
        ))),
    }
}

/// `VERSION`: the client's version and capabilities are checked, the server's returned. The
/// server's limits hold whatever the client's capabilities say, so they are not read.
fn version(body: &[u8]) -> Result<Vec<u8>, Refusal> {
    let (v, caps) = Version::read_from_prefix(body)
        .map_err(|_| Refusal::invalid(format!("a {}-byte body has no version", body.len())))?;
    if v.major != wire::VERSION_MAJOR {
        return Err(Refusal::unsupported(format!(
            "version {}.{}: the device speaks {}.{}",
            v.major,
            v.minor,
            wire::VERSION_MAJOR,
            wire::VERSION_MINOR
        )));
    }
    if !caps.is_empty() {
        if caps.len() > MAX_VERSION_DATA {
            return Err(Refusal::invalid(format!(
                "a {}-byte capabilities string is longer than {MAX_VERSION_DATA}",
                caps.len()
            )));
        }
        let Some((0, text)) = caps.split_last() else {
            return Err(Refusal::invalid(
                "the capabilities string is not NUL-terminated",
            ));
        };
        if text.contains(&0) || std::str::from_utf8(text).is_err() {
            return Err(Refusal::invalid(
                "the capabilities string is not one UTF-8 string",
            ));
        }
    }
    let mut reply = Version {
        major: wire::VERSION_MAJOR,
        minor: v.minor.min(wire::VERSION_MINOR),
    }
    .as_bytes()
    .to_vec();
    reply.extend_from_slice(&wire::capabilities(MSIX_VECTORS.max(1)));
    Ok(reply)
}

/// The vectors of interrupt index `index`.
fn vectors(index: u32) -> Result<u32, Refusal> {
    IRQS.iter()
        .find(|&&(i, _)| i == index)
        .map(|&(_, count)| count)
        .ok_or_else(|| Refusal::invalid(format!("no interrupt index {index}")))
}

/// `DEVICE_SET_IRQS`: MSI-X vectors wired to the eventfds that came with the message, or
/// (no data, count 0) every vector unwired, as VFIO does.
fn set_irqs(dev: &mut impl Backend, s: SetIrqs, fds: Vec<File>) -> Result<(), Refusal> {
    let vectors = vectors(s.index)?;
    if s.index != MSIX_IRQ_INDEX {
        return Err(Refusal::unsupported(format!(
            "interrupt index {}: only MSI-X is wired",
            s.index
        )));
    }
    if s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK != VFIO_IRQ_SET_ACTION_TRIGGER {
        return Err(Refusal::unsupported(format!(
            "flags {:#x}: only the trigger action is supported",
            s.flags
        )));
    }
    match s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK {
        VFIO_IRQ_SET_DATA_NONE if s.count == 0 && fds.is_empty() => {
            for vector in 0..vectors {
                dev.set_irq(vector, None)?;
            }
            Ok(())
        }
        VFIO_IRQ_SET_DATA_EVENTFD => {
            if s.start.checked_add(s.count).is_none_or(|end| end > vectors) {
                return Err(Refusal::invalid(format!(
                    "vectors {} + {}: MSI-X has {vectors}",
                    s.start, s.count
                )));
            }
            if fds.len() != s.count as usize {
                return Err(Refusal::invalid(format!(
                    "{} vectors with {} eventfds",
                    s.count,
                    fds.len()
                )));
            }
            for (vector, fd) in (s.start..).zip(fds) {
                dev.set_irq(vector, Some(fd))?;
            }
            Ok(())
        }
        _ => Err(Refusal::unsupported(format!(
            "flags {:#x} count {} with {} descriptors: only eventfds, or no data with \
             count 0 to unwire, are supported",
            s.flags,
            s.count,
            fds.len()
        ))),
    }
}

/// A region access must lie inside BAR0 and move at most [`MAX_DATA_XFER`] bytes.
fn check_access(dev: &impl Backend, a: &RegionAccess) -> Result<(), Refusal> {
    if a.region != BAR0_REGION {
        return Err(Refusal::invalid(format!(
            "no region {}: the function has BAR0 ({BAR0_REGION}) only",
            a.region
        )));
    }
    let bar = dev.bar_size();
    if a.count > MAX_DATA_XFER
        || a.offset
            .checked_add(u64::from(a.count))
            .is_none_or(|end| end > bar)
    {
        return Err(Refusal::invalid(format!(
            "[{:#x}, +{:#x}) is not inside the {bar:#x}-byte BAR0",
            a.offset, a.count
        )));
    }
    Ok(())
}

/// The fuzzers' way in: `data` is what one client sends on a connection (any bytes, cut
/// anywhere), served by a function whose BAR0 is 4 KiB of plain memory. The replies are
/// read and dropped; the server must end without panicking and hold nothing afterwards.
#[cfg(any(test, feature = "testing"))]
pub fn fuzz_messages(data: &[u8]) {
    struct Memory {
        bar: Vec<u8>,
        maps: usize,
    }
    impl Backend for Memory {
        fn log(&self, _what: &str) {}
        fn bar_size(&self) -> u64 {
            self.bar.len() as u64
        }
        fn region_read(&mut self, offset: u64, data: &mut [u8]) {
            let at = offset as usize;
            data.copy_from_slice(&self.bar[at..at + data.len()]);
        }
        fn region_write(&mut self, offset: u64, data: &[u8]) {
            let at = offset as usize;
            self.bar[at..at + data.len()].copy_from_slice(data);
        }
        fn dma_map(&mut self, _: u64, _: u64, _: File, _: u64) -> Result<(), Refusal> {
            self.maps += 1;
            Ok(())
        }
        fn dma_unmap(&mut self, _: u64, _: u64) -> Result<(), Refusal> {
            Ok(())
        }
        fn set_irq(&mut self, _: u32, _: Option<File>) -> Result<(), Refusal> {
            Ok(())
        }
        fn release(&mut self) {
            self.maps = 0;
        }
    }
    let Ok((mut server, client)) = UnixStream::pair() else {
        return;
    };
    let input = data.to_vec();
    // The client writes everything, hangs up its sending side, and drains the replies.
    let Ok(talker) = std::thread::Builder::new().spawn(move || {
        let mut c = client;
        let _ = std::io::Write::write_all(&mut c, &input);
        let _ = c.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut c, &mut sink);
    }) else {
        return;
    };
    let mut dev = Memory {
        bar: vec![0; 4096],
        maps: 0,
    };
    let _ = serve(&mut server, &mut dev);
    dev.release();
    drop(server);
    let _ = talker.join();
}
