//! The VFIO backend against a fake kernel: every system call is recorded; the device fd and
//! the other descriptors are memfds, so BAR0 is a real shared mapping the test can inspect
//! through the fd.
use super::*;
use crate::dma::DmaMemory;
use std::collections::HashSet;
use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

const BDF: &str = "0000:03:00.0";
const GROUP: u32 = 17;
const BAR0_OFFSET: u64 = 0x4_0000;
const BAR0_SIZE: u64 = 0x1000;

struct State {
    existing: HashSet<PathBuf>,
    links: HashMap<PathBuf, PathBuf>,
    open_errno: HashMap<PathBuf, i32>,
    roles: HashMap<RawFd, &'static str>,
    calls: Vec<String>,
    api: u32,
    extensions: Vec<u32>,
    group_flags: u32,
    region: RegionInfo,
    irq_counts: HashMap<u32, u32>,
    /// A call (by name) that fails with this errno.
    fail: Option<(&'static str, i32)>,
    /// The device's memory: BAR0 at `region.offset`.
    device_mem: File,
    /// `vaddr` of each VFIO_IOMMU_MAP_DMA.
    dma_vaddrs: Vec<u64>,
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
            existing: [dev].into_iter().collect(),
            links,
            open_errno: HashMap::new(),
            roles: HashMap::new(),
            calls: Vec::new(),
            api: sys::API_VERSION,
            extensions: vec![sys::TYPE1_IOMMU, sys::TYPE1V2_IOMMU],
            group_flags: sys::GROUP_VIABLE,
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
        })))
    }

    fn with(self, f: impl FnOnce(&mut State)) -> Fake {
        f(&mut self.0.lock().unwrap());
        self
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

    /// Records the call; fails it if the test asked so.
    fn call(&self, name: &'static str, what: String) -> io::Result<()> {
        let mut s = self.state();
        s.calls
            .push(format!("{name} {what}").trim_end().to_string());
        match s.fail {
            Some((n, errno)) if n == name => Err(io::Error::from_raw_os_error(errno)),
            _ => Ok(()),
        }
    }

    fn role(&self, fd: BorrowedFd<'_>) -> &'static str {
        self.state()
            .roles
            .get(&fd.as_raw_fd())
            .copied()
            .unwrap_or("memory")
    }

    fn new_fd(&self, role: &'static str) -> OwnedFd {
        let f: OwnedFd = if role == "device" {
            self.state().device_mem.try_clone().unwrap().into()
        } else {
            memfd(4096).into()
        };
        self.state().roles.insert(f.as_raw_fd(), role);
        f
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

    fn open(&self, path: &Path) -> io::Result<OwnedFd> {
        self.call("open", path.display().to_string())?;
        if let Some(errno) = self.state().open_errno.get(path) {
            return Err(io::Error::from_raw_os_error(*errno));
        }
        match path.to_str().unwrap() {
            "/dev/vfio/vfio" => Ok(self.new_fd("container")),
            p if p == format!("/dev/vfio/{GROUP}") => Ok(self.new_fd("group")),
            _ => Err(io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }

    fn api_version(&self, c: BorrowedFd<'_>) -> io::Result<u32> {
        self.call("api_version", self.role(c).into())?;
        Ok(self.state().api)
    }

    fn check_extension(&self, c: BorrowedFd<'_>, ext: u32) -> io::Result<bool> {
        self.call("check_extension", format!("{} {ext}", self.role(c)))?;
        Ok(self.state().extensions.contains(&ext))
    }

    fn group_status(&self, g: BorrowedFd<'_>) -> io::Result<u32> {
        self.call("group_status", self.role(g).into())?;
        Ok(self.state().group_flags)
    }

    fn group_set_container(&self, g: BorrowedFd<'_>, c: BorrowedFd<'_>) -> io::Result<()> {
        self.call(
            "group_set_container",
            format!("{} {}", self.role(g), self.role(c)),
        )
    }

    fn set_iommu(&self, c: BorrowedFd<'_>, iommu: u32) -> io::Result<()> {
        self.call("set_iommu", format!("{} {iommu}", self.role(c)))
    }

    fn group_device_fd(&self, g: BorrowedFd<'_>, bdf: &str) -> io::Result<OwnedFd> {
        self.call("group_device_fd", format!("{} {bdf}", self.role(g)))?;
        Ok(self.new_fd("device"))
    }

    fn region_info(&self, d: BorrowedFd<'_>, index: u32) -> io::Result<RegionInfo> {
        self.call("region_info", format!("{} {index}", self.role(d)))?;
        Ok(self.state().region)
    }

    fn irq_info(&self, d: BorrowedFd<'_>, index: u32) -> io::Result<IrqInfo> {
        self.call("irq_info", format!("{} {index}", self.role(d)))?;
        let count = self.state().irq_counts.get(&index).copied().unwrap_or(0);
        Ok(IrqInfo { flags: 1, count })
    }

    fn set_irqs(&self, d: BorrowedFd<'_>, index: u32, start: u32, fds: &[i32]) -> io::Result<()> {
        let fds: Vec<&str> = fds
            .iter()
            .map(|&f| if f >= 0 { "fd" } else { "-1" })
            .collect();
        self.call(
            "set_irqs",
            format!(
                "{} index {index} start {start} [{}]",
                self.role(d),
                fds.join(" ")
            ),
        )
    }

    fn dma_map(&self, c: BorrowedFd<'_>, iova: u64, size: u64, vaddr: u64) -> io::Result<()> {
        self.call(
            "dma_map",
            format!("{} iova {iova:#x} size {size:#x}", self.role(c)),
        )?;
        self.state().dma_vaddrs.push(vaddr);
        Ok(())
    }

    fn dma_unmap(&self, c: BorrowedFd<'_>, iova: u64, size: u64) -> io::Result<()> {
        self.call(
            "dma_unmap",
            format!("{} iova {iova:#x} size {size:#x}", self.role(c)),
        )
    }

    fn mmap(&self, fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Mapping> {
        self.call(
            "mmap",
            format!("{} offset {offset:#x} len {len:#x}", self.role(fd)),
        )?;
        Mapping::map(fd, offset, len)
    }
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn open_follows_the_vfio_protocol() {
    let fake = Fake::new();
    let dev = fake.open().unwrap();
    assert_eq!(
        fake.calls(),
        lines(&[
            "open /dev/vfio/vfio",
            "api_version container",
            "check_extension container 3",
            "open /dev/vfio/17",
            "group_status group",
            "group_set_container group container",
            "set_iommu container 3",
            "group_device_fd group 0000:03:00.0",
            "region_info device 0",
            "mmap device offset 0x40000 len 0x1000",
            "irq_info device 2",
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
fn type1_iommu_when_there_is_no_v2() {
    let fake = Fake::new().with(|s| s.extensions = vec![sys::TYPE1_IOMMU]);
    fake.open().unwrap();
    let calls = fake.calls();
    assert!(
        calls.contains(&"check_extension container 1".into()),
        "{calls:?}"
    );
    assert!(calls.contains(&"set_iommu container 1".into()), "{calls:?}");
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
    assert_eq!(
        calls[calls.len() - 2..],
        lines(&[
            "mmap memory offset 0x0 len 0x2000",
            "dma_map container iova 0x100000 size 0x2000"
        ])
    );
    let vaddr = fake.state().dma_vaddrs[0];
    assert_eq!(vaddr % 4096, 0);
    // SAFETY: `vaddr` is the backend's live mapping of the buffer's 0x2000 bytes.
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
        "dma_unmap container iova 0x100000 size 0x2000"
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
    let fake = Fake::new().with(|s| s.fail = Some(("dma_map", libc::ENOMEM)));
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

#[test]
fn interrupts_route_msix_vectors_to_eventfds() {
    let fake = Fake::new();
    let dev = fake.open().unwrap();
    let n0 = fake.calls().len();
    let a = EventFd::new(0).unwrap();
    let b = EventFd::new(0).unwrap();
    dev.set_irq(0, Some(&a)).unwrap();
    dev.set_irq(0, Some(&b)).unwrap();
    dev.set_irq(2, Some(&a)).unwrap();
    dev.set_irq(2, None).unwrap();
    dev.set_irq(0, None).unwrap();
    assert_eq!(
        fake.calls()[n0..],
        lines(&[
            "set_irqs device index 2 start 0 [fd]",
            "set_irqs device index 2 start 0 [fd]",
            "set_irqs device index 2 start 0 []",
            "set_irqs device index 2 start 0 [fd -1 fd]",
            "set_irqs device index 2 start 0 []",
            "set_irqs device index 2 start 0 [fd]",
            "set_irqs device index 2 start 0 []",
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
    dev.set_irq(0, Some(&EventFd::new(0).unwrap())).unwrap();
    assert_eq!(
        fake.calls().last().unwrap(),
        "set_irqs device index 1 start 0 [fd]"
    );

    let fake = Fake::new().with(|s| s.irq_counts.clear());
    let dev = fake.open().unwrap();
    let e = dev
        .set_irq(0, Some(&EventFd::new(0).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(e.ends_with("the function has neither MSI-X nor MSI"), "{e}");

    let fake = Fake::new().with(|s| s.fail = Some(("set_irqs", libc::EINVAL)));
    let dev = fake.open().unwrap();
    let e = dev
        .set_irq(0, Some(&EventFd::new(0).unwrap()))
        .unwrap_err()
        .to_string();
    assert!(
        e.ends_with("VFIO_DEVICE_SET_IRQS: Invalid argument (os error 22)"),
        "{e}"
    );
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
                s.open_errno.insert("/dev/vfio/vfio".into(), libc::ENOENT);
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
        (
            Fake::new().with(|s| s.api = 1),
            "0000:03:00.0 (vfio): the kernel's VFIO API version is 1, this driver speaks 0",
        ),
        (
            Fake::new().with(|s| s.extensions.clear()),
            "0000:03:00.0 (vfio): the VFIO container offers no type1 IOMMU (is vfio_iommu_type1 loaded?)",
        ),
        (
            Fake::new().with(|s| s.group_flags = 0),
            "0000:03:00.0 (vfio): IOMMU group 17 is not viable: every device in /sys/kernel/iommu_groups/17/devices must be bound to vfio-pci or have no driver",
        ),
        (
            Fake::new().with(|s| s.fail = Some(("set_iommu", libc::EPERM))),
            "0000:03:00.0 (vfio): VFIO_SET_IOMMU (type 3) failed: Operation not permitted (os error 1)",
        ),
        (
            Fake::new().with(|s| s.fail = Some(("group_device_fd", libc::ENODEV))),
            "0000:03:00.0 (vfio): VFIO_GROUP_GET_DEVICE_FD in IOMMU group 17 failed: No such device (os error 19)",
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
            Fake::new().with(|s| s.fail = Some(("mmap", libc::EINVAL))),
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
    fake.state()
        .open_errno
        .insert("/dev/vfio/17".into(), libc::ENOENT);
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
        s.open_errno.insert("/dev/vfio/17".into(), libc::ENOENT);
    });
    assert!(fake.error().contains("(it has no driver)"));
}

#[test]
fn the_real_kernel_without_vfio_gives_a_clear_error() {
    // On a machine without the device (CI), the real system calls fail at the first step.
    let e = VfioBackend::open("0000:ff:1f.7").unwrap_err().to_string();
    assert!(e.starts_with("0000:ff:1f.7 (vfio): "), "{e}");
}
