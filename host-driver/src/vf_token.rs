//! The VF token of a PF bound to vfio-pci.
//!
//! When vfio-pci owns an SR-IOV PF (our host driver, through VFIO) the kernel lets a VF be
//! opened only with the PF's VF token, a UUID the PF's user chose, appended to the device
//! name: `"0000:03:00.1 vf_token=<uuid>"`; and once VFs are in use the PF itself opens only
//! with that token (`vfio_pci_validate_vf_token` in drivers/vfio/pci/vfio_pci_core.c). `nicctl vfs enable` makes a random token per PF and keeps
//! it in a root-only file; every later open of the PF presents it (the first one, before
//! any VF is in use, sets it in the kernel), and `nicctl vfs list` shows it for the VMM.
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the tokens are kept, one file per PF named by its PCI address.
pub const DEFAULT_DIR: &str = "/run/vpcnic/vf-token";

/// The token files of a directory.
#[derive(Clone, Debug)]
pub struct VfTokens {
    dir: PathBuf,
}

impl Default for VfTokens {
    fn default() -> Self {
        VfTokens::new(DEFAULT_DIR)
    }
}

impl VfTokens {
    /// The tokens kept in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> VfTokens {
        VfTokens { dir: dir.into() }
    }

    /// The file of `pf`'s token.
    pub fn path(&self, pf: &str) -> PathBuf {
        self.dir.join(pf)
    }

    /// `pf`'s token, if one was made; a file that does not hold a UUID is an error naming it.
    pub fn get(&self, pf: &str) -> io::Result<Option<String>> {
        let path = self.path(pf);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim();
                if is_uuid(token) {
                    Ok(Some(token.to_string()))
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{} does not hold a VF token (a UUID); remove it and run \
                             `nicctl vfs enable` again",
                            path.display()
                        ),
                    ))
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(
                e.kind(),
                format!("cannot read {}: {e}", path.display()),
            )),
        }
    }

    /// `pf`'s token, made (random, in a file only root reads) if there is none.
    pub fn get_or_create(&self, pf: &str) -> io::Result<String> {
        if let Some(token) = self.get(pf)? {
            return Ok(token);
        }
        let named = |e: io::Error, what: &Path| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", what.display()))
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| named(e, &self.dir))?;
        let token = random_uuid()?;
        let path = self.path(pf);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| named(e, &path))?;
        writeln!(file, "{token}").map_err(|e| named(e, &path))?;
        Ok(token)
    }
}

/// Whether `s` is a UUID in its textual form (8-4-4-4-12 hex digits).
pub fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A random (version 4) UUID from the kernel's random source.
fn random_uuid() -> io::Result<String> {
    let mut b = [0u8; 16];
    let mut filled = 0;
    while filled < b.len() {
        let rest = &mut b[filled..];
        // SAFETY: the kernel writes at most `rest.len()` bytes into `rest`, which is live
        // and writable for the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vpcnic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_token_is_made_once_per_pf_readable_only_by_root() {
        let dir = temp_dir("vf-token");
        let tokens = VfTokens::new(dir.join("vf-token"));
        assert_eq!(tokens.get("0000:03:00.0").unwrap(), None);
        let a = tokens.get_or_create("0000:03:00.0").unwrap();
        assert!(is_uuid(&a), "{a}");
        assert_eq!(&a[14..15], "4", "version 4: {a}");
        assert_eq!(tokens.get_or_create("0000:03:00.0").unwrap(), a);
        assert_eq!(tokens.get("0000:03:00.0").unwrap().as_deref(), Some(&*a));
        let b = tokens.get_or_create("0000:04:00.0").unwrap();
        assert_ne!(a, b);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tokens.path("0000:03:00.0")), 0o600);
        assert_eq!(mode(&dir.join("vf-token")), 0o700);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_without_a_uuid_is_named() {
        let dir = temp_dir("vf-token-bad");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0000:03:00.0"), "not a token\n").unwrap();
        let e = VfTokens::new(&dir).get("0000:03:00.0").unwrap_err();
        assert!(
            e.to_string()
                .contains("0000:03:00.0 does not hold a VF token (a UUID)"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn uuids_are_recognised() {
        assert!(is_uuid("bd8d9d2b-5a5f-4f5a-a211-f591514ba1f3"));
        for bad in [
            "",
            "bd8d9d2b5a5f4f5aa211f591514ba1f3",
            "bd8d9d2b-5a5f-4f5a-a211-f591514ba1f",
            "gd8d9d2b-5a5f-4f5a-a211-f591514ba1f3",
        ] {
            assert!(!is_uuid(bad), "{bad}");
        }
    }
}
