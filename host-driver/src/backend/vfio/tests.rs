//! The VFIO backend against a fake kernel: every system call is recorded; the device fd and
//! the other descriptors are memfds, so BAR0 is a real shared mapping the test can inspect
//! through the fd.
use super::*;
use crate::dma::DmaMemory;
use std::collections::HashSet;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

const BDF: &str = "0000:03:00.0";
const GROUP: u32 = 17;
const BAR0_OFFSET: u64 = 0x4_0000;
const BAR0_SIZE: u64 = 0x1000;

/// Makes the error a fake call fails with (`VfioError` is not `Clone`).
type MakeError = fn() -> VfioError;

struct State {
    existing: HashSet<PathBuf>,
    links: HashMap<PathBuf, PathBuf>,
    open_errno: HashMap<PathBuf, i32>,
    calls: Vec<String>,
    region: RegionInfo,
    irq_counts: HashMap<u32, u32>,
    /// A call (by name) that fails with this error.
    fail: Option<(&'static str, MakeError)>,
    /// The device's memory: BAR0 at `region.offset`.
    device_mem: File,
    /// `vaddr` of each `dma_map`.
    dma_vaddrs: Vec<u64>,
    /// The PF's VF token, as `nicctl vfs enable` kept it.
    vf_token: Option<String>,
    /// The eventfds of the vectors as the last `enable_irq` routed them.
    routed: Vec<EventFd>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<State>>);

fn memfd(size: u64) -> File {
    // SAFETY: a valid NUL-terminated name; the result is checked.
    let fd = unsafe { libc::memfd_create(c"fake-vfio".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: a new descriptor nothing else owns.
    let f = unsafe { File::from_raw_fd(fd) };
    f.set_len(size).unwrap();
    f
}

fn errno(e: i32) -> vmm_sys_util::errno::Error {
    vmm_sys_util::errno::Error::new(e)
}

impl Fake {
    /// A PF bound to vfio-pci in IOMMU group 17 with MSI-X (4 vectors) and MSI (1).
    fn new() -> Fake {
        let dev = PathBuf::from(format!("{SYS_PCI_DEVICES}/{BDF}"));
        let mut links = HashMap::new();
        links.insert(
            dev.join("iommu_group"),
            PathBuf::from(format!("../../../kernel/iommu_groups/{GROUP}")),
        );
        links.insert(
            dev.join("driver"),
            PathBuf::from("../../../bus/pci/drivers/vfio-pci"),
        );
        Fake(Arc::new(Mutex::new(State {
            existing: [
                dev,
                "/dev/vfio/vfio".into(),
                format!("/dev/vfio/{GROUP}").into(),
            ]
            .into_iter()
            .collect(),
            links,
            open_errno: HashMap::new(),
            calls: Vec::new(),
            region: RegionInfo {
                flags: sys::REGION_READ | sys::REGION_WRITE | sys::REGION_MMAP,
                size: BAR0_SIZE,
                offset: BAR0_OFFSET,
            },
            irq_counts: [(sys::MSIX_IRQ, 4), (sys::MSI_IRQ, 1)]
                .into_iter()
                .collect(),
            fail: None,
            device_mem: memfd(BAR0_OFFSET + BAR0_SIZE),
            dma_vaddrs: Vec::new(),
            routed: Vec::new(),
            vf_token: None,
        })))
    }

    fn with(self, f: impl FnOnce(&mut State)) -> Fake {
        f(&mut self.0.lock().unwrap());
        self
    }

    fn failing(self, call: &'static str, error: MakeError) -> Fake {
        self.with(|s| s.fail = Some((call, error)))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap()
    }

    fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    fn open(&self) -> Result<VfioBackend> {
        VfioBackend::open_with(BDF, Box::new(self.clone()))
    }

    fn error(&self) -> String {
        self.open().unwrap_err().to_string()
    }

    /// The device raises `vector`: its routed eventfd is signalled, as the kernel would.
    fn raise(&self, vector: usize) {
        self.state().routed[vector].write(1).unwrap();
    }

    /// Records the call; fails it if the test asked so.
    fn call(&self, name: &'static str, what: String) -> std::result::Result<(), VfioError> {
        let mut s = self.state();
        s.calls
            .push(format!("{name} {what}").trim_end().to_string());
        match s.fail {
            Some((n, make)) if n == name => Err(make()),
            _ => Ok(()),
        }
    }
}

impl VfioSys for Fake {
    fn exists(&self, path: &Path) -> bool {
        self.state().existing.contains(path)
    }

    fn readlink(&self, path: &Path) -> io::Result<PathBuf> {
        self.state()
            .links
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))
    }

    fn probe_open(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        s.calls.push(format!("probe_open {}", path.display()));
        if let Some(errno) = s.open_errno.get(path) {
            return Err(io::Error::from_raw_os_error(*errno));
        }
        if !s.existing.contains(path) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        Ok(())
    }

    fn vf_token(&self, _bdf: &str) -> io::Result<Option<String>> {
        Ok(self.state().vf_token.clone())
    }

    fn open_device(
        &self,
        sysfs: &Path,
        vf_token: Option<&str>,
    ) -> std::result::Result<Box<dyn VfioFunction>, OpenError> {
        let token = vf_token
            .map(|t| format!(" vf_token={t}"))
            .unwrap_or_default();
        self.call("open_device", format!("{}{token}", sysfs.display()))?;
        let fd: OwnedFd = self.state().device_mem.try_clone().unwrap().into();
        Ok(Box::new(FakeFunction {
            fake: self.clone(),
            fd,
        }))
    }

    /// Only BAR0 is mapped (through the device fd).
    fn mmap(&self, fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Mapping> {
        if let Some(("mmap", _)) = self.state().fail {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        self.state()
            .calls
            .push(format!("mmap device offset {offset:#x} len {len:#x}"));
        Mapping::map(fd, offset, len)
    }
}

/// The function as vfio-ioctls would have opened it.
struct FakeFunction {
    fake: Fake,
    fd: OwnedFd,
}

impl VfioFunction for FakeFunction {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn region(&self, index: u32) -> RegionInfo {
        if index == sys::BAR0_REGION {
            self.fake.state().region
        } else {
            RegionInfo {
                flags: 0,
                size: 0,
                offset: 0,
            }
        }
    }

    fn irq_count(&self, index: u32) -> u32 {
        self.fake
            .state()
            .irq_counts
            .get(&index)
            .copied()
            .unwrap_or(0)
    }

    unsafe fn dma_map(
        &self,
        iova: u64,
        size: usize,
        vaddr: *mut u8,
    ) -> std::result::Result<(), VfioError> {
        self.fake
            .call("dma_map", format!("iova {iova:#x} size {size:#x}"))?;
        self.fake.state().dma_vaddrs.push(vaddr as u64);
        Ok(())
    }

    fn dma_unmap(&self, iova: u64, size: usize) -> std::result::Result<(), VfioError> {
        self.fake
            .call("dma_unmap", format!("iova {iova:#x} size {size:#x}"))
    }

    fn enable_irq(&self, index: u32, fds: &[&EventFd]) -> std::result::Result<(), VfioError> {
        self.fake
            .call("enable_irq", format!("index {index} vectors {}", fds.len()))?;
        self.fake.state().routed = fds.iter().map(|f| f.try_clone().unwrap()).collect();
        Ok(())
    }

    fn disable_irq(&self, index: u32) -> std::result::Result<(), VfioError> {
        self.fake.call("disable_irq", format!("index {index}"))?;
        self.fake.state().routed.clear();
        Ok(())
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn open_checks_the_vfio_files_then_opens_through_vfio_ioctls() {
    let fake = Fake::new();
    let dev = fake.open().unwrap();
    assert_eq!(
        fake.calls(),
        lines(&[
            "probe_open /dev/vfio/vfio",
            "probe_open /dev/vfio/17",
            "open_device /sys/bus/pci/devices/0000:03:00.0",
            "mmap device offset 0x40000 len 0x1000",
        ])
    );
    assert_eq!(dev.describe(), "0000:03:00.0 (vfio)");
    assert_eq!(
        (dev.bdf(), dev.iommu_group(), dev.bar0_size()),
        (BDF, GROUP, BAR0_SIZE)
    );
    assert_eq!(dev.group_path(), PathBuf::from("/dev/vfio/17"));
}

#[test]
fn bar0_accesses_go_through_the_mapping_at_the_region_offset() {
    let fake = Fake::new();
    let mem = fake.state().device_mem.try_clone().unwrap();
    mem.write_at(&0x4e50_4356u32.to_ne_bytes(), BAR0_OFFSET)
        .unwrap();
    let dev = fake.open().unwrap();
    assert_eq!(dev.read32(0).unwrap(), 0x4e50_4356);
    dev.write32(0x10, 0xdead_beef).unwrap();
    dev.write32(BAR0_SIZE as u32 - 4, 7).unwrap();
    let mut word = [0u8; 4];
    mem.read_at(&mut word, BAR0_OFFSET + 0x10).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 0xdead_beef);
    mem.read_at(&mut word, BAR0_OFFSET + BAR0_SIZE - 4).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 7);
    // Nothing before the region was touched.
    mem.read_at(&mut word, BAR0_OFFSET - 4).unwrap();
    assert_eq!(u32::from_ne_bytes(word), 0);
    assert_eq!(dev.read32(0x10).unwrap(), 0xdead_beef);
}

#[test]
fn bar0_accesses_outside_or_misaligned_are_errors() {
    let dev = Fake::new().open().unwrap();
    let e = dev.read32(BAR0_SIZE as u32).unwrap_err().to_string();
    assert_eq!(
        e,
        "0000:03:00.0 (vfio): read of register (unnamed) (BAR0 offset 0x1000) failed: outside \
         BAR0 (0x1000 bytes) or not 4-byte aligned"
    );
    assert!(dev
        .write32(2, 1)
        .unwrap_err()
        .to_string()
        .contains("write of register"));
}

#[test]
fn dma_buffers_are_mapped_at_their_iova_with_their_size() {
    let fake = Fake::new();
    let dev = fake.open().unwrap();
    let mem = DmaMemory::new(0x10_0000, 0x1800).unwrap();
    mem.write(0x7f8, &[1, 2, 3, 4]).unwrap();
    dev.dma_map(&mem).unwrap();
    let calls = fake.calls();
    assert_eq!(calls.last().unwrap(), "dma_map iova 0x100000 size 0x2000");
    let vaddr = fake.state().dma_vaddrs[0];
    assert_eq!(vaddr, mem.host_ptr().unwrap() as u64, "vm-memory's mapping");
    assert_eq!(vaddr % 4096, 0);
    // SAFETY: `vaddr` is vm-memory's live mapping of the buffer's 0x2000 bytes.
    let seen = unsafe { std::ptr::read_volatile((vaddr + 0x7f8) as *const [u8; 4]) };
    assert_eq!(seen, [1, 2, 3, 4], "the pinned pages are the buffer's");

    let e = dev.dma_map(&mem).unwrap_err().to_string();
    assert_eq!(
        e,
        "0000:03:00.0 (vfio): could not map 0x2000 bytes of DMA memory at IOVA 0x100000: the \
         IOVA is already mapped"
    );
    dev.dma_unmap(&mem).unwrap();
    assert_eq!(
        fake.calls().last().unwrap(),
        "dma_unmap iova 0x100000 size 0x2000"
    );
    let e = dev.dma_unmap(&mem).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "could not unmap 0x2000 bytes of DMA memory at IOVA 0x100000: the IOVA is not mapped"
        ),
        "{e}"
    );
}

#[test]
fn dma_map_without_locked_memory_says_to_raise_the_limit() {
    let fake = Fake::new().failing("dma_map", || VfioError::IommuDmaMap(errno(libc::ENOMEM)));
    let dev = fake.open().unwrap();
    let mem = DmaMemory::new(0x2000, 4096).unwrap();
    let e = dev.dma_map(&mem).unwrap_err().to_string();
    assert!(
        e.contains("VFIO_IOMMU_MAP_DMA: Cannot allocate memory"),
        "{e}"
    );
    assert!(e.contains("raise it (`ulimit -l`)"), "{e}");
    // A failed map is not recorded: mapping again reaches the kernel again.
    fake.state().fail = None;
    dev.dma_map(&mem).unwrap();
}

/// Which of `fds` were signalled since last asked (each read once).
fn signalled(fds: &[&EventFd]) -> Vec<bool> {
    fds.iter().map(|f| f.read().is_ok()).collect()
}

fn eventfd() -> EventFd {
    EventFd::new(libc::EFD_NONBLOCK).unwrap()
}

#[test]
fn interrupts_route_msix_vectors_to_eventfds() {
    let fake = Fake::new();
    let dev = fake.open().unwrap();
    let n0 = fake.calls().len();
    let (a, b) = (eventfd(), eventfd());

    dev.set_irq(0, Some(&a)).unwrap();
    fake.raise(0);
    assert_eq!(signalled(&[&a, &b]), [true, false]);

    // Another eventfd for the same vector: the same count, so no disable.
    dev.set_irq(0, Some(&b)).unwrap();
    fake.raise(0);
    assert_eq!(signalled(&[&a, &b]), [false, true]);

    // Vector 2 needs three vectors enabled; vector 1 has an eventfd nobody reads.
    dev.set_irq(2, Some(&a)).unwrap();
    fake.raise(2);
    fake.raise(1);
    assert_eq!(signalled(&[&a, &b]), [true, false]);
    fake.raise(0);
    assert_eq!(signalled(&[&a, &b]), [false, true]);

    dev.set_irq(2, None).unwrap();
    dev.set_irq(0, None).unwrap();
    assert_eq!(
        fake.calls()[n0..],
        lines(&[
            "enable_irq index 2 vectors 1",
            "enable_irq index 2 vectors 1",
            "disable_irq index 2",
            "enable_irq index 2 vectors 3",
            "disable_irq index 2",
            "enable_irq index 2 vectors 1",
            "disable_irq index 2",
        ])
    );
    let e = dev.set_irq(4, Some(&a)).unwrap_err().to_string();
    assert_eq!(
        e,
        "0000:03:00.0 (vfio): could not set up interrupt vector 4: the function has 4 vectors"
    );
}

#[test]
fn interrupts_fall_back_to_msi_and_fail_without_either() {
    let fake = Fake::new().with(|s| {
        s.irq_counts.remove(&sys::MSIX_IRQ);
    });
    let dev = fake.open().unwrap();
    dev.set_irq(0, Some(&eventfd())).unwrap();
    assert_eq!(fake.calls().last().unwrap(), "enable_irq index 1 vectors 1");

    let fake = Fake::new().with(|s| s.irq_counts.clear());
    let dev = fake.open().unwrap();
    let e = dev.set_irq(0, Some(&eventfd())).unwrap_err().to_string();
    assert!(e.ends_with("the function has neither MSI-X nor MSI"), "{e}");

    let fake = Fake::new().failing("enable_irq", || VfioError::VfioDeviceEnableIrq);
    let dev = fake.open().unwrap();
    let e = dev.set_irq(0, Some(&eventfd())).unwrap_err().to_string();
    assert!(
        e.ends_with("VFIO_DEVICE_SET_IRQS: vfio-ioctls: failed to enable vfio device irq"),
        "{e}"
    );
    // The failed route is not kept: routing again reaches the kernel again.
    fake.state().fail = None;
    dev.set_irq(0, Some(&eventfd())).unwrap();
    assert_eq!(fake.calls().last().unwrap(), "enable_irq index 2 vectors 1");
}

#[test]
fn bad_pci_addresses_are_refused_before_any_call() {
    for bad in ["03:00", "0000:03:00.8", "zz:00.0", "0000:003:00.0", ""] {
        let e = VfioBackend::open_with(bad, Box::new(Fake::new()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not a PCI address"), "{bad}: {e}");
    }
    assert_eq!(parse_bdf("03:00.1").unwrap(), "0000:03:00.1");
    assert_eq!(parse_bdf("0000:3B:00.0").unwrap(), "0000:3b:00.0");
}

#[test]
fn each_missing_piece_is_named_with_what_to_do() {
    let dev_dir = PathBuf::from(format!("{SYS_PCI_DEVICES}/{BDF}"));
    let cases: Vec<(Fake, &str)> = vec![
        (
            Fake::new().with(|s| s.existing.clear()),
            "0000:03:00.0 (vfio): no such PCI device: /sys/bus/pci/devices/0000:03:00.0 does not exist; `lspci -D` lists the devices",
        ),
        (
            Fake::new().with(|s| {
                s.links.remove(&dev_dir.join("iommu_group"));
            }),
            "0000:03:00.0 (vfio): the device has no IOMMU group (/sys/bus/pci/devices/0000:03:00.0/iommu_group is missing): the IOMMU is off; enable VT-d/AMD-Vi in the firmware setup and boot with intel_iommu=on (or amd_iommu=on)",
        ),
        (
            Fake::new().with(|s| {
                s.existing.remove(Path::new("/dev/vfio/vfio"));
            }),
            "0000:03:00.0 (vfio): /dev/vfio/vfio does not exist: the VFIO driver is not loaded; load it with `modprobe vfio-pci`",
        ),
        (
            Fake::new().with(|s| {
                s.open_errno.insert("/dev/vfio/vfio".into(), libc::EACCES);
            }),
            "0000:03:00.0 (vfio): permission denied opening /dev/vfio/vfio: run nicctl as root (or give your user the VFIO device files and a RLIMIT_MEMLOCK large enough for the DMA buffers)",
        ),
        (
            Fake::new().with(|s| {
                s.open_errno.insert("/dev/vfio/17".into(), libc::EACCES);
            }),
            "0000:03:00.0 (vfio): permission denied opening /dev/vfio/17: run nicctl as root",
        ),
        (
            Fake::new().with(|s| {
                s.open_errno.insert("/dev/vfio/17".into(), libc::EBUSY);
            }),
            "0000:03:00.0 (vfio): /dev/vfio/17 is busy: another process (a VM, another nicctl) has the IOMMU group open",
        ),
        // What vfio-ioctls finds once the files open.
        (
            Fake::new().failing("open_device", || {
                VfioError::OpenGroup(io::Error::from_raw_os_error(libc::EBUSY), "17".into())
            }),
            "0000:03:00.0 (vfio): /dev/vfio/17 is busy: another process",
        ),
        (
            Fake::new().failing("open_device", || VfioError::VfioApiVersion),
            "0000:03:00.0 (vfio): the kernel's VFIO API version is not 0, the one this driver speaks",
        ),
        (
            Fake::new().failing("open_device", || VfioError::VfioExtension),
            "0000:03:00.0 (vfio): the VFIO container offers no type1v2 IOMMU (is vfio_iommu_type1 loaded?)",
        ),
        (
            Fake::new().failing("open_device", || VfioError::GroupViable),
            "0000:03:00.0 (vfio): IOMMU group 17 is not viable: every device in /sys/kernel/iommu_groups/17/devices must be bound to vfio-pci or have no driver",
        ),
        (
            Fake::new().failing("open_device", || {
                VfioError::ContainerSetIOMMU(errno(libc::EPERM))
            }),
            "0000:03:00.0 (vfio): VFIO_SET_IOMMU (type1v2) failed: Operation not permitted (os error 1)",
        ),
        (
            Fake::new().failing("open_device", || {
                VfioError::GroupGetDeviceFD(errno(libc::ENODEV))
            }),
            "0000:03:00.0 (vfio): VFIO_GROUP_GET_DEVICE_FD in IOMMU group 17 failed: No such device (os error 19)",
        ),
        (
            Fake::new().failing("open_device", || VfioError::VfioDeviceGetInfoPCI),
            "0000:03:00.0 (vfio): vfio-ioctls: vfio PCI device info doesn't match",
        ),
        (
            Fake::new().with(|s| s.region.size = 0),
            "0000:03:00.0 (vfio): BAR0 is not implemented (size 0): is this a vpcnic PF?",
        ),
        (
            Fake::new().with(|s| s.region.flags = sys::REGION_READ | sys::REGION_WRITE),
            "0000:03:00.0 (vfio): BAR0 cannot be mapped read-write (region flags 0x3)",
        ),
        (
            Fake::new().failing("mmap", || VfioError::InvalidPath),
            "0000:03:00.0 (vfio): cannot mmap BAR0 (0x1000 bytes at device offset 0x40000): Invalid argument (os error 22)",
        ),
    ];
    for (fake, want) in cases {
        let got = fake.error();
        assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
    }
}

#[test]
fn an_unbound_device_names_its_driver_and_how_to_bind_it() {
    let dev_dir = PathBuf::from(format!("{SYS_PCI_DEVICES}/{BDF}"));
    let fake = Fake::new().with(|s| {
        s.links.insert(
            dev_dir.join("driver"),
            "../../../bus/pci/drivers/ixgbe".into(),
        );
    });
    fake.state().existing.remove(Path::new("/dev/vfio/17"));
    let e = fake.error();
    assert!(
        e.starts_with(
            "0000:03:00.0 (vfio): /dev/vfio/17 does not exist: 0000:03:00.0 (IOMMU group 17) is \
             not bound to vfio-pci (its driver is ixgbe); bind it to vfio-pci: `modprobe vfio-pci; \
             echo vfio-pci > /sys/bus/pci/devices/0000:03:00.0/driver_override;"
        ),
        "{e}"
    );
    let fake = Fake::new().with(|s| {
        s.links.remove(&dev_dir.join("driver"));
        s.existing.remove(Path::new("/dev/vfio/17"));
    });
    assert!(fake.error().contains("(it has no driver)"));
}

#[test]
fn the_real_kernel_without_vfio_gives_a_clear_error() {
    // On a machine without the device (CI), the real system calls fail at the first step.
    let e = VfioBackend::open("0000:ff:1f.7").unwrap_err().to_string();
    assert!(e.starts_with("0000:ff:1f.7 (vfio): "), "{e}");
}

const TOKEN: &str = "bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3";

#[test]
fn the_pf_is_opened_with_its_vf_token() {
    let fake = Fake::new().with(|s| s.vf_token = Some(TOKEN.into()));
    fake.open().unwrap();
    assert!(fake.calls().contains(&format!(
        "open_device /sys/bus/pci/devices/0000:03:00.0 vf_token={TOKEN}"
    )));
}

#[test]
fn a_refused_vf_token_says_where_the_token_is_kept() {
    let refused = || VfioError::GroupGetDeviceFD(errno(libc::EACCES));
    let e = Fake::new().failing("open_device", refused).error();
    assert!(
        e.contains("wants the PF's VF token, which nicctl keeps in /run/vpcnic/vf-token/0000:03:00.0 (made by `nicctl vfs enable`), and there is none"),
        "{e}"
    );
    let e = Fake::new()
        .with(|s| s.vf_token = Some(TOKEN.into()))
        .failing("open_device", refused)
        .error();
    assert!(
        e.contains("/run/vpcnic/vf-token/0000:03:00.0 holds, but not the one the kernel has"),
        "{e}"
    );
}

#[test]
fn the_token_alias_names_the_device_and_links_its_iommu_group() {
    let dir = std::env::temp_dir().join(format!("vpcnic-alias-{}", std::process::id()));
    let dev = dir.join("sys").join(BDF);
    std::fs::create_dir_all(&dev).unwrap();
    std::fs::create_dir_all(dir.join("groups/17")).unwrap();
    std::os::unix::fs::symlink("../../groups/17", dev.join("iommu_group")).unwrap();
    let alias = sys::TokenAlias::new(&dir.join("alias"), &dev, TOKEN).unwrap();
    let path = alias.path().to_path_buf();
    assert_eq!(
        path.file_name().unwrap().to_str().unwrap(),
        format!("{BDF} vf_token={TOKEN}")
    );
    let group = std::fs::read_link(path.join("iommu_group")).unwrap();
    assert_eq!(group.file_name().unwrap(), "17");
    assert!(group.is_absolute() && group.exists(), "{group:?}");
    drop(alias);
    assert!(!path.exists(), "the alias is removed with it");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vfio_ioctls_on_the_real_kernel_reports_the_first_missing_file() {
    // A sysfs function whose IOMMU group no kernel has: vfio-ioctls opens the real container
    // (where there is one) and then fails on the group, or fails on the container itself.
    let dir = std::env::temp_dir().join(format!("vpcnic-vfio-{}", std::process::id()));
    let dev = dir.join("devices").join(BDF);
    std::fs::create_dir_all(&dev).unwrap();
    let group = 4_000_000 + std::process::id();
    std::fs::create_dir_all(dir.join("iommu_groups").join(group.to_string())).unwrap();
    std::os::unix::fs::symlink(
        format!("../../iommu_groups/{group}"),
        dev.join("iommu_group"),
    )
    .unwrap();
    // Once plainly, once named with a VF token through an alias directory.
    let results = [None, Some(TOKEN)].map(|token| RealSys.open_device(&dev, token).map(|_| ()));
    std::fs::remove_dir_all(&dir).unwrap();
    for result in results {
        match result {
            Err(OpenError::Vfio(VfioError::OpenGroup(e, id)))
                if Path::new("/dev/vfio/vfio").exists() =>
            {
                assert_eq!((e.kind(), id), (io::ErrorKind::NotFound, group.to_string()));
            }
            Err(OpenError::Vfio(VfioError::OpenContainer(e)))
                if !Path::new("/dev/vfio/vfio").exists() =>
            {
                assert_eq!(e.kind(), io::ErrorKind::NotFound);
            }
            other => panic!("unexpected: {:?}", other.err()),
        }
    }
    let leftover = std::fs::read_dir("/run/vpcnic/vfio-alias")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", std::process::id()))
        })
        .count();
    assert_eq!(leftover, 0, "the alias directory is removed");
}
