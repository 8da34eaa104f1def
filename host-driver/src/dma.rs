//! Host memory the device reaches by DMA.
//!
//! A [`DmaMemory`] is a memfd (so a backend can hand the same pages to a device model in
//! another thread or process, or pin them for VFIO) mapped into the driver with vm-memory,
//! which makes every access bounds-checked and volatile. It has an IOVA, the address the
//! device uses for it, handed out by the driver's [`IovaAllocator`].
use crate::error::{DriverError, Result};
use std::ffi::CStr;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vm_memory::{
    AtomicAccess, Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap,
    GuestRegionMmap,
};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Page size DMA buffers are rounded up to and aligned on.
pub const PAGE_SIZE: u64 = 4096;

/// A DMA buffer: host memory with an IOVA.
pub struct DmaMemory {
    iova: u64,
    size: u64,
    file: Arc<File>,
    mem: GuestMemoryMmap,
}

impl std::fmt::Debug for DmaMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DmaMemory")
            .field("iova", &format_args!("{:#x}", self.iova))
            .field("size", &format_args!("{:#x}", self.size))
            .finish()
    }
}

fn memfd(name: &CStr, size: u64) -> std::io::Result<File> {
    // SAFETY: `name` is a valid NUL-terminated string; memfd_create has no other inputs and
    // returns a new descriptor or -1.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    file.set_len(size)?;
    // A device that maps the buffer in another process (nic-sim over vfio-user) would take
    // SIGBUS on pages cut off under its mapping, so it maps only a memfd sealed against
    // shrinking.
    // SAFETY: F_ADD_SEALS takes an int argument and touches no memory of ours; `file` owns
    // the descriptor for the length of the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(file)
}

impl DmaMemory {
    /// Zeroed memory of `size` bytes (rounded up to a page) that the device will see at
    /// `iova`. The memory is not yet mapped for the device: see
    /// [`crate::device::Device::dma_map`].
    pub fn new(iova: u64, size: u64) -> Result<Self> {
        let size = size
            .max(1)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(DriverError::IovaExhausted { size })?;
        let alloc_err = |source| DriverError::DmaAlloc { size, source };
        let file = Arc::new(memfd(c"vpcnic-dma", size).map_err(alloc_err)?);
        let len = usize::try_from(size).map_err(|_| {
            alloc_err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "size too large",
            ))
        })?;
        let region = GuestRegionMmap::from_range(
            GuestAddress(0),
            len,
            Some(FileOffset::from_arc(file.clone(), 0)),
        )
        .map_err(|e| alloc_err(std::io::Error::other(e.to_string())))?;
        let mem = GuestMemoryMmap::from_regions(vec![region])
            .map_err(|e| alloc_err(std::io::Error::other(e.to_string())))?;
        Ok(DmaMemory {
            iova,
            size,
            file,
            mem,
        })
    }

    /// The device address of byte 0.
    pub fn iova(&self) -> u64 {
        self.iova
    }

    /// Size in bytes (a multiple of [`PAGE_SIZE`]).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memfd behind the buffer, at file offset 0, for backends that map it.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Byte 0 in this process: vm-memory's shared mapping of the memfd, which VFIO pins
    /// for the device. Reach the memory through it only with raw volatile accesses or
    /// system calls: the device writes it at any time.
    pub fn host_ptr(&self) -> Result<*mut u8> {
        self.mem
            .get_host_address(GuestAddress(0))
            .map_err(|_| self.internal(0, 1))
    }

    fn check(&self, offset: u64, len: usize) -> Result<GuestAddress> {
        let len = len as u64;
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(GuestAddress(offset)),
            _ => Err(DriverError::DmaBounds {
                offset,
                len,
                size: self.size,
            }),
        }
    }

    /// vm-memory's own bounds error; `check` runs first, so this is not expected.
    fn internal(&self, offset: u64, len: usize) -> DriverError {
        DriverError::DmaBounds {
            offset,
            len: len as u64,
            size: self.size,
        }
    }

    /// Copies `buf` into the buffer at `offset`.
    pub fn write(&self, offset: u64, buf: &[u8]) -> Result<()> {
        let addr = self.check(offset, buf.len())?;
        self.mem
            .write_slice(buf, addr)
            .map_err(|_| self.internal(offset, buf.len()))
    }

    /// Fills `buf` from the buffer at `offset`.
    pub fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let addr = self.check(offset, buf.len())?;
        self.mem
            .read_slice(buf, addr)
            .map_err(|_| self.internal(offset, buf.len()))
    }

    /// Writes a layout of shared-regs at `offset`.
    pub fn write_obj<T: IntoBytes + Immutable>(&self, offset: u64, val: &T) -> Result<()> {
        self.write(offset, val.as_bytes())
    }

    /// Reads a layout of shared-regs from `offset`.
    pub fn read_obj<T: FromBytes + IntoBytes>(&self, offset: u64) -> Result<T> {
        let mut val = T::new_zeroed();
        self.read(offset, val.as_mut_bytes())?;
        Ok(val)
    }

    /// Fills `len` bytes at `offset` with zero.
    pub fn zero(&self, offset: u64, len: usize) -> Result<()> {
        self.check(offset, len)?;
        let zeros = [0u8; 256];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(zeros.len());
            self.write(offset + done as u64, &zeros[..n])?;
            done += n;
        }
        Ok(())
    }

    /// An atomic load of a naturally aligned value (used to observe a flag the device
    /// writes last). `Acquire` ordering: what the device wrote before it is visible after.
    pub fn load<T: AtomicAccess>(&self, offset: u64) -> Result<T> {
        let len = std::mem::size_of::<T>();
        let addr = self.check(offset, len)?;
        self.mem
            .load(addr, Ordering::Acquire)
            .map_err(|_| self.internal(offset, len))
    }

    /// An atomic store with `Release` ordering: what was written before is visible to the
    /// device once it sees this value.
    pub fn store<T: AtomicAccess>(&self, offset: u64, val: T) -> Result<()> {
        let len = std::mem::size_of::<T>();
        let addr = self.check(offset, len)?;
        self.mem
            .store(val, addr, Ordering::Release)
            .map_err(|_| self.internal(offset, len))
    }
}

/// Hands out device addresses for DMA buffers: page-aligned, never overlapping, never
/// reused (the driver allocates a handful of long-lived buffers).
#[derive(Debug)]
pub struct IovaAllocator {
    next: u64,
    end: u64,
}

/// Where the driver's IOVAs start: away from 0 so that a zeroed address register never
/// names a valid buffer.
pub const IOVA_BASE: u64 = 0x1_0000_0000;
/// Size of the driver's IOVA window.
pub const IOVA_WINDOW: u64 = 0x1_0000_0000;

impl Default for IovaAllocator {
    fn default() -> Self {
        IovaAllocator::new(IOVA_BASE, IOVA_WINDOW)
    }
}

impl IovaAllocator {
    /// An allocator for `[base, base + size)`; `base` is rounded up to a page.
    pub fn new(base: u64, size: u64) -> Self {
        let next = base.next_multiple_of(PAGE_SIZE);
        IovaAllocator {
            next,
            end: base.saturating_add(size),
        }
    }

    /// Reserves `size` bytes (rounded up to a page) and returns their IOVA.
    pub fn alloc(&mut self, size: u64) -> Result<u64> {
        let rounded = size
            .max(1)
            .checked_next_multiple_of(PAGE_SIZE)
            .ok_or(DriverError::IovaExhausted { size })?;
        let iova = self.next;
        let end = iova
            .checked_add(rounded)
            .filter(|&e| e <= self.end)
            .ok_or(DriverError::IovaExhausted { size })?;
        self.next = end;
        Ok(iova)
    }

    /// A new zeroed buffer of `size` bytes at a fresh IOVA.
    pub fn alloc_memory(&mut self, size: u64) -> Result<DmaMemory> {
        let iova = self.alloc(size)?;
        DmaMemory::new(iova, size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_regs::admin::{AdminCmd, Opcode};
    use shared_regs::entry::IdParam;

    #[test]
    fn size_rounds_up_to_a_page_and_memory_is_zeroed() {
        let m = DmaMemory::new(0x1000, 100).unwrap();
        assert_eq!(m.size(), PAGE_SIZE);
        assert_eq!(m.iova(), 0x1000);
        let mut buf = [0xffu8; 16];
        m.read(PAGE_SIZE - 16, &mut buf).unwrap();
        assert_eq!(buf, [0; 16]);
        assert_eq!(m.file().metadata().unwrap().len(), PAGE_SIZE);
    }

    #[test]
    fn reads_and_writes_are_bounds_checked() {
        let m = DmaMemory::new(0, PAGE_SIZE).unwrap();
        m.write(PAGE_SIZE - 4, &[1, 2, 3, 4]).unwrap();
        let err = m.write(PAGE_SIZE - 3, &[1, 2, 3, 4]).unwrap_err();
        assert!(
            matches!(err, DriverError::DmaBounds { offset, len: 4, size } if offset == PAGE_SIZE - 3 && size == PAGE_SIZE),
            "{err:?}"
        );
        assert!(err.to_string().contains("out of bounds"), "{err}");
        let mut b = [0u8; 2];
        assert!(m.read(u64::MAX, &mut b).is_err());
        assert!(m.read(PAGE_SIZE, &mut b).is_err());
        assert!(m.load::<u16>(PAGE_SIZE - 1).is_err());
        assert!(m.zero(PAGE_SIZE - 8, 9).is_err());
        m.read(PAGE_SIZE - 2, &mut b).unwrap();
        assert_eq!(b, [3, 4]);
    }

    #[test]
    fn objects_round_trip_and_are_seen_through_the_file() {
        use std::os::unix::fs::FileExt;
        let m = DmaMemory::new(0, PAGE_SIZE).unwrap();
        let cmd = AdminCmd::new(Opcode::VpcDel, &IdParam { id: 7.into() });
        m.write_obj(64, &cmd).unwrap();
        let back: AdminCmd = m.read_obj(64).unwrap();
        assert_eq!(back.opcode.get(), Opcode::VpcDel as u16);
        assert_eq!(back.params[0], 7);
        // Another mapping of the memfd (what a device model does) sees the same bytes.
        let mut raw = [0u8; 2];
        m.file().read_exact_at(&mut raw, 64).unwrap();
        assert_eq!(u16::from_le_bytes(raw), Opcode::VpcDel as u16);
        m.file().write_all_at(&0x8000u16.to_le_bytes(), 66).unwrap();
        assert_eq!(m.load::<u16>(66).unwrap(), 0x8000);
        m.zero(64, 64).unwrap();
        assert_eq!(m.load::<u16>(64).unwrap(), 0);
    }

    #[test]
    fn iova_allocator_hands_out_disjoint_aligned_ranges() {
        let mut a = IovaAllocator::new(0x1001, 4 * PAGE_SIZE);
        let x = a.alloc(1).unwrap();
        let y = a.alloc(PAGE_SIZE + 1).unwrap();
        assert_eq!(x, 0x2000);
        assert_eq!(y, 0x3000);
        assert!(matches!(
            a.alloc(PAGE_SIZE),
            Err(DriverError::IovaExhausted { .. })
        ));
        assert!(a.alloc(u64::MAX).is_err());
    }
}
