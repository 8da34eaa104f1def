//! The VM side of a VF served by `nic-sim`: a [`GuestPort`] over a vfio-user socket, as a
//! VMM with a vfio-user device would reach it. [`crate::guest::VfGuest`] drives it as it
//! drives an in-process [`crate::FunctionPort`].
use super::{BAR0_REGION, MSIX_IRQ_INDEX, MSIX_VECTORS};
use crate::error::FunctionName;
use crate::guest::GuestPort;
use crate::{Function, SimError};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
};
use vfio_user::Client;
use vmm_sys_util::eventfd::EventFd;

const PAGE: u64 = crate::dma::PAGE_SIZE;

/// One PCI function of a `nic-sim` process, reached through its vfio-user socket.
pub struct VfioUserPort {
    client: Mutex<Client>,
    function: Function,
    path: PathBuf,
    bar_size: u64,
    /// The eventfds wired to the vectors: the server holds duplicates, these keep the
    /// caller's side of the contract (the port owns what it was given).
    irqs: Mutex<Vec<Option<EventFd>>>,
}

impl std::fmt::Debug for VfioUserPort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioUserPort")
            .field("function", &self.function)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl VfioUserPort {
    /// Connects to the vfio-user socket at `path`, which serves `function`
    /// (`PATH` for the PF, `PATH.vfN` for VF `N`).
    pub fn connect(path: &Path, function: Function) -> Result<VfioUserPort, SimError> {
        let client = Client::new(path).map_err(|e| {
            SimError::io(
                format!(
                    "{}: connecting to the vfio-user socket {}",
                    FunctionName(function),
                    path.display()
                ),
                std::io::Error::other(e),
            )
        })?;
        let bar_size =
            client
                .region(BAR0_REGION)
                .map(|r| r.size)
                .ok_or_else(|| SimError::Guest {
                    function,
                    reason: format!("{} offers no BAR0 region", path.display()),
                })?;
        Ok(VfioUserPort {
            client: Mutex::new(client),
            function,
            path: path.to_path_buf(),
            bar_size,
            irqs: Mutex::new((0..MSIX_VECTORS).map(|_| None).collect()),
        })
    }

    /// The socket this port is connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Client> {
        self.client.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn io(&self, what: String, e: vfio_user::Error) -> SimError {
        SimError::io(
            format!(
                "{}: {what} over {}",
                FunctionName(self.function),
                self.path.display()
            ),
            std::io::Error::other(e),
        )
    }

    /// The checks the device makes, made before sending: the vfio-user client cannot
    /// receive an error reply to a region access.
    fn check(&self, offset: u64) -> Result<(), SimError> {
        if !offset.is_multiple_of(4) {
            return Err(SimError::MisalignedAccess {
                function: self.function,
                offset,
            });
        }
        if offset >= self.bar_size {
            return Err(SimError::OutsideBar {
                function: self.function,
                offset,
                bar_size: self.bar_size,
            });
        }
        Ok(())
    }
}

impl GuestPort for VfioUserPort {
    fn function(&self) -> Function {
        self.function
    }

    fn bar_size(&self) -> u64 {
        self.bar_size
    }

    fn bar_read32(&self, offset: u64) -> Result<u32, SimError> {
        self.check(offset)?;
        let mut data = [0u8; 4];
        self.client()
            .region_read(BAR0_REGION, offset, &mut data)
            .map_err(|e| self.io(format!("reading BAR0 at {offset:#x}"), e))?;
        Ok(u32::from_le_bytes(data))
    }

    fn bar_write32(&self, offset: u64, value: u32) -> Result<(), SimError> {
        self.check(offset)?;
        self.client()
            .region_write(BAR0_REGION, offset, &value.to_le_bytes())
            .map_err(|e| self.io(format!("writing BAR0 at {offset:#x}"), e))
    }

    fn dma_map(&self, iova: u64, size: u64, file: &File, file_offset: u64) -> Result<(), SimError> {
        if size == 0
            || !iova.is_multiple_of(PAGE)
            || !size.is_multiple_of(PAGE)
            || !file_offset.is_multiple_of(PAGE)
        {
            return Err(SimError::DmaMap {
                function: self.function,
                iova,
                size,
                reason: format!(
                    "iova, size and file offset ({file_offset:#x}) must be non-zero multiples \
                     of the {PAGE:#x}-byte IOMMU page"
                ),
            });
        }
        // The server refuses the file too, but this client cannot read its error reply.
        crate::memfd::check_shrink_seal(file).map_err(|reason| SimError::DmaMap {
            function: self.function,
            iova,
            size,
            reason,
        })?;
        self.client()
            .dma_map(file_offset, iova, size, file.as_raw_fd())
            .map_err(|e| self.io(format!("DMA_MAP [{iova:#x}, +{size:#x})"), e))
    }

    fn dma_unmap(&self, iova: u64, size: u64) -> Result<(), SimError> {
        self.client()
            .dma_unmap(iova, size)
            .map_err(|e| self.io(format!("DMA_UNMAP [{iova:#x}, +{size:#x})"), e))
    }

    fn set_irq(&self, vector: u32, eventfd: Option<EventFd>) -> Result<(), SimError> {
        let mut irqs = self.irqs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = irqs.get_mut(vector as usize) else {
            return Err(SimError::NoSuchVector {
                function: self.function,
                vector,
                vectors: MSIX_VECTORS,
            });
        };
        let what = format!("SET_IRQS (MSI-X vector {vector})");
        match &eventfd {
            Some(fd) => self.client().set_irqs(
                MSIX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER,
                vector,
                1,
                &[fd.as_raw_fd()],
            ),
            // The device has one vector: disabling the index unwires it.
            None => self.client().set_irqs(
                MSIX_IRQ_INDEX,
                VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
                0,
                0,
                &[],
            ),
        }
        .map_err(|e| self.io(what, e))?;
        *slot = eventfd;
        Ok(())
    }
}

impl Drop for VfioUserPort {
    fn drop(&mut self) {
        let _ = self.client().shutdown();
    }
}
