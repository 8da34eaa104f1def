//! TAP devices: the kernel end of a VM's `eth0`. Frames the VM's stack sends are read here
//! and put on the VF's TX ring; frames the VF receives are written here.
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const TUNSETVNETHDRSZ: libc::c_ulong = 0x4004_54d8;
const TUNSETVNETLE: libc::c_ulong = 0x4004_54dc;
/// `TUNSETOFFLOAD` bits: what this reader of the TAP takes from the kernel: frames with
/// their checksum left partial, TCP/IPv4 super-frames, and those with ECN's CWR.
const TUN_F_CSUM: libc::c_ulong = 0x01;
const TUN_F_TSO4: libc::c_ulong = 0x02;
const TUN_F_TSO_ECN: libc::c_ulong = 0x08;

/// `struct ifreq` as TUNSETIFF reads it: a name and the flags.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TAP device.
#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
    /// Every frame read or written starts with a virtio-net header ([`super::vnet`]).
    vnet: bool,
}

impl Tap {
    /// Creates TAP device `name` (at most 15 bytes) in the current network namespace,
    /// non-blocking, without packet information headers.
    pub fn create(name: &str) -> io::Result<Tap> {
        Tap::open(name, false)
    }

    /// [`Tap::create`] for a VM's `eth0` behind a VF with offloads: every frame carries a
    /// virtio-net header, and the kernel hands over TCP super-frames and frames whose
    /// checksum it left to the device, as it does to a virtio-net NIC.
    pub fn create_with_offloads(name: &str) -> io::Result<Tap> {
        Tap::open(name, true)
    }

    fn open(name: &str, vnet: bool) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TAP name {name:?} must be 1 to 15 bytes"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/net/tun")
            .map_err(|e| io::Error::new(e.kind(), format!("opening /dev/net/tun: {e}")))?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI | if vnet { IFF_VNET_HDR } else { 0 },
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `IfReq` lays out (name,
        // flags, padding to its 40 bytes); `req` lives across the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req as *mut IfReq) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("creating TAP {name}: {e}"),
            ));
        }
        let tap = Tap {
            file,
            name: name.to_string(),
            vnet,
        };
        if vnet {
            tap.offload()
                .map_err(|e| io::Error::new(e.kind(), format!("TAP {name} offloads: {e}")))?;
        }
        Ok(tap)
    }

    /// Sets the virtio-net header's size and byte order (little-endian, as virtio 1.0 and
    /// [`super::vnet::VnetHdr`] have it, on any host) and the offloads this reader takes.
    fn offload(&self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        let size = super::vnet::VNET_HDR_LEN as libc::c_int;
        let little_endian: libc::c_int = 1;
        for (request, value) in [(TUNSETVNETHDRSZ, &size), (TUNSETVNETLE, &little_endian)] {
            // SAFETY: both requests read one int through the pointer; `value` outlives the
            // call.
            if unsafe { libc::ioctl(fd, request, value as *const libc::c_int) } < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        self.set_tso(true)
    }

    /// Offers the VM's kernel TCP segmentation (with a TAP made by
    /// [`Tap::create_with_offloads`]), or takes it back: a VF that does not segment (an
    /// older firmware) gets segments from the VM's own kernel. Checksums stay offered: the
    /// bridge completes those the VF cannot.
    pub fn set_tso(&self, tso: bool) -> io::Result<()> {
        if !self.vnet {
            return Ok(());
        }
        let flags = TUN_F_CSUM | if tso { TUN_F_TSO4 | TUN_F_TSO_ECN } else { 0 };
        // SAFETY: TUNSETOFFLOAD takes its flags by value, no pointer.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), TUNSETOFFLOAD, flags) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// True when frames carry a virtio-net header.
    pub fn vnet(&self) -> bool {
        self.vnet
    }

    /// The device's name when it was created.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads one frame (with its virtio-net header if [`Tap::vnet`]); `WouldBlock` when
    /// none is waiting.
    pub fn read_frame(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.file).read(buf)
    }

    /// Reads one frame into `head` and then `rest` (a virtio-net header and the frame, read
    /// straight into a VF's buffer); the bytes read, or `WouldBlock` when none is waiting.
    pub fn read_parts(&self, head: &mut [u8], rest: &mut [u8]) -> io::Result<usize> {
        let mut iov = [io::IoSliceMut::new(head), io::IoSliceMut::new(rest)];
        (&self.file).read_vectored(&mut iov)
    }

    /// Writes one frame made of `head` and then `rest`, in one `writev`.
    pub fn write_parts(&self, head: &[u8], rest: &[u8]) -> io::Result<()> {
        let iov = [io::IoSlice::new(head), io::IoSlice::new(rest)];
        (&self.file).write_vectored(&iov).map(|_| ())
    }

    /// Writes one frame (with its virtio-net header if [`Tap::vnet`]).
    pub fn write_frame(&self, frame: &[u8]) -> io::Result<()> {
        (&self.file).write(frame).map(|_| ())
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

impl std::os::fd::AsFd for Tap {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.file.as_fd()
    }
}

const _: () = assert!(std::mem::size_of::<IfReq>() == 40);

/// A device name unique on this machine while this process runs: `prefix` (two bytes),
/// the pid and a counter in hex, at most 15 bytes. Devices made under it are renamed once
/// they are in their own namespace.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    // pid_max is at most 2^22 (6 hex digits); 2 + 6 + 1 + 6 = 15.
    format!("{prefix}{:x}x{:x}", std::process::id(), n & 0x00ff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ethtool -k`'s line for `feature` of device `name`: "on" or "off".
    fn feature(name: &str, feature: &str) -> String {
        let out = std::process::Command::new("ethtool")
            .args(["-k", name])
            .output()
            .expect("ethtool");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{feature}: ")))
            .unwrap_or_else(|| panic!("no {feature} in ethtool -k {name}: {text}"))
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }

    #[test]
    #[cfg_attr(
        not_root,
        ignore = "needs root: creates a TAP device (CI runs it as root)"
    )]
    fn a_vm_tap_offers_tso_and_checksums_until_its_vf_cannot_segment() {
        // The TAP lives while the file is open and has no address: nothing is sent.
        let name = unique_name("vt");
        let tap = Tap::create_with_offloads(&name).unwrap();
        assert!(tap.vnet());
        assert_eq!(feature(&name, "tcp-segmentation-offload"), "on");
        assert_eq!(feature(&name, "tx-checksumming"), "on");
        tap.set_tso(false).unwrap();
        assert_eq!(feature(&name, "tcp-segmentation-offload"), "off");
        assert_eq!(feature(&name, "tx-checksumming"), "on");
        tap.set_tso(true).unwrap();
        assert_eq!(feature(&name, "tcp-segmentation-offload"), "on");

        let plain = unique_name("vt");
        let tap = Tap::create(&plain).unwrap();
        assert!(!tap.vnet());
        assert_eq!(feature(&plain, "tcp-segmentation-offload"), "off");
    }
}
