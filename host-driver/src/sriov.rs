//! SR-IOV: a PF's virtual functions, created through sysfs and handed to vfio-pci.
//!
//! `nicctl vfs enable N --pf BDF` writes the PF's `sriov_numvfs` (0 first when another
//! non-zero count is set: the kernel refuses to change a non-zero count directly), then for
//! each VF (the PF's `virtfnK` links) writes `vfio-pci` to its `driver_override`, unbinds it
//! from the driver the kernel probed and writes its address to `bus/pci/drivers_probe`, which
//! binds it to vfio-pci. `nicctl vfs list` reads the same tree back.
//!
//! When the PF itself is bound to vfio-pci (our driver reaches it through VFIO), vfio-pci
//! creates VFs only when loaded with `enable_sriov=1`, and the VFs then open only with the
//! PF's VF token (see [`crate::vf_token`]).
//!
//! Every path is under a [`Sysfs`] root, `/sys` on a real machine and a temporary tree in
//! the tests, which also record every write.
use crate::error::DriverError;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The driver VFs are given to.
pub const VFIO_PCI: &str = "vfio-pci";

/// One VF as sysfs shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VfInfo {
    /// The PF's PCI address.
    pub pf: String,
    /// K of the PF's `virtfnK`.
    pub index: u32,
    /// The VF's PCI address.
    pub bdf: String,
    /// Its IOMMU group, if the IOMMU is on.
    pub iommu_group: Option<u32>,
    /// The driver bound to it.
    pub driver: Option<String>,
}

/// A sysfs tree: `/sys`, or a fake one. Writes are recorded when asked.
#[derive(Debug)]
pub struct Sysfs {
    root: PathBuf,
    journal: Option<Mutex<Vec<(String, String)>>>,
}

impl Default for Sysfs {
    fn default() -> Self {
        Sysfs::new("/sys")
    }
}

impl Sysfs {
    /// The tree at `root` (`/sys` on a real machine).
    pub fn new(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs {
            root: root.into(),
            journal: None,
        }
    }

    /// The tree at `root`, recording every write (for tests).
    pub fn recording(root: impl Into<PathBuf>) -> Sysfs {
        Sysfs {
            root: root.into(),
            journal: Some(Mutex::new(Vec::new())),
        }
    }

    /// The writes so far, as (path under the root, value).
    pub fn writes(&self) -> Vec<(String, String)> {
        self.journal
            .as_ref()
            .map(|j| j.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// `bus/pci/devices/<bdf>`.
    pub fn device(&self, bdf: &str) -> PathBuf {
        self.root.join("bus/pci/devices").join(bdf)
    }

    fn read(&self, path: &Path) -> Result<String, DriverError> {
        std::fs::read_to_string(path)
            .map(|s| s.trim().to_string())
            .map_err(|source| DriverError::Sysfs {
                action: "read",
                path: path.to_path_buf(),
                source,
            })
    }

    fn read_u32(&self, path: &Path) -> Result<u32, DriverError> {
        let text = self.read(path)?;
        text.parse().map_err(|_| DriverError::SysfsMalformed {
            path: path.to_path_buf(),
            what: format!("{text:?} is not a number"),
        })
    }

    /// One `write(2)` of `value` to an existing attribute.
    fn write(&self, path: &Path, value: &str) -> Result<(), DriverError> {
        if let Some(j) = &self.journal {
            let rel = path.strip_prefix(&self.root).unwrap_or(path);
            j.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((rel.display().to_string(), value.to_string()));
        }
        let err = |source| DriverError::Sysfs {
            action: "write",
            path: path.to_path_buf(),
            source,
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(err)?;
        io::Write::write_all(&mut f, value.as_bytes()).map_err(err)
    }

    /// The last component of the link at `path`, if it is a link.
    fn link_name(&self, path: &Path) -> Option<String> {
        let target = std::fs::read_link(path).ok()?;
        Some(target.file_name()?.to_str()?.to_string())
    }

    /// The PF's directory and `sriov_totalvfs`, or why it is not a usable PF.
    fn pf(&self, pf: &str) -> Result<(PathBuf, u32), DriverError> {
        let dir = self.device(pf);
        if !dir.exists() {
            return Err(DriverError::PfNotFound {
                pf: pf.to_string(),
                path: dir,
            });
        }
        let total = dir.join("sriov_totalvfs");
        if !total.exists() {
            return Err(DriverError::NotSriov {
                pf: pf.to_string(),
                path: total,
            });
        }
        let total = self.read_u32(&total)?;
        Ok((dir, total))
    }

    /// The VF behind `virtfn<index>` of the PF at `dir`, if the link exists.
    fn vf(&self, pf: &str, dir: &Path, index: u32) -> Option<VfInfo> {
        let bdf = self.link_name(&dir.join(format!("virtfn{index}")))?;
        let vf_dir = self.device(&bdf);
        Some(VfInfo {
            pf: pf.to_string(),
            index,
            iommu_group: self
                .link_name(&vf_dir.join("iommu_group"))
                .and_then(|g| g.parse().ok()),
            driver: self.link_name(&vf_dir.join("driver")),
            bdf,
        })
    }

    /// The VFs of the PF at `dir`, by index.
    fn vfs_of(&self, pf: &str, dir: &Path) -> Result<Vec<VfInfo>, DriverError> {
        let entries = std::fs::read_dir(dir).map_err(|source| DriverError::Sysfs {
            action: "list",
            path: dir.to_path_buf(),
            source,
        })?;
        let mut indexes: Vec<u32> = entries
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("virtfn")?
                    .parse()
                    .ok()
            })
            .collect();
        indexes.sort_unstable();
        Ok(indexes
            .into_iter()
            .filter_map(|k| self.vf(pf, dir, k))
            .collect())
    }
}

/// The driver the PF at `pf` is bound to, if any.
pub fn pf_driver(sys: &Sysfs, pf: &str) -> Option<String> {
    sys.link_name(&sys.device(pf).join("driver"))
}

/// Creates `count` VFs on `pf` and binds each to vfio-pci; returns them.
pub fn enable(sys: &Sysfs, pf: &str, count: u32) -> Result<Vec<VfInfo>, DriverError> {
    let (dir, total) = sys.pf(pf)?;
    if count > 0 && pf_driver(sys, pf).as_deref() == Some(VFIO_PCI) {
        // vfio-pci's sriov_configure refuses (ENOENT) unless this is set.
        let param = sys.root.join("module/vfio_pci/parameters/enable_sriov");
        let set = std::fs::read_to_string(&param).is_ok_and(|v| v.trim() == "Y");
        if !set {
            return Err(DriverError::VfioPciWithoutSriov {
                pf: pf.to_string(),
                path: param,
            });
        }
    }
    if count > total {
        return Err(DriverError::TooManyVfs {
            pf: pf.to_string(),
            requested: count,
            total,
        });
    }
    let numvfs = dir.join("sriov_numvfs");
    let current = sys.read_u32(&numvfs)?;
    if current != count {
        if current != 0 {
            sys.write(&numvfs, "0")?;
        }
        if count != 0 {
            sys.write(&numvfs, &count.to_string())?;
        }
    }
    let probe = sys.root.join("bus/pci/drivers_probe");
    let mut vfs = Vec::new();
    for index in 0..count {
        let Some(vf) = sys.vf(pf, &dir, index) else {
            return Err(DriverError::MissingVf {
                pf: pf.to_string(),
                count,
                index,
                path: dir.join(format!("virtfn{index}")),
            });
        };
        let vf_dir = sys.device(&vf.bdf);
        sys.write(&vf_dir.join("driver_override"), VFIO_PCI)?;
        if vf.driver.as_deref() != Some(VFIO_PCI) {
            if vf.driver.is_some() {
                sys.write(&vf_dir.join("driver/unbind"), &vf.bdf)?;
            }
            sys.write(&probe, &vf.bdf)?;
        }
        // Read back: on a real machine the probe bound it to vfio-pci.
        vfs.push(sys.vf(pf, &dir, index).unwrap_or(vf));
    }
    Ok(vfs)
}

/// The VFs of `pf`, or of every SR-IOV PF.
pub fn list(sys: &Sysfs, pf: Option<&str>) -> Result<Vec<VfInfo>, DriverError> {
    if let Some(pf) = pf {
        let (dir, _) = sys.pf(pf)?;
        return sys.vfs_of(pf, &dir);
    }
    let devices = sys.root.join("bus/pci/devices");
    let entries = std::fs::read_dir(&devices).map_err(|source| DriverError::Sysfs {
        action: "list",
        path: devices.clone(),
        source,
    })?;
    let mut pfs: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|bdf| sys.device(bdf).join("sriov_totalvfs").exists())
        .collect();
    pfs.sort();
    let mut out = Vec::new();
    for pf in pfs {
        out.extend(sys.vfs_of(&pf, &sys.device(&pf))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::sync::atomic::{AtomicU32, Ordering};

    const PF: &str = "0000:03:00.0";

    /// A fake sysfs in a temporary directory, removed on drop.
    struct Tree(PathBuf);

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    impl Tree {
        fn new() -> Tree {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "vpcnic-sysfs-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let t = Tree(dir);
            t.file("bus/pci/drivers_probe", "");
            for d in ["ixgbevf", VFIO_PCI] {
                t.file(&format!("bus/pci/drivers/{d}/unbind"), "");
            }
            t
        }

        fn file(&self, rel: &str, text: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }

        fn link(&self, rel: &str, target: &str) {
            let p = self.0.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            symlink(target, p).unwrap();
        }

        fn read(&self, rel: &str) -> String {
            std::fs::read_to_string(self.0.join(rel)).unwrap()
        }

        /// A PF with `total` possible VFs, `numvfs` set, and these VFs (as the kernel would
        /// have created them): (address, IOMMU group, driver).
        fn pf(&self, pf: &str, total: u32, numvfs: u32, vfs: &[(&str, u32, Option<&str>)]) {
            let dev = format!("bus/pci/devices/{pf}");
            self.file(&format!("{dev}/sriov_totalvfs"), &format!("{total}\n"));
            self.file(&format!("{dev}/sriov_numvfs"), &format!("{numvfs}\n"));
            self.link(
                &format!("{dev}/iommu_group"),
                "../../../kernel/iommu_groups/5",
            );
            for (k, (bdf, group, driver)) in vfs.iter().enumerate() {
                self.link(&format!("{dev}/virtfn{k}"), &format!("../{bdf}"));
                let vf = format!("bus/pci/devices/{bdf}");
                self.file(&format!("{vf}/driver_override"), "(null)\n");
                self.link(
                    &format!("{vf}/iommu_group"),
                    &format!("../../../kernel/iommu_groups/{group}"),
                );
                if let Some(d) = driver {
                    // Relative to bus/pci/devices/<vf>: ../../drivers/<d>.
                    self.link(&format!("{vf}/driver"), &format!("../../drivers/{d}"));
                }
            }
        }

        fn sysfs(&self) -> Sysfs {
            Sysfs::recording(&self.0)
        }
    }

    fn w(path: &str, value: &str) -> (String, String) {
        (path.to_string(), value.to_string())
    }

    #[test]
    fn enable_writes_numvfs_then_binds_each_vf_to_vfio_pci() {
        let t = Tree::new();
        t.pf(
            PF,
            8,
            0,
            &[
                ("0000:03:10.0", 40, Some("ixgbevf")),
                ("0000:03:10.2", 41, None),
            ],
        );
        let sys = t.sysfs();
        let vfs = enable(&sys, PF, 2).unwrap();
        assert_eq!(
            sys.writes(),
            vec![
                w("bus/pci/devices/0000:03:00.0/sriov_numvfs", "2"),
                w("bus/pci/devices/0000:03:10.0/driver_override", "vfio-pci"),
                w("bus/pci/devices/0000:03:10.0/driver/unbind", "0000:03:10.0"),
                w("bus/pci/drivers_probe", "0000:03:10.0"),
                w("bus/pci/devices/0000:03:10.2/driver_override", "vfio-pci"),
                w("bus/pci/drivers_probe", "0000:03:10.2"),
            ]
        );
        // The writes reached the files (through the driver link for unbind).
        assert_eq!(t.read("bus/pci/devices/0000:03:00.0/sriov_numvfs"), "2");
        assert_eq!(t.read("bus/pci/drivers/ixgbevf/unbind"), "0000:03:10.0");
        assert_eq!(
            t.read("bus/pci/devices/0000:03:10.2/driver_override"),
            "vfio-pci"
        );
        assert_eq!(
            vfs.iter()
                .map(|v| (v.index, v.bdf.as_str(), v.iommu_group))
                .collect::<Vec<_>>(),
            [(0, "0000:03:10.0", Some(40)), (1, "0000:03:10.2", Some(41))]
        );
    }

    #[test]
    fn a_pf_owned_by_vfio_pci_needs_its_enable_sriov_parameter() {
        let t = Tree::new();
        t.pf(PF, 8, 0, &[("0000:03:10.0", 40, None)]);
        t.link(
            &format!("bus/pci/devices/{PF}/driver"),
            "../../drivers/vfio-pci",
        );
        assert_eq!(pf_driver(&t.sysfs(), PF).as_deref(), Some(VFIO_PCI));
        let param = "module/vfio_pci/parameters/enable_sriov";
        t.file(param, "N\n");
        let sys = t.sysfs();
        let e = enable(&sys, PF, 1).unwrap_err().to_string();
        let path = t.0.join(param);
        assert_eq!(
            e,
            format!(
                "0000:03:00.0 is bound to vfio-pci, which creates VFs only when loaded with \
                 enable_sriov=1 ({} is not Y): `echo Y > {}` (or `modprobe vfio-pci \
                 enable_sriov=1`)",
                path.display(),
                path.display()
            )
        );
        assert!(sys.writes().is_empty(), "nothing written");
        t.file(param, "Y\n");
        let sys = t.sysfs();
        assert_eq!(enable(&sys, PF, 1).unwrap().len(), 1);
        assert_eq!(
            sys.writes()[0],
            w("bus/pci/devices/0000:03:00.0/sriov_numvfs", "1")
        );
    }

    #[test]
    fn a_different_count_is_reset_to_zero_first_and_bound_vfs_are_left_alone() {
        let t = Tree::new();
        t.pf(PF, 8, 4, &[("0000:03:10.0", 40, Some(VFIO_PCI))]);
        let sys = t.sysfs();
        enable(&sys, PF, 1).unwrap();
        assert_eq!(
            sys.writes(),
            vec![
                w("bus/pci/devices/0000:03:00.0/sriov_numvfs", "0"),
                w("bus/pci/devices/0000:03:00.0/sriov_numvfs", "1"),
                w("bus/pci/devices/0000:03:10.0/driver_override", "vfio-pci"),
            ]
        );
        // The same count again: sriov_numvfs is not touched.
        let t = Tree::new();
        t.pf(PF, 8, 1, &[("0000:03:10.0", 40, Some(VFIO_PCI))]);
        let sys = t.sysfs();
        enable(&sys, PF, 1).unwrap();
        assert_eq!(
            sys.writes(),
            vec![w(
                "bus/pci/devices/0000:03:10.0/driver_override",
                "vfio-pci"
            )]
        );
        // Zero VFs: only the reset.
        let t = Tree::new();
        t.pf(PF, 8, 3, &[]);
        let sys = t.sysfs();
        assert_eq!(enable(&sys, PF, 0).unwrap(), []);
        assert_eq!(
            sys.writes(),
            vec![w("bus/pci/devices/0000:03:00.0/sriov_numvfs", "0")]
        );
    }

    #[test]
    fn errors_name_the_pf_and_the_limit() {
        let t = Tree::new();
        t.pf(PF, 4, 0, &[]);
        t.file("bus/pci/devices/0000:00:1f.0/vendor", "0x8086\n");
        let sys = t.sysfs();
        assert_eq!(
            enable(&sys, PF, 5).unwrap_err().to_string(),
            "0000:03:00.0 supports at most 4 VFs (sriov_totalvfs), 5 requested"
        );
        let e = enable(&sys, "0000:09:00.0", 1).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "PF 0000:09:00.0 not found: {}/bus/pci/devices/0000:09:00.0 does not exist; \
                 `lspci -D` lists the PCI addresses",
                t.0.display()
            )
        );
        let e = list(&sys, Some("0000:00:1f.0")).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "0000:00:1f.0 is not SR-IOV capable: it has no \
                 {}/bus/pci/devices/0000:00:1f.0/sriov_totalvfs (is this the PF, and is its \
                 driver loaded?)",
                t.0.display()
            )
        );
        // The kernel did not create the VF links.
        let e = enable(&sys, PF, 2).unwrap_err().to_string();
        assert!(
            e.ends_with("virtfn0 is missing: the kernel did not create VF 0"),
            "{e}"
        );
        assert_eq!(
            sys.writes(),
            vec![w("bus/pci/devices/0000:03:00.0/sriov_numvfs", "2")]
        );
    }

    #[test]
    fn a_missing_attribute_is_named() {
        let t = Tree::new();
        t.pf(PF, 4, 0, &[("0000:03:10.0", 40, None)]);
        std::fs::remove_file(t.0.join("bus/pci/drivers_probe")).unwrap();
        let e = enable(&t.sysfs(), PF, 1).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cannot write {}/bus/pci/drivers_probe: No such file or directory (os error 2)",
                t.0.display()
            )
        );
        let e = DriverError::Sysfs {
            action: "write",
            path: "/sys/x".into(),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            e.to_string(),
            "cannot write /sys/x: Permission denied (os error 13) (run nicctl as root)"
        );
    }

    #[test]
    fn list_shows_every_pf_s_vfs_in_order() {
        let t = Tree::new();
        let many: Vec<(String, u32, Option<&str>)> = (0..11)
            .map(|k| {
                (
                    format!("0000:04:{:02x}.0", 0x10 + k),
                    60 + k,
                    Some(VFIO_PCI),
                )
            })
            .collect();
        let many: Vec<(&str, u32, Option<&str>)> =
            many.iter().map(|(b, g, d)| (b.as_str(), *g, *d)).collect();
        t.pf("0000:04:00.0", 16, 11, &many);
        t.pf(
            PF,
            8,
            2,
            &[
                ("0000:03:10.0", 40, Some(VFIO_PCI)),
                ("0000:03:10.2", 41, None),
            ],
        );
        let sys = t.sysfs();
        let all = list(&sys, None).unwrap();
        assert_eq!(all.len(), 13);
        assert_eq!((all[0].pf.as_str(), all[0].index), (PF, 0));
        let idx: Vec<u32> = all[2..].iter().map(|v| v.index).collect();
        assert_eq!(idx, (0..11).collect::<Vec<_>>(), "virtfn10 after virtfn9");
        let only = list(&sys, Some(PF)).unwrap();
        let seen: Vec<_> = only
            .iter()
            .map(|v| (v.index, v.bdf.as_str(), v.iommu_group, v.driver.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (0, "0000:03:10.0", Some(40), Some("vfio-pci")),
                (1, "0000:03:10.2", Some(41), None)
            ]
        );
        assert!(sys.writes().is_empty(), "list writes nothing");
    }
}
