//! A vpcnic PF bound to vfio-pci: `nicctl --device vfio:0000:03:00.0`.
//!
//! Opening checks each thing VFIO needs and names the first one missing: the PCI function in
//! sysfs, its IOMMU group (the `/sys/bus/pci/devices/<BDF>/iommu_group` link), the container
//! `/dev/vfio/vfio` and the group file `/dev/vfio/<N>` (which exists only while every device
//! of the group is bound to vfio-pci). Then rust-vmm's vfio-ioctls opens the container (API
//! version, type1v2 IOMMU), attaches the group and gets the device fd with its region and IRQ
//! info. BAR0 is a shared `mmap` of the device fd at the region's offset, which every register
//! access goes through with a 32-bit volatile load or store. DMA buffers are the driver's
//! vm-memory mappings of memfds, pinned at their IOVA with `vfio_dma_map`. Interrupts are
//! MSI-X vectors (MSI when the function has no MSI-X) routed to eventfds.
//!
//! Every kernel call goes through [`VfioSys`]; the tests fake it and need no `/dev/vfio`.
pub(crate) mod sys;
#[cfg(test)]
mod tests;

use crate::device::Device;
use crate::dma::DmaMemory;
use crate::error::{DriverError, Result};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
pub use sys::{Mapping, OpenError, RealSys, RegionInfo, VfioError, VfioFunction, VfioSys};
use vmm_sys_util::eventfd::EventFd;

/// Where VFIO's character devices are.
pub const DEV_VFIO: &str = "/dev/vfio";
/// Where PCI functions are in sysfs.
pub const SYS_PCI_DEVICES: &str = "/sys/bus/pci/devices";

/// `0000:03:00.0` (or `03:00.0`, domain 0) checked and in full form.
pub fn parse_bdf(s: &str) -> Result<String> {
    let full = if s.matches(':').count() == 1 {
        format!("0000:{s}")
    } else {
        s.to_string()
    };
    let hex = |p: &str, n: usize| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit());
    let ok = match full.split(':').collect::<Vec<_>>()[..] {
        [dom, bus, devfn] => match devfn.split_once('.') {
            Some((dev, func)) => {
                hex(dom, 4)
                    && hex(bus, 2)
                    && hex(dev, 2)
                    && func.len() == 1
                    && matches!(func.as_bytes()[0], b'0'..=b'7')
            }
            None => false,
        },
        _ => false,
    };
    if ok {
        Ok(full.to_ascii_lowercase())
    } else {
        Err(DriverError::InvalidArgument(format!(
            "{s:?} is not a PCI address: expected domain:bus:device.function, e.g. 0000:03:00.0 \
             (`lspci -D` lists them)"
        )))
    }
}

/// Interrupt routing: which vectors are enabled in the kernel and their eventfds.
struct Irqs {
    /// `VFIO_PCI_MSIX_IRQ_INDEX` or `VFIO_PCI_MSI_IRQ_INDEX`; `None` without either.
    index: Option<u32>,
    /// Vectors the function has at `index`.
    count: u32,
    /// Vectors enabled in the kernel (0: the index is disabled).
    enabled: u32,
    fds: Vec<Option<EventFd>>,
    /// Signalled by the vectors below the highest routed one that have no eventfd: VFIO
    /// enables MSI-X vectors `0..n` together, each with an eventfd.
    unused: EventFd,
}

/// A PF opened through VFIO.
pub struct VfioBackend {
    bdf: String,
    group: u32,
    bar0: Mapping,
    bar0_region: RegionInfo,
    /// IOVA -> size of each buffer pinned by the IOMMU.
    dma: Mutex<HashMap<u64, usize>>,
    irqs: Mutex<Irqs>,
    /// Dropped after BAR0's mapping, which goes before the device fd closes.
    function: Box<dyn VfioFunction>,
}

impl std::fmt::Debug for VfioBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioBackend")
            .field("bdf", &self.bdf)
            .field("group", &self.group)
            .field("bar0", &self.bar0_region)
            .finish()
    }
}

/// How to give the device to vfio-pci, for error messages.
fn bind_hint(bdf: &str) -> String {
    format!(
        "bind it to vfio-pci: `modprobe vfio-pci; echo vfio-pci > {SYS_PCI_DEVICES}/{bdf}/driver_override; \
         echo {bdf} > {SYS_PCI_DEVICES}/{bdf}/driver/unbind; echo {bdf} > /sys/bus/pci/drivers_probe` \
         (for VFs: `nicctl vfs enable N --pf PF`)"
    )
}

const ROOT_HINT: &str = "run nicctl as root (or give your user the VFIO device files and a \
                         RLIMIT_MEMLOCK large enough for the DMA buffers)";

/// Why `path` could not be opened; `missing` says what its absence means.
fn open_failure(path: &Path, e: &io::Error, missing: &str) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!("{} does not exist: {missing}", path.display()),
        io::ErrorKind::PermissionDenied => {
            format!("permission denied opening {}: {ROOT_HINT}", path.display())
        }
        _ if e.raw_os_error() == Some(libc::EBUSY) => format!(
            "{} is busy: another process (a VM, another nicctl) has the IOMMU group open",
            path.display()
        ),
        _ => format!("cannot open {}: {e}", path.display()),
    }
}

/// An errno as `strerror` says it, with its number.
fn errno_text(e: &vmm_sys_util::errno::Error) -> io::Error {
    io::Error::from_raw_os_error(e.errno())
}

impl VfioBackend {
    /// Opens the PF at PCI address `bdf` through the kernel's VFIO.
    pub fn open(bdf: &str) -> Result<VfioBackend> {
        Self::open_with(bdf, Box::new(RealSys))
    }

    /// Opens the PF at `bdf` with `sys` for every system call.
    pub fn open_with(bdf: &str, sys: Box<dyn VfioSys>) -> Result<VfioBackend> {
        let bdf = parse_bdf(bdf)?;
        let fail = |reason: String| DriverError::Backend {
            device: format!("{bdf} (vfio)"),
            reason,
        };
        let sysdir = Path::new(SYS_PCI_DEVICES).join(&bdf);
        if !sys.exists(&sysdir) {
            return Err(fail(format!(
                "no such PCI device: {} does not exist; `lspci -D` lists the devices",
                sysdir.display()
            )));
        }
        let group_link = sysdir.join("iommu_group");
        let group = match sys.readlink(&group_link) {
            Ok(target) => target
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok())
                .ok_or_else(|| {
                    fail(format!(
                        "{} points to {}, which is not an IOMMU group",
                        group_link.display(),
                        target.display()
                    ))
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(fail(format!(
                    "the device has no IOMMU group ({} is missing): the IOMMU is off; enable \
                     VT-d/AMD-Vi in the firmware setup and boot with intel_iommu=on (or amd_iommu=on)",
                    group_link.display()
                )))
            }
            Err(e) => return Err(fail(format!("cannot read {}: {e}", group_link.display()))),
        };

        let probe = |path: &Path, missing: String| -> Result<()> {
            sys.probe_open(path)
                .map_err(|e| fail(open_failure(path, &e, &missing)))
        };
        let container_path = Path::new(DEV_VFIO).join("vfio");
        let no_driver =
            || "the VFIO driver is not loaded; load it with `modprobe vfio-pci`".to_string();
        probe(&container_path, no_driver())?;
        let driver = match sys.readlink(&sysdir.join("driver")) {
            Ok(t) => format!(
                "its driver is {}",
                t.file_name().and_then(|n| n.to_str()).unwrap_or("unknown")
            ),
            Err(_) => "it has no driver".into(),
        };
        let group_path = Path::new(DEV_VFIO).join(group.to_string());
        let unbound = || {
            format!(
                "{bdf} (IOMMU group {group}) is not bound to vfio-pci ({driver}); {}",
                bind_hint(&bdf)
            )
        };
        probe(&group_path, unbound())?;

        let vf_token = sys.vf_token(&bdf).map_err(|e| fail(e.to_string()))?;
        let function = sys.open_device(&sysdir, vf_token.as_deref()).map_err(|e| {
            let e = match e {
                OpenError::Vfio(e) => e,
                alias @ OpenError::Alias { .. } => return fail(alias.to_string()),
            };
            fail(match &e {
                VfioError::OpenContainer(io) => open_failure(&container_path, io, &no_driver()),
                VfioError::OpenGroup(io, _) => open_failure(&group_path, io, &unbound()),
                VfioError::VfioApiVersion => format!(
                    "the kernel's VFIO API version is not {}, the one this driver speaks",
                    vfio_bindings::bindings::vfio::VFIO_API_VERSION
                ),
                VfioError::VfioExtension | VfioError::VfioType1V2 => {
                    "the VFIO container offers no type1v2 IOMMU (is vfio_iommu_type1 loaded?)"
                        .into()
                }
                VfioError::GroupViable => format!(
                    "IOMMU group {group} is not viable: every device in \
                     /sys/kernel/iommu_groups/{group}/devices must be bound to vfio-pci or have no driver"
                ),
                VfioError::GroupSetContainer => format!(
                    "VFIO_GROUP_SET_CONTAINER for IOMMU group {group} failed: is the group \
                     already attached to another VFIO container?"
                ),
                VfioError::ContainerSetIOMMU(errno) => {
                    format!("VFIO_SET_IOMMU (type1v2) failed: {}", errno_text(errno))
                }
                VfioError::GroupGetDeviceFD(errno) if errno.errno() == libc::EACCES => {
                    let file = crate::vf_token::VfTokens::default().path(&bdf);
                    format!(
                        "VFIO_GROUP_GET_DEVICE_FD in IOMMU group {group} failed: {}: the PF's \
                         VFs are in use and vfio-pci wants the PF's VF token, which {}; the \
                         kernel log (`dmesg`) says which",
                        errno_text(errno),
                        match &vf_token {
                            Some(_) => format!(
                                "{} holds, but not the one the kernel has",
                                file.display()
                            ),
                            None => format!(
                                "nicctl keeps in {} (made by `nicctl vfs enable`), and there is \
                                 none",
                                file.display()
                            ),
                        }
                    )
                }
                VfioError::GroupGetDeviceFD(errno) => format!(
                    "VFIO_GROUP_GET_DEVICE_FD in IOMMU group {group} failed: {}",
                    errno_text(errno)
                ),
                other => format!("vfio-ioctls: {other}"),
            })
        })?;

        let region = function.region(sys::BAR0_REGION);
        if region.size == 0 {
            return Err(fail(
                "BAR0 is not implemented (size 0): is this a vpcnic PF?".into(),
            ));
        }
        let needed = sys::REGION_READ | sys::REGION_WRITE | sys::REGION_MMAP;
        if region.flags & needed != needed {
            return Err(fail(format!(
                "BAR0 cannot be mapped read-write (region flags {:#x})",
                region.flags
            )));
        }
        let len = usize::try_from(region.size)
            .map_err(|_| fail(format!("BAR0 of {:#x} bytes is too large", region.size)))?;
        let bar0 = sys.mmap(function.fd(), region.offset, len).map_err(|e| {
            fail(format!(
                "cannot mmap BAR0 ({len:#x} bytes at device offset {:#x}): {e}",
                region.offset
            ))
        })?;

        let mut irqs = Irqs {
            index: None,
            count: 0,
            enabled: 0,
            fds: Vec::new(),
            unused: EventFd::new(libc::EFD_CLOEXEC)
                .map_err(|e| fail(format!("cannot create an eventfd: {e}")))?,
        };
        for index in [sys::MSIX_IRQ, sys::MSI_IRQ] {
            let count = function.irq_count(index);
            if count > 0 {
                irqs.index = Some(index);
                irqs.count = count;
                break;
            }
        }

        Ok(VfioBackend {
            bdf,
            group,
            bar0,
            bar0_region: region,
            dma: Mutex::new(HashMap::new()),
            irqs: Mutex::new(irqs),
            function,
        })
    }

    /// The PCI address.
    pub fn bdf(&self) -> &str {
        &self.bdf
    }

    /// The IOMMU group number.
    pub fn iommu_group(&self) -> u32 {
        self.group
    }

    /// BAR0's region as VFIO reported it.
    pub fn bar0_region(&self) -> RegionInfo {
        self.bar0_region
    }

    /// The group file, for messages.
    pub fn group_path(&self) -> PathBuf {
        Path::new(DEV_VFIO).join(self.group.to_string())
    }

    fn access_error(&self) -> String {
        format!(
            "outside BAR0 ({:#x} bytes) or not 4-byte aligned",
            self.bar0.len()
        )
    }
}

impl Device for VfioBackend {
    fn describe(&self) -> String {
        format!("{} (vfio)", self.bdf)
    }

    fn bar0_size(&self) -> u64 {
        self.bar0.len() as u64
    }

    fn read32(&self, offset: u32) -> Result<u32> {
        self.bar0
            .read32(offset as usize)
            .ok_or_else(|| DriverError::register(self, "read", offset, self.access_error()))
    }

    fn write32(&self, offset: u32, value: u32) -> Result<()> {
        if self.bar0.write32(offset as usize, value) {
            Ok(())
        } else {
            Err(DriverError::register(
                self,
                "write",
                offset,
                self.access_error(),
            ))
        }
    }

    fn dma_map(&self, mem: &DmaMemory) -> Result<()> {
        let err = |reason: String| DriverError::dma_map(self, "map", mem, reason);
        let mut dma = self.dma.lock().unwrap_or_else(|e| e.into_inner());
        if dma.contains_key(&mem.iova()) {
            return Err(err("the IOVA is already mapped".into()));
        }
        let len = usize::try_from(mem.size()).map_err(|_| err("too large".into()))?;
        let host = mem.host_ptr()?;
        // SAFETY: `host..host + len` is vm-memory's shared mapping of the buffer's memfd,
        // which vm-memory reaches only through volatile copies (never references); it stays
        // mapped while `mem` lives, and the driver unmaps the IOVA before dropping `mem`.
        // Should it not, munmap ends the contract: the IOMMU then holds the unmapped pages,
        // not whatever is mapped there next.
        unsafe { self.function.dma_map(mem.iova(), len, host) }.map_err(|e| {
            err(match &e {
                VfioError::IommuDmaMap(errno) if errno.errno() == libc::ENOMEM => format!(
                    "VFIO_IOMMU_MAP_DMA: {}; the locked-memory limit is too low: raise it \
                     (`ulimit -l`) or {ROOT_HINT}",
                    errno_text(errno)
                ),
                VfioError::IommuDmaMap(errno) => {
                    format!("VFIO_IOMMU_MAP_DMA: {}", errno_text(errno))
                }
                other => format!("vfio-ioctls: {other}"),
            })
        })?;
        dma.insert(mem.iova(), len);
        Ok(())
    }

    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()> {
        let err = |reason: String| DriverError::dma_map(self, "unmap", mem, reason);
        let mut dma = self.dma.lock().unwrap_or_else(|e| e.into_inner());
        let Some(size) = dma.get(&mem.iova()) else {
            return Err(err("the IOVA is not mapped".into()));
        };
        self.function.dma_unmap(mem.iova(), *size).map_err(|e| {
            err(match &e {
                VfioError::IommuDmaUnmap(errno) => {
                    format!("VFIO_IOMMU_UNMAP_DMA: {}", errno_text(errno))
                }
                other => format!("vfio-ioctls: {other}"),
            })
        })?;
        dma.remove(&mem.iova());
        Ok(())
    }

    fn set_irq(&self, vector: u32, fd: Option<&EventFd>) -> Result<()> {
        let err = |reason: String| DriverError::Irq {
            device: self.describe(),
            vector,
            reason,
        };
        let mut irqs = self.irqs.lock().unwrap_or_else(|e| e.into_inner());
        let Some(index) = irqs.index else {
            return Err(err("the function has neither MSI-X nor MSI".into()));
        };
        if vector >= irqs.count {
            return Err(err(format!("the function has {} vectors", irqs.count)));
        }
        let fd = fd
            .map(|f| f.try_clone())
            .transpose()
            .map_err(|e| err(format!("cannot duplicate the eventfd: {e}")))?;
        if irqs.fds.len() <= vector as usize {
            irqs.fds.resize_with(vector as usize + 1, || None);
        }
        let old = std::mem::replace(&mut irqs.fds[vector as usize], fd);
        let result = self.route(&mut irqs, index);
        if result.is_err() {
            irqs.fds[vector as usize] = old;
        }
        result.map_err(|e| err(format!("VFIO_DEVICE_SET_IRQS: vfio-ioctls: {e}")))
    }
}

impl VfioBackend {
    /// Tells the kernel the eventfds of `irqs` after one changed.
    fn route(&self, irqs: &mut Irqs, index: u32) -> std::result::Result<(), VfioError> {
        let wanted = irqs
            .fds
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        // The kernel sizes MSI/MSI-X at enable time: a different number of vectors is a
        // disable and a new enable; the same number only moves the eventfds.
        if irqs.enabled as usize != wanted && irqs.enabled > 0 {
            self.function.disable_irq(index)?;
            irqs.enabled = 0;
        }
        if wanted > 0 {
            let fds: Vec<&EventFd> = irqs.fds[..wanted]
                .iter()
                .map(|f| f.as_ref().unwrap_or(&irqs.unused))
                .collect();
            self.function.enable_irq(index, &fds)?;
            irqs.enabled = wanted as u32;
        }
        Ok(())
    }
}
