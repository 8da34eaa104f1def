//! The system calls of the VFIO backend, behind [`VfioSys`] so that tests can fake them.
//!
//! [`RealSys`] is the kernel: paths, `open(2)`, `readlink(2)` and the VFIO ioctls of
//! `<linux/vfio.h>` (structures and constants from `vfio-bindings`). [`Mapping`] is a shared
//! `mmap(2)` of a descriptor (BAR0 through the device fd, DMA buffers through their memfd)
//! accessed with 32-bit volatile loads and stores.
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use vfio_bindings::bindings::vfio as b;
use vmm_sys_util::ioctl::{
    ioctl, ioctl_with_mut_ref, ioctl_with_ptr, ioctl_with_ref, ioctl_with_val,
};
use vmm_sys_util::ioctl_io_nr;

/// `VFIO_TYPE` of `<linux/vfio.h>`: `';'`.
const VFIO_TYPE: u32 = b';' as u32;
/// `VFIO_BASE`.
const VFIO_BASE: u32 = 100;

ioctl_io_nr!(VFIO_GET_API_VERSION, VFIO_TYPE, VFIO_BASE);
ioctl_io_nr!(VFIO_CHECK_EXTENSION, VFIO_TYPE, VFIO_BASE + 1);
ioctl_io_nr!(VFIO_SET_IOMMU, VFIO_TYPE, VFIO_BASE + 2);
ioctl_io_nr!(VFIO_GROUP_GET_STATUS, VFIO_TYPE, VFIO_BASE + 3);
ioctl_io_nr!(VFIO_GROUP_SET_CONTAINER, VFIO_TYPE, VFIO_BASE + 4);
ioctl_io_nr!(VFIO_GROUP_GET_DEVICE_FD, VFIO_TYPE, VFIO_BASE + 6);
ioctl_io_nr!(VFIO_DEVICE_GET_REGION_INFO, VFIO_TYPE, VFIO_BASE + 8);
ioctl_io_nr!(VFIO_DEVICE_GET_IRQ_INFO, VFIO_TYPE, VFIO_BASE + 9);
ioctl_io_nr!(VFIO_DEVICE_SET_IRQS, VFIO_TYPE, VFIO_BASE + 10);
ioctl_io_nr!(VFIO_IOMMU_MAP_DMA, VFIO_TYPE, VFIO_BASE + 13);
ioctl_io_nr!(VFIO_IOMMU_UNMAP_DMA, VFIO_TYPE, VFIO_BASE + 14);

/// `VFIO_API_VERSION`.
pub const API_VERSION: u32 = b::VFIO_API_VERSION;
/// The type1 IOMMU models, preferred first.
pub const TYPE1V2_IOMMU: u32 = b::VFIO_TYPE1v2_IOMMU;
pub const TYPE1_IOMMU: u32 = b::VFIO_TYPE1_IOMMU;
/// `VFIO_GROUP_FLAGS_VIABLE`.
pub const GROUP_VIABLE: u32 = b::VFIO_GROUP_FLAGS_VIABLE;
/// Region and IRQ indexes of a vfio-pci device.
pub const BAR0_REGION: u32 = b::VFIO_PCI_BAR0_REGION_INDEX;
pub const MSI_IRQ: u32 = b::VFIO_PCI_MSI_IRQ_INDEX;
pub const MSIX_IRQ: u32 = b::VFIO_PCI_MSIX_IRQ_INDEX;
/// Region flags.
pub const REGION_READ: u32 = b::VFIO_REGION_INFO_FLAG_READ;
pub const REGION_WRITE: u32 = b::VFIO_REGION_INFO_FLAG_WRITE;
pub const REGION_MMAP: u32 = b::VFIO_REGION_INFO_FLAG_MMAP;

/// `struct vfio_region_info`, the parts the backend uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    pub flags: u32,
    pub size: u64,
    /// Offset of the region in the device fd (for `mmap`, `pread`).
    pub offset: u64,
}

/// `struct vfio_irq_info`, the parts the backend uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IrqInfo {
    pub flags: u32,
    /// Vectors of this index.
    pub count: u32,
}

/// What the VFIO backend asks of the kernel. Every method is one system call.
pub trait VfioSys: Send + Sync {
    /// Whether `path` exists (`stat(2)`).
    fn exists(&self, path: &Path) -> bool;
    /// `readlink(2)`.
    fn readlink(&self, path: &Path) -> io::Result<PathBuf>;
    /// `open(2)` read-write, close-on-exec.
    fn open(&self, path: &Path) -> io::Result<OwnedFd>;
    /// `VFIO_GET_API_VERSION` on the container.
    fn api_version(&self, container: BorrowedFd<'_>) -> io::Result<u32>;
    /// `VFIO_CHECK_EXTENSION` on the container.
    fn check_extension(&self, container: BorrowedFd<'_>, extension: u32) -> io::Result<bool>;
    /// `VFIO_GROUP_GET_STATUS`: the group's flags.
    fn group_status(&self, group: BorrowedFd<'_>) -> io::Result<u32>;
    /// `VFIO_GROUP_SET_CONTAINER`.
    fn group_set_container(
        &self,
        group: BorrowedFd<'_>,
        container: BorrowedFd<'_>,
    ) -> io::Result<()>;
    /// `VFIO_SET_IOMMU` on the container.
    fn set_iommu(&self, container: BorrowedFd<'_>, iommu: u32) -> io::Result<()>;
    /// `VFIO_GROUP_GET_DEVICE_FD` for the device named `bdf`.
    fn group_device_fd(&self, group: BorrowedFd<'_>, bdf: &str) -> io::Result<OwnedFd>;
    /// `VFIO_DEVICE_GET_REGION_INFO`.
    fn region_info(&self, device: BorrowedFd<'_>, index: u32) -> io::Result<RegionInfo>;
    /// `VFIO_DEVICE_GET_IRQ_INFO`.
    fn irq_info(&self, device: BorrowedFd<'_>, index: u32) -> io::Result<IrqInfo>;
    /// `VFIO_DEVICE_SET_IRQS` with `ACTION_TRIGGER`: eventfds (-1: none) for vectors
    /// `start..start + fds.len()` of `index`, or with no fds (`DATA_NONE`, count 0) all
    /// vectors of `index` disabled.
    fn set_irqs(
        &self,
        device: BorrowedFd<'_>,
        index: u32,
        start: u32,
        fds: &[i32],
    ) -> io::Result<()>;
    /// `VFIO_IOMMU_MAP_DMA`, readable and writable by the device.
    fn dma_map(
        &self,
        container: BorrowedFd<'_>,
        iova: u64,
        size: u64,
        vaddr: u64,
    ) -> io::Result<()>;
    /// `VFIO_IOMMU_UNMAP_DMA`.
    fn dma_unmap(&self, container: BorrowedFd<'_>, iova: u64, size: u64) -> io::Result<()>;
    /// A shared read-write `mmap(2)` of `len` bytes of `fd` at `offset`.
    fn mmap(&self, fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Mapping> {
        Mapping::map(fd, offset, len)
    }
}

/// A shared mapping of a descriptor, unmapped on drop. Only ever accessed through raw
/// pointers with volatile 32-bit loads and stores (no references into it are made).
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory (device registers or a memfd); every access is
// a single volatile load or store through a raw pointer, which is sound from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; no method hands out references into the mapping.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` at `offset` (a multiple of the page size), shared, read-write.
    pub fn map(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Mapping> {
        if len == 0 || !offset.is_multiple_of(4096) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot map {len} bytes at offset {offset:#x} (must be non-empty and page aligned)"),
            ));
        }
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: a new mapping at an address the kernel picks; it aliases no Rust object.
        // The result is checked for MAP_FAILED before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mapping { ptr, len })
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never: [`Mapping::map`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The host address of byte 0, for `VFIO_IOMMU_MAP_DMA`.
    pub fn addr(&self) -> u64 {
        self.ptr.as_ptr() as u64
    }

    fn word(&self, offset: usize) -> Option<*mut u32> {
        if !offset.is_multiple_of(4) || offset.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: `offset + 4 <= len`, so the result stays inside the mapping.
        Some(unsafe { self.ptr.as_ptr().add(offset) }.cast::<u32>())
    }

    /// The 32-bit word at byte `offset` (aligned, in bounds), or `None`.
    pub fn read32(&self, offset: usize) -> Option<u32> {
        let p = self.word(offset)?;
        // SAFETY: `p` is 4-byte aligned (the mapping is page aligned and `offset` a multiple
        // of 4) and inside the live mapping; device memory needs a volatile access.
        Some(unsafe { p.read_volatile() })
    }

    /// Writes the 32-bit word at byte `offset`; false if misaligned or out of bounds.
    pub fn write32(&self, offset: usize, value: u32) -> bool {
        let Some(p) = self.word(offset) else {
            return false;
        };
        // SAFETY: as in `read32`; the mapping is writable (PROT_WRITE).
        unsafe { p.write_volatile(value) };
        true
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly a mapping made by `Mapping::map`, unmapped once here.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The kernel.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealSys;

/// A negative ioctl result as the errno it set.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn argsz<T>() -> u32 {
    std::mem::size_of::<T>() as u32
}

impl VfioSys for RealSys {
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn readlink(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn open(&self, path: &Path) -> io::Result<OwnedFd> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(file.into())
    }

    fn api_version(&self, container: BorrowedFd<'_>) -> io::Result<u32> {
        // SAFETY: VFIO_GET_API_VERSION takes no argument and only returns a number.
        check(unsafe { ioctl(&container, VFIO_GET_API_VERSION()) }).map(|v| v as u32)
    }

    fn check_extension(&self, container: BorrowedFd<'_>, extension: u32) -> io::Result<bool> {
        // SAFETY: VFIO_CHECK_EXTENSION takes the extension number by value and returns 0/1.
        let ret = check(unsafe {
            ioctl_with_val(
                &container,
                VFIO_CHECK_EXTENSION(),
                libc::c_ulong::from(extension),
            )
        })?;
        Ok(ret > 0)
    }

    fn group_status(&self, group: BorrowedFd<'_>) -> io::Result<u32> {
        let mut status = b::vfio_group_status {
            argsz: argsz::<b::vfio_group_status>(),
            flags: 0,
        };
        // SAFETY: the kernel writes at most `argsz` bytes into `status`, which outlives the call.
        check(unsafe { ioctl_with_mut_ref(&group, VFIO_GROUP_GET_STATUS(), &mut status) })?;
        Ok(status.flags)
    }

    fn group_set_container(
        &self,
        group: BorrowedFd<'_>,
        container: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let fd: libc::c_int = container.as_raw_fd();
        // SAFETY: the kernel reads one int (the container fd) from `fd`, which outlives the call.
        check(unsafe { ioctl_with_ref(&group, VFIO_GROUP_SET_CONTAINER(), &fd) }).map(drop)
    }

    fn set_iommu(&self, container: BorrowedFd<'_>, iommu: u32) -> io::Result<()> {
        // SAFETY: VFIO_SET_IOMMU takes the IOMMU model by value.
        check(unsafe { ioctl_with_val(&container, VFIO_SET_IOMMU(), libc::c_ulong::from(iommu)) })
            .map(drop)
    }

    fn group_device_fd(&self, group: BorrowedFd<'_>, bdf: &str) -> io::Result<OwnedFd> {
        let name = CString::new(bdf)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in device name"))?;
        // SAFETY: the kernel reads the NUL-terminated name, which outlives the call, and
        // returns a new descriptor or -1.
        let fd =
            check(unsafe { ioctl_with_ptr(&group, VFIO_GROUP_GET_DEVICE_FD(), name.as_ptr()) })?;
        // SAFETY: `fd` is a new descriptor nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn region_info(&self, device: BorrowedFd<'_>, index: u32) -> io::Result<RegionInfo> {
        let mut info = b::vfio_region_info {
            argsz: argsz::<b::vfio_region_info>(),
            flags: 0,
            index,
            cap_offset: 0,
            size: 0,
            offset: 0,
        };
        // SAFETY: the kernel writes at most `argsz` bytes into `info`, which outlives the call
        // (capabilities beyond `argsz` are not written; `argsz` then reports their size).
        check(unsafe { ioctl_with_mut_ref(&device, VFIO_DEVICE_GET_REGION_INFO(), &mut info) })?;
        Ok(RegionInfo {
            flags: info.flags,
            size: info.size,
            offset: info.offset,
        })
    }

    fn irq_info(&self, device: BorrowedFd<'_>, index: u32) -> io::Result<IrqInfo> {
        let mut info = b::vfio_irq_info {
            argsz: argsz::<b::vfio_irq_info>(),
            flags: 0,
            index,
            count: 0,
        };
        // SAFETY: the kernel writes at most `argsz` bytes into `info`, which outlives the call.
        check(unsafe { ioctl_with_mut_ref(&device, VFIO_DEVICE_GET_IRQ_INFO(), &mut info) })?;
        Ok(IrqInfo {
            flags: info.flags,
            count: info.count,
        })
    }

    fn set_irqs(
        &self,
        device: BorrowedFd<'_>,
        index: u32,
        start: u32,
        fds: &[i32],
    ) -> io::Result<()> {
        // struct vfio_irq_set (5 u32s) followed by the eventfds as an s32 array.
        let header = argsz::<b::vfio_irq_set>() as usize / 4;
        let mut buf = vec![0u32; header + fds.len()];
        let (flags, count) = if fds.is_empty() {
            (
                b::VFIO_IRQ_SET_DATA_NONE | b::VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
            )
        } else {
            (
                b::VFIO_IRQ_SET_DATA_EVENTFD | b::VFIO_IRQ_SET_ACTION_TRIGGER,
                fds.len() as u32,
            )
        };
        let total = (buf.len() * 4) as u32;
        buf[..header].copy_from_slice(&[total, flags, index, start, count]);
        for (slot, fd) in buf[header..].iter_mut().zip(fds) {
            *slot = *fd as u32;
        }
        // SAFETY: `buf` is a vfio_irq_set whose `argsz` covers the header and the `count`
        // descriptors that follow it; the kernel only reads it, and it outlives the call.
        check(unsafe { ioctl_with_ptr(&device, VFIO_DEVICE_SET_IRQS(), buf.as_ptr()) }).map(drop)
    }

    fn dma_map(
        &self,
        container: BorrowedFd<'_>,
        iova: u64,
        size: u64,
        vaddr: u64,
    ) -> io::Result<()> {
        let map = b::vfio_iommu_type1_dma_map {
            argsz: argsz::<b::vfio_iommu_type1_dma_map>(),
            flags: b::VFIO_DMA_MAP_FLAG_READ | b::VFIO_DMA_MAP_FLAG_WRITE,
            vaddr,
            iova,
            size,
        };
        // SAFETY: the kernel reads `map`, which outlives the call; `vaddr..vaddr + size` is a
        // mapping the caller keeps alive until it unmaps the IOVA range.
        check(unsafe { ioctl_with_ref(&container, VFIO_IOMMU_MAP_DMA(), &map) }).map(drop)
    }

    fn dma_unmap(&self, container: BorrowedFd<'_>, iova: u64, size: u64) -> io::Result<()> {
        let mut unmap = b::vfio_iommu_type1_dma_unmap {
            argsz: argsz::<b::vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size,
            data: Default::default(),
        };
        // SAFETY: the kernel reads `unmap` and writes back the unmapped size into it; it
        // outlives the call.
        check(unsafe { ioctl_with_mut_ref(&container, VFIO_IOMMU_UNMAP_DMA(), &mut unmap) })
            .map(drop)
    }
}
