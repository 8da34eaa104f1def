//! The DMA engine: one address space per function, each its own IOMMU domain.
//!
//! The host maps ranges of a file (a VM's memory memfd, the driver's DMA buffers) into a
//! function's space as `VFIO_IOMMU_MAP_DMA` or vfio-user `DMA_MAP` would. The simulator mmaps
//! the file `MAP_SHARED` through vm-memory, so the device sees the host's stores and the host
//! sees the device's. Every access is checked against what is mapped *before* any byte moves:
//! an access that is not wholly inside mapped memory fails with [`DmaError`] and touches
//! nothing, as an IOMMU fault would. It never crashes the simulator.
use crate::error::SimError;
use nic_firmware::{DmaError, Function};
use std::fs::File;
use std::sync::{Arc, RwLock};
use vm_memory::{
    Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion,
    GuestRegionMmap,
};

/// The IOMMU page: mappings start, end and sit in their file on page boundaries.
pub(crate) const PAGE_SIZE: u64 = 4096;

/// One function's DMA address space.
pub(crate) struct DmaSpace {
    function: Function,
    /// Replaced whole on map and unmap; the device thread holds the read lock for the length
    /// of one access, so an unmap never pulls memory from under a transfer.
    mem: RwLock<GuestMemoryMmap>,
}

impl DmaSpace {
    /// An empty space: every access faults until the host maps something.
    pub(crate) fn new(function: Function) -> Self {
        DmaSpace {
            function,
            mem: RwLock::new(GuestMemoryMmap::new()),
        }
    }

    fn map_err(&self, iova: u64, size: u64, reason: impl Into<String>) -> SimError {
        SimError::DmaMap {
            function: self.function,
            iova,
            size,
            reason: reason.into(),
        }
    }

    /// Maps `[iova, iova + size)` to `file` from `file_offset`. All three must be multiples
    /// of [`PAGE_SIZE`], the range must not overlap an existing mapping, and the file must
    /// be long enough (touching an mmap past the end of its file would be SIGBUS).
    pub(crate) fn map(
        &self,
        iova: u64,
        size: u64,
        file: &File,
        file_offset: u64,
    ) -> Result<(), SimError> {
        if size == 0 {
            return Err(self.map_err(iova, size, "size is zero"));
        }
        if !iova.is_multiple_of(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
            || !file_offset.is_multiple_of(PAGE_SIZE)
        {
            return Err(self.map_err(
                iova,
                size,
                format!(
                    "iova, size and file offset ({file_offset:#x}) must be multiples of the \
                     {PAGE_SIZE:#x}-byte IOMMU page"
                ),
            ));
        }
        let Some(last) = iova.checked_add(size - 1) else {
            return Err(self.map_err(iova, size, "range wraps past the end of the IOVA space"));
        };
        let len = usize::try_from(size)
            .map_err(|_| self.map_err(iova, size, "size does not fit this host's address space"))?;
        let file_len = file
            .metadata()
            .map_err(|e| self.map_err(iova, size, format!("cannot stat the file: {e}")))?
            .len();
        if file_offset.checked_add(size).is_none_or(|e| e > file_len) {
            return Err(self.map_err(
                iova,
                size,
                format!(
                    "file offset {file_offset:#x} + size runs past the end of the \
                     {file_len:#x}-byte file"
                ),
            ));
        }
        let mut mem = self.mem.write().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = mem.iter().find(|r| {
            let r_start = r.start_addr().0;
            let r_last = r.last_addr().0;
            r_start <= last && iova <= r_last
        }) {
            return Err(self.map_err(
                iova,
                size,
                format!(
                    "overlaps the mapping at [{:#x}, +{:#x})",
                    r.start_addr().0,
                    r.len()
                ),
            ));
        }
        let file = file
            .try_clone()
            .map_err(|e| self.map_err(iova, size, format!("cannot duplicate the fd: {e}")))?;
        let region = GuestRegionMmap::from_range(
            GuestAddress(iova),
            len,
            Some(FileOffset::new(file, file_offset)),
        )
        .map_err(|e| self.map_err(iova, size, format!("mmap failed: {e}")))?;
        let new = mem
            .insert_region(Arc::new(region))
            .map_err(|e| self.map_err(iova, size, e.to_string()))?;
        *mem = new;
        Ok(())
    }

    /// Unmaps every mapping inside `[iova, iova + size)`. Like VFIO, an unmap must cover
    /// whole mappings: one that cuts a mapping, or finds none, is an error and changes
    /// nothing.
    pub(crate) fn unmap(&self, iova: u64, size: u64) -> Result<(), SimError> {
        let err = |reason: String| SimError::DmaUnmap {
            function: self.function,
            iova,
            size,
            reason,
        };
        if size == 0 {
            return Err(err("size is zero".into()));
        }
        let last = iova
            .checked_add(size - 1)
            .ok_or_else(|| err("range wraps past the end of the IOVA space".into()))?;
        let mut mem = self.mem.write().unwrap_or_else(|p| p.into_inner());
        let mut victims = Vec::new();
        for r in mem.iter() {
            let (r_start, r_last) = (r.start_addr().0, r.last_addr().0);
            if r_last < iova || r_start > last {
                continue;
            }
            if r_start < iova || r_last > last {
                return Err(err(format!(
                    "would cut the mapping at [{r_start:#x}, +{:#x})",
                    r.len()
                )));
            }
            victims.push((r.start_addr(), r.len()));
        }
        if victims.is_empty() {
            return Err(err("nothing is mapped there".into()));
        }
        let mut new = mem.clone();
        for (base, len) in victims {
            new = new
                .remove_region(base, len)
                .map_err(|e| err(e.to_string()))?
                .0;
        }
        *mem = new;
        Ok(())
    }

    /// Reads `buf.len()` bytes at `iova`; fails, reading nothing, unless all are mapped.
    pub(crate) fn read(&self, iova: u64, buf: &mut [u8]) -> Result<(), DmaError> {
        if buf.is_empty() {
            return Ok(());
        }
        let mem = self.mem.read().unwrap_or_else(|p| p.into_inner());
        if !in_range(&mem, iova, buf.len()) {
            return Err(DmaError);
        }
        mem.read_slice(buf, GuestAddress(iova))
            .map_err(|_| DmaError)
    }

    /// Writes `data` at `iova`; fails, writing nothing, unless all of it is mapped.
    pub(crate) fn write(&self, iova: u64, data: &[u8]) -> Result<(), DmaError> {
        if data.is_empty() {
            return Ok(());
        }
        let mem = self.mem.read().unwrap_or_else(|p| p.into_inner());
        if !in_range(&mem, iova, data.len()) {
            return Err(DmaError);
        }
        mem.write_slice(data, GuestAddress(iova))
            .map_err(|_| DmaError)
    }
}

/// True when `[iova, iova + len)` is wholly mapped (it may span adjacent mappings).
fn in_range(mem: &GuestMemoryMmap, iova: u64, len: usize) -> bool {
    iova.checked_add(len as u64).is_some() && mem.check_range(GuestAddress(iova), len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfd::SharedMemory;

    const IOVA: u64 = 0x10_0000;

    fn space_with_memfd(size: usize) -> (DmaSpace, SharedMemory) {
        let shm = SharedMemory::new("dma-test", 0, size).unwrap();
        let space = DmaSpace::new(Function::Vf(0));
        space.map(IOVA, size as u64, shm.file(), 0).unwrap();
        (space, shm)
    }

    #[test]
    fn device_and_host_share_mapped_memory() {
        let (space, shm) = space_with_memfd(2 * PAGE_SIZE as usize);
        shm.mem()
            .write_slice(b"from host", GuestAddress(0x100))
            .unwrap();
        let mut buf = [0u8; 9];
        space.read(IOVA + 0x100, &mut buf).unwrap();
        assert_eq!(&buf, b"from host");
        space.write(IOVA + 0x1ffc, b"dev!").unwrap();
        let mut back = [0u8; 4];
        shm.mem()
            .read_slice(&mut back, GuestAddress(0x1ffc))
            .unwrap();
        assert_eq!(&back, b"dev!");
    }

    #[test]
    fn straddling_the_end_faults_and_moves_nothing() {
        let (space, shm) = space_with_memfd(PAGE_SIZE as usize);
        assert_eq!(space.write(IOVA + 0xffe, b"abcd"), Err(DmaError));
        let mut back = [0u8; 2];
        shm.mem()
            .read_slice(&mut back, GuestAddress(0xffe))
            .unwrap();
        assert_eq!(
            back,
            [0, 0],
            "a faulting write must not write its first part"
        );
        let mut buf = [0u8; 4];
        assert_eq!(space.read(IOVA + 0xffe, &mut buf), Err(DmaError));
        assert_eq!(space.read(IOVA - 2, &mut buf), Err(DmaError));
    }

    #[test]
    fn unmapped_iovas_fault() {
        let (space, _shm) = space_with_memfd(PAGE_SIZE as usize);
        let mut buf = [0u8; 4];
        assert_eq!(space.read(0, &mut buf), Err(DmaError));
        assert_eq!(space.read(u64::MAX - 1, &mut buf), Err(DmaError));
        assert_eq!(space.write(IOVA + PAGE_SIZE, &buf), Err(DmaError));
        assert!(space.read(IOVA, &mut buf).is_ok());
    }

    #[test]
    fn unmap_removes_access() {
        let (space, _shm) = space_with_memfd(PAGE_SIZE as usize);
        let e = space.unmap(IOVA, PAGE_SIZE / 2).unwrap_err();
        assert!(e.to_string().contains("cut"), "{e}");
        assert!(space.unmap(IOVA + PAGE_SIZE, PAGE_SIZE).is_err());
        space.unmap(IOVA, PAGE_SIZE).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(space.read(IOVA, &mut buf), Err(DmaError));
        // The range can be mapped again.
        let shm = SharedMemory::new("again", 0, PAGE_SIZE as usize).unwrap();
        space.map(IOVA, PAGE_SIZE, shm.file(), 0).unwrap();
        assert!(space.read(IOVA, &mut buf).is_ok());
    }

    #[test]
    fn bad_maps_are_refused_by_name() {
        let (space, shm) = space_with_memfd(2 * PAGE_SIZE as usize);
        let e = space
            .map(IOVA + PAGE_SIZE, PAGE_SIZE, shm.file(), 0)
            .unwrap_err();
        assert!(e.to_string().contains("overlaps"), "{e}");
        assert!(
            e.to_string().contains("VF 0") && e.to_string().contains("0x101000"),
            "{e}"
        );
        let e = space.map(0x123, PAGE_SIZE, shm.file(), 0).unwrap_err();
        assert!(e.to_string().contains("multiples"), "{e}");
        let e = space.map(0, 4 * PAGE_SIZE, shm.file(), 0).unwrap_err();
        assert!(e.to_string().contains("past the end"), "{e}");
        let e = space
            .map(u64::MAX - PAGE_SIZE + 1, 2 * PAGE_SIZE, shm.file(), 0)
            .unwrap_err();
        assert!(e.to_string().contains("wraps"), "{e}");
        assert!(space.map(0, 0, shm.file(), 0).is_err());
    }

    #[test]
    fn accesses_may_span_adjacent_mappings() {
        let a = SharedMemory::new("a", 0, PAGE_SIZE as usize).unwrap();
        let b = SharedMemory::new("b", 0, PAGE_SIZE as usize).unwrap();
        let space = DmaSpace::new(Function::Pf);
        space.map(0, PAGE_SIZE, a.file(), 0).unwrap();
        space.map(PAGE_SIZE, PAGE_SIZE, b.file(), 0).unwrap();
        space.write(PAGE_SIZE - 2, b"wxyz").unwrap();
        let mut buf = [0u8; 2];
        b.mem().read_slice(&mut buf, GuestAddress(0)).unwrap();
        assert_eq!(&buf, b"yz");
    }
}
