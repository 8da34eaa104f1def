//! A vpcnic PF served over vfio-user (`nicctl --device vfio-user:PATH`): today that is
//! `nic-sim --socket PATH`, the simulator in its own process, driven exactly as a VFIO
//! device is: BAR0 through `REGION_READ`/`REGION_WRITE` of region 0, DMA memory shared by
//! passing each [`DmaMemory`]'s memfd with `DMA_MAP`, interrupts as eventfds passed with
//! `SET_IRQS` on the MSI-X index.
//!
//! The `vfio_user` 0.1 client does not read the error flag of a reply, so this backend
//! checks what the device would refuse (alignment, bounds, page granularity) before
//! sending; the server reports what it still refuses on its stderr.
use crate::device::Device;
use crate::dma::{DmaMemory, PAGE_SIZE};
use crate::error::{DriverError, Result};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_MSIX_IRQ_INDEX,
};
use vfio_user::Client;
use vmm_sys_util::eventfd::EventFd;

const BAR0: u32 = VFIO_PCI_BAR0_REGION_INDEX;
const MSIX: u32 = VFIO_PCI_MSIX_IRQ_INDEX;

/// A PF reached through a vfio-user socket.
pub struct VfioUserBackend {
    client: Mutex<Client>,
    path: PathBuf,
    bar0_size: u64,
    msix_vectors: u32,
}

impl VfioUserBackend {
    /// Connects to the vfio-user server at `path` and reads its BAR0 and MSI-X layout.
    pub fn open(path: &Path) -> Result<VfioUserBackend> {
        let fail = |reason: String| DriverError::Backend {
            device: format!("{} (vfio-user)", path.display()),
            reason,
        };
        if !path.exists() {
            return Err(fail(
                "no such socket (is `nic-sim --socket PATH` running?)".into(),
            ));
        }
        let mut client = Client::new(path).map_err(|e| fail(format!("cannot connect: {e}")))?;
        let bar0_size = client
            .region(BAR0)
            .map(|r| r.size)
            .filter(|&s| s > 0)
            .ok_or_else(|| fail("the device has no BAR0 region".into()))?;
        let msix_vectors = client
            .get_irq_info(MSIX)
            .map_err(|e| fail(format!("cannot read the MSI-X interrupt info: {e}")))?
            .count;
        Ok(VfioUserBackend {
            client: Mutex::new(client),
            path: path.to_path_buf(),
            bar0_size,
            msix_vectors,
        })
    }

    fn client(&self) -> MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, access: &'static str, offset: u32) -> Result<()> {
        if !offset.is_multiple_of(4) {
            return Err(DriverError::register(
                self,
                access,
                offset,
                "offset is not 4-byte aligned",
            ));
        }
        if u64::from(offset) >= self.bar0_size {
            return Err(DriverError::register(
                self,
                access,
                offset,
                format!("offset is outside the {:#x}-byte BAR0", self.bar0_size),
            ));
        }
        Ok(())
    }
}

impl Device for VfioUserBackend {
    fn describe(&self) -> String {
        format!("{} (vfio-user)", self.path.display())
    }

    fn bar0_size(&self) -> u64 {
        self.bar0_size
    }

    fn read32(&self, offset: u32) -> Result<u32> {
        self.check("read", offset)?;
        let mut data = [0u8; 4];
        self.client()
            .region_read(BAR0, u64::from(offset), &mut data)
            .map_err(|e| DriverError::register(self, "read", offset, e))?;
        Ok(u32::from_le_bytes(data))
    }

    fn write32(&self, offset: u32, value: u32) -> Result<()> {
        self.check("write", offset)?;
        self.client()
            .region_write(BAR0, u64::from(offset), &value.to_le_bytes())
            .map_err(|e| DriverError::register(self, "write", offset, e))
    }

    fn dma_map(&self, mem: &DmaMemory) -> Result<()> {
        if mem.size() == 0
            || !mem.iova().is_multiple_of(PAGE_SIZE)
            || !mem.size().is_multiple_of(PAGE_SIZE)
        {
            return Err(DriverError::dma_map(self, "map", mem, "not whole pages"));
        }
        self.client()
            .dma_map(0, mem.iova(), mem.size(), mem.file().as_raw_fd())
            .map_err(|e| DriverError::dma_map(self, "map", mem, e))
    }

    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()> {
        self.client()
            .dma_unmap(mem.iova(), mem.size())
            .map_err(|e| DriverError::dma_map(self, "unmap", mem, e))
    }

    fn set_irq(&self, vector: u32, fd: Option<&EventFd>) -> Result<()> {
        let irq_err = |reason: String| DriverError::Irq {
            device: self.describe(),
            vector,
            reason,
        };
        if vector >= self.msix_vectors {
            return Err(irq_err(format!(
                "the device has {} MSI-X vectors",
                self.msix_vectors
            )));
        }
        match fd {
            Some(fd) => self.client().set_irqs(
                MSIX,
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                vector,
                1,
                &[fd.as_raw_fd()],
            ),
            // Disabling the MSI-X index unwires its vectors (the device has one).
            None => self.client().set_irqs(
                MSIX,
                VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                0,
                &[],
            ),
        }
        .map_err(|e| irq_err(e.to_string()))
    }
}

impl Drop for VfioUserBackend {
    fn drop(&mut self) {
        let _ = self.client().shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_is_named() {
        let Err(err) = VfioUserBackend::open(Path::new("/nonexistent/nic.sock")) else {
            panic!("a missing socket opened");
        };
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/nic.sock"), "{msg}");
        assert!(msg.contains("nic-sim --socket"), "{msg}");
    }
}
