//! What the VFIO backend asks of the kernel, behind [`VfioSys`] so that tests can fake it.
//!
//! [`RealSys`] is the kernel: sysfs lookups and an `open(2)` probe of the VFIO files (so a
//! missing driver, group or permission gets a message naming it), then VFIO itself through
//! rust-vmm's `vfio-ioctls` (no hypervisor features, so no KVM): a `VfioContainer` on
//! `/dev/vfio/vfio` with the type1v2 IOMMU, and a `VfioDevice` opened from the PF's sysfs
//! directory (its IOMMU group, the device fd, region and IRQ info). [`Mapping`] is a shared
//! `mmap(2)` of a descriptor (BAR0 through the device fd, DMA buffers through their memfd)
//! accessed with 32-bit volatile loads and stores.
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;
use vfio_bindings::bindings::vfio as b;
pub use vfio_ioctls::VfioError;
use vfio_ioctls::{VfioContainer, VfioDevice, VfioOps};
use vmm_sys_util::eventfd::EventFd;

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

/// Why a function could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Vfio(#[from] VfioError),
    #[error("cannot name the device with its VF token through {}: {source}", .path.display())]
    Alias {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What the VFIO backend asks of the kernel.
pub trait VfioSys: Send + Sync {
    /// Whether `path` exists (`stat(2)`).
    fn exists(&self, path: &Path) -> bool;
    /// `readlink(2)`.
    fn readlink(&self, path: &Path) -> io::Result<PathBuf>;
    /// `open(2)` read-write and close again: whether `path` can be opened, before
    /// vfio-ioctls opens it and would say only that it could not.
    fn probe_open(&self, path: &Path) -> io::Result<()>;
    /// The VF token kept for the PF at `bdf` (see [`crate::vf_token`]), if any.
    fn vf_token(&self, bdf: &str) -> io::Result<Option<String>>;
    /// A new container with the function at `sysfs` (`/sys/bus/pci/devices/<BDF>`) in it:
    /// `VfioContainer::new` then `VfioDevice::new`, the device named `"<BDF> vf_token=<uuid>"`
    /// when a token is given.
    fn open_device(
        &self,
        sysfs: &Path,
        vf_token: Option<&str>,
    ) -> Result<Box<dyn VfioFunction>, OpenError>;
    /// A shared read-write `mmap(2)` of `len` bytes of `fd` at `offset`.
    fn mmap(&self, fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Mapping> {
        Mapping::map(fd, offset, len)
    }
}

/// An opened function and the container (IOMMU domain) it is in.
pub trait VfioFunction: Send + Sync {
    /// The device fd, which regions are mapped through.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Region `index` as `VFIO_DEVICE_GET_REGION_INFO` reported it at open (size 0: none).
    fn region(&self, index: u32) -> RegionInfo;
    /// Vectors of interrupt `index` (0: none).
    fn irq_count(&self, index: u32) -> u32;
    /// `VFIO_IOMMU_MAP_DMA` of `size` bytes at `vaddr` to `iova`, readable and writable by
    /// the device.
    ///
    /// # Safety
    /// Until `dma_unmap` of the same range, or `munmap` of `vaddr..vaddr + size`, the memory
    /// may only be reached through raw pointers with volatile accesses: the device writes it
    /// at any time.
    unsafe fn dma_map(&self, iova: u64, size: usize, vaddr: *mut u8) -> Result<(), VfioError>;
    /// `VFIO_IOMMU_UNMAP_DMA`.
    fn dma_unmap(&self, iova: u64, size: usize) -> Result<(), VfioError>;
    /// `VFIO_DEVICE_SET_IRQS` (`DATA_EVENTFD | ACTION_TRIGGER`): vectors `0..fds.len()` of
    /// `index` signal `fds`.
    fn enable_irq(&self, index: u32, fds: &[&EventFd]) -> Result<(), VfioError>;
    /// `VFIO_DEVICE_SET_IRQS` (`DATA_NONE | ACTION_TRIGGER`, count 0): `index` disabled.
    fn disable_irq(&self, index: u32) -> Result<(), VfioError>;
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

impl VfioSys for RealSys {
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn readlink(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn probe_open(&self, path: &Path) -> io::Result<()> {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map(drop)
    }

    fn vf_token(&self, bdf: &str) -> io::Result<Option<String>> {
        crate::vf_token::VfTokens::default().get(bdf)
    }

    fn open_device(
        &self,
        sysfs: &Path,
        vf_token: Option<&str>,
    ) -> Result<Box<dyn VfioFunction>, OpenError> {
        let alias = match vf_token {
            Some(token) => Some(TokenAlias::new(Path::new(ALIAS_DIR), sysfs, token).map_err(
                |source| OpenError::Alias {
                    path: PathBuf::from(ALIAS_DIR),
                    source,
                },
            )?),
            None => None,
        };
        let path = alias.as_ref().map_or(sysfs, |a| a.path());
        let container = Arc::new(VfioContainer::new(None)?);
        let device = VfioDevice::new(path, container.clone() as Arc<dyn VfioOps>, false)?;
        Ok(Box::new(RealFunction {
            device,
            container,
            _alias: alias,
        }))
    }
}

/// Where [`TokenAlias`]es are made.
const ALIAS_DIR: &str = "/run/vpcnic/vfio-alias";

/// vfio-ioctls names the device by the last component of the sysfs path it is given and
/// finds the IOMMU group through that path's `iommu_group` link. To name the device
/// `"<BDF> vf_token=<uuid>"`, as the kernel wants once VFs are in use, it is given a
/// directory of that name holding only a link to the function's IOMMU group. vfio-ioctls
/// reads the link again when the device is dropped, so the alias lives as long as it.
pub(crate) struct TokenAlias {
    /// `<ALIAS_DIR>/<pid>-<n>`, removed on drop.
    dir: PathBuf,
    path: PathBuf,
}

impl TokenAlias {
    pub(crate) fn new(base: &Path, sysfs: &Path, token: &str) -> io::Result<TokenAlias> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let bdf = sysfs
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no PCI address"))?;
        let group = std::fs::canonicalize(sysfs.join("iommu_group"))?;
        let dir = base.join(format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let path = dir.join(format!("{bdf} vf_token={token}"));
        std::fs::create_dir_all(&path)?;
        let alias = TokenAlias { dir, path };
        std::os::unix::fs::symlink(group, alias.path.join("iommu_group"))?;
        Ok(alias)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TokenAlias {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A function opened by vfio-ioctls. Fields drop in order: the device (which reads the
/// alias) before the container and the alias.
struct RealFunction {
    device: VfioDevice,
    container: Arc<VfioContainer>,
    _alias: Option<TokenAlias>,
}

impl VfioFunction for RealFunction {
    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the descriptor is the device's, open for as long as `self.device` lives,
        // which outlives the borrow.
        unsafe { BorrowedFd::borrow_raw(self.device.as_raw_fd()) }
    }

    fn region(&self, index: u32) -> RegionInfo {
        RegionInfo {
            flags: self.device.get_region_flags(index),
            size: self.device.get_region_size(index),
            offset: self.device.get_region_offset(index),
        }
    }

    fn irq_count(&self, index: u32) -> u32 {
        self.device.get_irq_info(index).map_or(0, |irq| irq.count)
    }

    unsafe fn dma_map(&self, iova: u64, size: usize, vaddr: *mut u8) -> Result<(), VfioError> {
        // SAFETY: the caller keeps to the contract of `VfioFunction::dma_map`, which is
        // vfio-ioctls'.
        unsafe { self.container.vfio_dma_map(iova, size, vaddr) }
    }

    fn dma_unmap(&self, iova: u64, size: usize) -> Result<(), VfioError> {
        self.container.vfio_dma_unmap(iova, size)
    }

    fn enable_irq(&self, index: u32, fds: &[&EventFd]) -> Result<(), VfioError> {
        self.device.enable_irq(index, fds.to_vec())
    }

    fn disable_irq(&self, index: u32) -> Result<(), VfioError> {
        self.device.disable_irq(index)
    }
}
