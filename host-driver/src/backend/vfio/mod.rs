//! A vpcnic PF bound to vfio-pci: `nicctl --device vfio:0000:03:00.0`.
//!
//! Opening follows the kernel's VFIO protocol: the container `/dev/vfio/vfio` (API version,
//! a type1 IOMMU), the PF's IOMMU group `/dev/vfio/<N>` (N from the
//! `/sys/bus/pci/devices/<BDF>/iommu_group` link; viable, attached to the container), the
//! IOMMU model set, the device fd; then BAR0's region info and a shared `mmap` of the device
//! fd at the region's offset, which every register access goes through with a 32-bit
//! volatile load or store. DMA buffers (the driver's memfds) are mapped into this process
//! once more and that mapping is pinned at the buffer's IOVA with `VFIO_IOMMU_MAP_DMA`.
//! Interrupts are MSI-X vectors (MSI when the function has no MSI-X) routed to eventfds with
//! `VFIO_DEVICE_SET_IRQS`.
//!
//! Every system call goes through [`VfioSys`]; the tests fake it and need no `/dev/vfio`.
pub mod sys;
#[cfg(test)]
mod tests;

use crate::device::Device;
use crate::dma::DmaMemory;
use crate::error::{DriverError, Result};
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
pub use sys::{IrqInfo, Mapping, RealSys, RegionInfo, VfioSys};
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
}

/// A PF opened through VFIO.
pub struct VfioBackend {
    bdf: String,
    group: u32,
    bar0: Mapping,
    bar0_region: RegionInfo,
    /// IOVA -> (size, this process's mapping of the buffer's memfd, pinned by the IOMMU).
    dma: Mutex<HashMap<u64, (u64, Mapping)>>,
    irqs: Mutex<Irqs>,
    device: OwnedFd,
    _group_fd: OwnedFd,
    container: OwnedFd,
    sys: Box<dyn VfioSys>,
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

        let open = |path: &Path, missing: String| -> Result<OwnedFd> {
            sys.open(path).map_err(|e| {
                fail(match e.kind() {
                    io::ErrorKind::NotFound => format!("{} does not exist: {missing}", path.display()),
                    io::ErrorKind::PermissionDenied => {
                        format!("permission denied opening {}: {ROOT_HINT}", path.display())
                    }
                    _ if e.raw_os_error() == Some(libc::EBUSY) => format!(
                        "{} is busy: another process (a VM, another nicctl) has the IOMMU group open",
                        path.display()
                    ),
                    _ => format!("cannot open {}: {e}", path.display()),
                })
            })
        };
        let container_path = Path::new(DEV_VFIO).join("vfio");
        let container = open(
            &container_path,
            "the VFIO driver is not loaded; load it with `modprobe vfio-pci`".into(),
        )?;
        let version = sys
            .api_version(container.as_fd())
            .map_err(|e| fail(format!("VFIO_GET_API_VERSION failed: {e}")))?;
        if version != sys::API_VERSION {
            return Err(fail(format!(
                "the kernel's VFIO API version is {version}, this driver speaks {}",
                sys::API_VERSION
            )));
        }
        let mut iommu = None;
        for model in [sys::TYPE1V2_IOMMU, sys::TYPE1_IOMMU] {
            if sys
                .check_extension(container.as_fd(), model)
                .map_err(|e| fail(format!("VFIO_CHECK_EXTENSION failed: {e}")))?
            {
                iommu = Some(model);
                break;
            }
        }
        let iommu = iommu.ok_or_else(|| {
            fail("the VFIO container offers no type1 IOMMU (is vfio_iommu_type1 loaded?)".into())
        })?;

        let driver = match sys.readlink(&sysdir.join("driver")) {
            Ok(t) => format!(
                "its driver is {}",
                t.file_name().and_then(|n| n.to_str()).unwrap_or("unknown")
            ),
            Err(_) => "it has no driver".into(),
        };
        let group_path = Path::new(DEV_VFIO).join(group.to_string());
        let group_fd = open(
            &group_path,
            format!(
                "{bdf} (IOMMU group {group}) is not bound to vfio-pci ({driver}); {}",
                bind_hint(&bdf)
            ),
        )?;
        let status = sys.group_status(group_fd.as_fd()).map_err(|e| {
            fail(format!(
                "VFIO_GROUP_GET_STATUS on {} failed: {e}",
                group_path.display()
            ))
        })?;
        if status & sys::GROUP_VIABLE == 0 {
            return Err(fail(format!(
                "IOMMU group {group} is not viable: every device in \
                 /sys/kernel/iommu_groups/{group}/devices must be bound to vfio-pci or have no driver"
            )));
        }
        sys.group_set_container(group_fd.as_fd(), container.as_fd())
            .map_err(|e| {
                fail(format!(
                    "VFIO_GROUP_SET_CONTAINER for IOMMU group {group} failed: {e}"
                ))
            })?;
        sys.set_iommu(container.as_fd(), iommu)
            .map_err(|e| fail(format!("VFIO_SET_IOMMU (type {iommu}) failed: {e}")))?;
        let device = sys.group_device_fd(group_fd.as_fd(), &bdf).map_err(|e| {
            fail(format!(
                "VFIO_GROUP_GET_DEVICE_FD in IOMMU group {group} failed: {e}"
            ))
        })?;

        let region = sys
            .region_info(device.as_fd(), sys::BAR0_REGION)
            .map_err(|e| fail(format!("VFIO_DEVICE_GET_REGION_INFO for BAR0 failed: {e}")))?;
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
        let bar0 = sys.mmap(device.as_fd(), region.offset, len).map_err(|e| {
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
        };
        for index in [sys::MSIX_IRQ, sys::MSI_IRQ] {
            match sys.irq_info(device.as_fd(), index) {
                Ok(info) if info.count > 0 => {
                    irqs.index = Some(index);
                    irqs.count = info.count;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    return Err(fail(format!(
                        "VFIO_DEVICE_GET_IRQ_INFO (index {index}) failed: {e}"
                    )))
                }
            }
        }

        Ok(VfioBackend {
            bdf,
            group,
            bar0,
            bar0_region: region,
            dma: Mutex::new(HashMap::new()),
            irqs: Mutex::new(irqs),
            device,
            _group_fd: group_fd,
            container,
            sys,
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
        let mapping = self
            .sys
            .mmap(mem.file().as_fd(), 0, len)
            .map_err(|e| err(format!("cannot mmap the buffer: {e}")))?;
        self.sys
            .dma_map(self.container.as_fd(), mem.iova(), mem.size(), mapping.addr())
            .map_err(|e| {
                err(if e.raw_os_error() == Some(libc::ENOMEM) {
                    format!("VFIO_IOMMU_MAP_DMA: {e}; the locked-memory limit is too low: raise it (`ulimit -l`) or {ROOT_HINT}")
                } else {
                    format!("VFIO_IOMMU_MAP_DMA: {e}")
                })
            })?;
        dma.insert(mem.iova(), (mem.size(), mapping));
        Ok(())
    }

    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()> {
        let err = |reason: String| DriverError::dma_map(self, "unmap", mem, reason);
        let mut dma = self.dma.lock().unwrap_or_else(|e| e.into_inner());
        let Some((size, _)) = dma.get(&mem.iova()) else {
            return Err(err("the IOVA is not mapped".into()));
        };
        self.sys
            .dma_unmap(self.container.as_fd(), mem.iova(), *size)
            .map_err(|e| err(format!("VFIO_IOMMU_UNMAP_DMA: {e}")))?;
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
        let result = self.route(&mut irqs, index, vector);
        if result.is_err() {
            irqs.fds[vector as usize] = old;
        }
        result.map_err(|e| err(format!("VFIO_DEVICE_SET_IRQS: {e}")))
    }
}

impl VfioBackend {
    /// Tells the kernel the eventfds of `irqs` after `vector`'s changed.
    fn route(&self, irqs: &mut Irqs, index: u32, vector: u32) -> io::Result<()> {
        let wanted = irqs
            .fds
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i as u32 + 1);
        let raw = |f: &Option<EventFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
        let dev = self.device.as_fd();
        if wanted == irqs.enabled {
            if wanted > 0 {
                self.sys
                    .set_irqs(dev, index, vector, &[raw(&irqs.fds[vector as usize])])?;
            }
            return Ok(());
        }
        // The kernel sizes MSI/MSI-X at enable time: disable, then enable `wanted` vectors.
        if irqs.enabled > 0 {
            self.sys.set_irqs(dev, index, 0, &[])?;
            irqs.enabled = 0;
        }
        if wanted > 0 {
            let all: Vec<i32> = irqs.fds[..wanted as usize].iter().map(raw).collect();
            self.sys.set_irqs(dev, index, 0, &all)?;
            irqs.enabled = wanted;
        }
        Ok(())
    }
}
