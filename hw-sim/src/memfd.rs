//! Shared memory backed by a memfd: the file a VM's memory (or a driver's DMA buffers) lives
//! in, plus the process's own mapping of it.
//!
//! The file is what gets handed to [`crate::FunctionPort::dma_map`], as a VMM hands a memory
//! fd to VFIO or vfio-user; the [`GuestMemoryMmap`] is how the owner reads and writes the same
//! pages. Both mappings are `MAP_SHARED`, so each side sees the other's stores.
//!
//! The file is sealed against shrinking (`F_SEAL_SHRINK`): a device that maps it (`nic-sim`,
//! another process) would take SIGBUS on its next access to pages cut off after the mapping,
//! and die with every function it serves. The vfio-user server refuses a `DMA_MAP` of a file
//! without that seal ([`check_shrink_seal`]); growing stays allowed, it cannot hurt a mapping.
use crate::error::SimError;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use vm_memory::{FileOffset, GuestAddress, GuestMemoryMmap};

/// A memfd of fixed size and the owner's mapping of it at a chosen guest address.
#[derive(Debug)]
pub struct SharedMemory {
    file: File,
    mem: GuestMemoryMmap,
    base: u64,
    size: usize,
}

impl SharedMemory {
    /// A zero-filled memfd of `size` bytes named `name` (shown in /proc/PID/maps), sealed
    /// against shrinking, mapped at guest address `base` of [`SharedMemory::mem`]. Offset `o`
    /// of the file is guest address `base + o`.
    pub fn new(name: &str, base: u64, size: usize) -> Result<SharedMemory, SimError> {
        let cname = CString::new(name)
            .map_err(|_| SimError::Config(format!("memfd name {name:?} contains NUL")))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call; the flags
        // are valid for memfd_create.
        let fd = unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(SimError::io(
                format!("memfd_create({name})"),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: memfd_create just returned this descriptor and nothing else owns it.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        file.set_len(size as u64)
            .map_err(|e| SimError::io(format!("sizing memfd {name} to {size} bytes"), e))?;
        // SAFETY: F_ADD_SEALS takes an int argument and touches no memory of ours; `file`
        // owns the descriptor for the length of the call.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, libc::F_SEAL_SHRINK) } < 0 {
            return Err(SimError::io(
                format!("sealing memfd {name} against shrinking"),
                std::io::Error::last_os_error(),
            ));
        }
        let fo = FileOffset::new(
            file.try_clone()
                .map_err(|e| SimError::io(format!("duplicating memfd {name}"), e))?,
            0,
        );
        let mem = GuestMemoryMmap::from_ranges_with_files([(GuestAddress(base), size, Some(fo))])
            .map_err(|e| {
            SimError::io(format!("mapping memfd {name}"), std::io::Error::other(e))
        })?;
        Ok(SharedMemory {
            file,
            mem,
            base,
            size,
        })
    }

    /// The memfd, to hand to `dma_map`.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The owner's view of the memory.
    pub fn mem(&self) -> &GuestMemoryMmap {
        &self.mem
    }

    /// The guest address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Checks that `file` is sealed against shrinking, as a file must be before a device maps
/// it: `Err` says why it is not, for the refusal's message.
pub fn check_shrink_seal(file: &File) -> Result<(), String> {
    // SAFETY: F_GET_SEALS takes no argument and touches no memory of ours; `file` owns the
    // descriptor for the length of the call.
    let seals = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 {
        return Err(format!(
            "the file has no seals ({}): only a memfd sealed with F_SEAL_SHRINK can be \
             mapped, a file that shrank under the mapping would crash the device",
            std::io::Error::last_os_error()
        ));
    }
    if seals & libc::F_SEAL_SHRINK == 0 {
        return Err(
            "the file is not sealed with F_SEAL_SHRINK: it could shrink under the \
             mapping and crash the device"
                .into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;
    use vm_memory::Bytes;

    #[test]
    fn the_file_and_the_mapping_are_the_same_bytes() {
        let shm = SharedMemory::new("memfd-test", 0x1000, 8192).unwrap();
        assert_eq!(shm.file().metadata().unwrap().len(), 8192);
        shm.mem()
            .write_slice(b"hello", GuestAddress(0x1010))
            .unwrap();
        let mut buf = [0u8; 5];
        shm.file().read_exact_at(&mut buf, 0x10).unwrap();
        assert_eq!(&buf, b"hello");
        assert!(shm
            .mem()
            .write_slice(b"x", GuestAddress(0x1000 + 8192))
            .is_err());
    }

    #[test]
    fn the_memfd_cannot_shrink() {
        // A device maps the file: pages cut off after the mapping would be SIGBUS on its
        // next access, so the file is sealed against shrinking.
        let shm = SharedMemory::new("memfd-seal-test", 0, 8192).unwrap();
        let e = shm.file().set_len(4096).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
        assert_eq!(shm.file().metadata().unwrap().len(), 8192);
    }
}
