//! The device side: one vfio-user server per PCI function of a running [`Nic`].
use super::{uplink, BAR0_REGION, MSIX_IRQ_INDEX, MSIX_VECTORS};
use crate::error::FunctionName;
use crate::{FunctionPort, Nic, SimError};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_SET_DATA_EVENTFD, VFIO_IRQ_SET_DATA_NONE,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, Server, ServerBackend, ServerRegion};
use vmm_sys_util::eventfd::EventFd;

/// One function as a vfio-user device: what its client did, so a disconnect can undo it.
struct FunctionDevice {
    port: FunctionPort,
    /// `(iova, size)` of every live DMA mapping.
    mappings: Vec<(u64, u64)>,
}

impl FunctionDevice {
    fn log(&self, what: impl std::fmt::Display) {
        eprintln!("nic-sim: {}: {what}", FunctionName(self.port.function()));
    }

    /// The client went away: drop its mappings and interrupts, as closing a VFIO device
    /// does.
    fn release(&mut self) {
        for (iova, size) in std::mem::take(&mut self.mappings) {
            if let Err(e) = self.port.dma_unmap(iova, size) {
                self.log(e);
            }
        }
        for vector in 0..MSIX_VECTORS {
            if let Err(e) = self.port.set_irq(vector, None) {
                self.log(e);
            }
        }
    }
}

impl ServerBackend for FunctionDevice {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        let value = if region != BAR0_REGION || data.len() != 4 {
            self.log(format!(
                "refused a {}-byte read of region {region} at {offset:#x}",
                data.len()
            ));
            u32::MAX
        } else {
            self.port.bar_read32(offset).unwrap_or_else(|e| {
                self.log(e);
                u32::MAX
            })
        };
        for (dst, src) in data.iter_mut().zip(value.to_le_bytes().iter().cycle()) {
            *dst = *src;
        }
        Ok(())
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        match <[u8; 4]>::try_from(data) {
            Ok(bytes) if region == BAR0_REGION => {
                if let Err(e) = self.port.bar_write32(offset, u32::from_le_bytes(bytes)) {
                    self.log(e);
                }
            }
            _ => self.log(format!(
                "refused a {}-byte write of region {region} at {offset:#x}",
                data.len()
            )),
        }
        Ok(())
    }

    fn dma_map(
        &mut self,
        _flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let Some(file) = fd else {
            self.log(format!(
                "refused DMA_MAP [{address:#x}, +{size:#x}) without a file descriptor \
                 (only memory shared by fd is supported)"
            ));
            return Ok(());
        };
        // A file that shrinks under the mapping would be SIGBUS in the device thread, the
        // end of every function: only a file that cannot shrink is mapped.
        if let Err(reason) = crate::memfd::check_shrink_seal(&file) {
            let reason = format!("refused DMA_MAP [{address:#x}, +{size:#x}): {reason}");
            self.log(&reason);
            return Err(io::Error::new(io::ErrorKind::InvalidInput, reason));
        }
        // The mapping is MAP_SHARED: it outlives `file`, which is closed here.
        match self.port.dma_map(address, size, &file, offset) {
            Ok(()) => self.mappings.push((address, size)),
            Err(e) => self.log(e),
        }
        Ok(())
    }

    fn dma_unmap(&mut self, _flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        match self.port.dma_unmap(address, size) {
            Ok(()) => self.mappings.retain(|&(iova, len)| {
                let end = address.saturating_add(size);
                !(iova >= address && iova.saturating_add(len) <= end)
            }),
            Err(e) => self.log(e),
        }
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.release();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        if index != MSIX_IRQ_INDEX {
            self.log(format!(
                "refused SET_IRQS on index {index}: only MSI-X is wired"
            ));
            return Ok(());
        }
        if flags & VFIO_IRQ_SET_DATA_NONE != 0 && count == 0 {
            for vector in 0..MSIX_VECTORS {
                if let Err(e) = self.port.set_irq(vector, None) {
                    self.log(e);
                }
            }
            return Ok(());
        }
        if flags & VFIO_IRQ_SET_DATA_EVENTFD == 0 || fds.len() != count as usize {
            self.log(format!(
                "refused SET_IRQS flags {flags:#x} start {start} count {count} with {} fds",
                fds.len()
            ));
            return Ok(());
        }
        for (vector, file) in (start..).zip(fds) {
            use std::os::fd::{FromRawFd, IntoRawFd};
            // SAFETY: `into_raw_fd` hands over the one owner of a descriptor the client sent
            // with the message; EventFd takes that ownership (and fails writes if it is not
            // an eventfd, which the IRQ line reports).
            let fd = unsafe { EventFd::from_raw_fd(file.into_raw_fd()) };
            if let Err(e) = self.port.set_irq(vector, Some(fd)) {
                self.log(e);
            }
        }
        Ok(())
    }
}

/// The function's vfio-user device description: BAR0 and the PCI interrupt indexes.
fn describe(port: &FunctionPort) -> (Vec<IrqInfo>, Vec<ServerRegion>) {
    let irqs = [
        (VFIO_PCI_INTX_IRQ_INDEX, 0),
        (VFIO_PCI_MSI_IRQ_INDEX, 0),
        (MSIX_IRQ_INDEX, MSIX_VECTORS),
    ]
    .into_iter()
    .map(|(index, count)| IrqInfo {
        index,
        flags: VFIO_IRQ_INFO_EVENTFD,
        count,
    })
    .collect();
    let bar0 = ServerRegion {
        region_info: vfio_region_info {
            argsz: std::mem::size_of::<vfio_region_info>() as u32,
            flags: VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE,
            index: BAR0_REGION,
            cap_offset: 0,
            size: port.bar_size(),
            offset: 0,
        },
        sparse_areas: Vec::new(),
        mmap_fd: None,
    };
    (irqs, vec![bar0])
}

fn bind(port: &FunctionPort, path: &Path) -> Result<Server, SimError> {
    let (irqs, regions) = describe(port);
    Server::new(path, true, irqs, regions).map_err(|e| {
        SimError::io(
            format!(
                "serving {} at {}",
                FunctionName(port.function()),
                path.display()
            ),
            io::Error::other(e),
        )
    })
}

/// Serves `port` on `server` forever, one client at a time.
fn serve_function(server: Server, port: FunctionPort) {
    let mut dev = FunctionDevice {
        port,
        mappings: Vec::new(),
    };
    loop {
        if let Err(e) = server.run(&mut dev) {
            dev.log(format!("connection ended: {e}"));
        }
        dev.release();
    }
}

/// A [`Nic`] being served: the sockets it listens on. The serving threads run until the
/// process exits.
pub struct Served {
    /// Every socket, the PF's first.
    pub sockets: Vec<PathBuf>,
    _threads: Vec<JoinHandle<()>>,
}

/// Binds the PF at `path`, each VF at `PATH.vfN` and the uplink at `PATH.uplink`, and
/// starts a thread for each. None of the paths may exist yet.
pub fn serve(nic: &Nic, path: &Path) -> Result<Served, SimError> {
    let mut functions = vec![(nic.pf(), path.to_path_buf())];
    for vf in 0..nic.num_vfs() {
        if let Some(port) = nic.vf(vf) {
            functions.push((port, super::vf_socket(path, vf)));
        }
    }
    // Bind everything before serving anything, so a client that sees the PF socket finds
    // the others.
    let mut bound = Vec::new();
    for (port, p) in functions {
        let server = bind(&port, &p)?;
        bound.push((server, port, p));
    }
    let uplink_path = super::uplink_socket(path);
    let uplink_listener = uplink::listen(&uplink_path)?;
    let mut sockets = Vec::new();
    let mut threads = Vec::new();
    for (server, port, p) in bound {
        sockets.push(p);
        let name = format!("vfio-user-{}", FunctionName(port.function()));
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || serve_function(server, port))
            .map_err(|e| SimError::io("spawning a vfio-user server thread", e))?;
        threads.push(t);
    }
    sockets.push(uplink_path);
    threads.push(uplink::serve(uplink_listener, nic.uplink())?);
    Ok(Served {
        sockets,
        _threads: threads,
    })
}
