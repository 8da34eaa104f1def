//! Shared memory backed by a memfd: the file a VM's memory (or a driver's DMA buffers) lives
//! in, plus the process's own mapping of it.
//!
//! The file is what gets handed to [`crate::FunctionPort::dma_map`], as a VMM hands a memory
//! fd to VFIO or vfio-user; the [`GuestMemoryMmap`] is how the owner reads and writes the same
//! pages. Both mappings are `MAP_SHARED`, so each side sees the other's stores.
use crate::error::SimError;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{FromRawFd, OwnedFd};
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
    /// A zero-filled memfd of `size` bytes named `name` (shown in /proc/PID/maps), mapped at
    /// guest address `base` of [`SharedMemory::mem`]. Offset `o` of the file is guest
    /// address `base + o`.
    pub fn new(name: &str, base: u64, size: usize) -> Result<SharedMemory, SimError> {
        let cname = CString::new(name)
            .map_err(|_| SimError::Config(format!("memfd name {name:?} contains NUL")))?;
        // SAFETY: `cname` is a valid NUL-terminated string that outlives the call; the flags
        // are valid for memfd_create.
        let fd = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
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
}
