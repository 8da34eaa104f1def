//! The device side: one vfio-user server per PCI function of a running [`Nic`].
//!
//! The protocol is served by the `connection` module (this crate's own, which checks every
//! message before acting on it); this module binds the sockets, accepts one client at a
//! time per function, and carries out what the client asks on its [`FunctionPort`].
use super::connection::{self, Backend, Refusal};
use super::wire::{MAX_DMA_BYTES, MAX_DMA_MAPS};
use super::{socket, uplink, MSIX_VECTORS};
use crate::error::FunctionName;
use crate::{FunctionPort, Nic, SimError};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::net::UnixListener;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;
use vmm_sys_util::eventfd::EventFd;

/// One function as a vfio-user device: what its client did, so a disconnect can undo it.
struct FunctionDevice {
    port: FunctionPort,
    /// `(iova, size)` of every live DMA mapping.
    mappings: Vec<(u64, u64)>,
}

impl FunctionDevice {
    fn say(&self, what: impl std::fmt::Display) {
        eprintln!("nic-sim: {}: {what}", FunctionName(self.port.function()));
    }

    /// The client went away or reset the device: drop its mappings and interrupts, as
    /// closing a VFIO device does.
    fn release_all(&mut self) {
        for (iova, size) in std::mem::take(&mut self.mappings) {
            if let Err(e) = self.port.dma_unmap(iova, size) {
                self.say(e);
            }
        }
        for vector in 0..MSIX_VECTORS {
            if let Err(e) = self.port.set_irq(vector, None) {
                self.say(e);
            }
        }
    }
}

impl Backend for FunctionDevice {
    fn log(&self, what: &str) {
        self.say(what);
    }

    fn bar_size(&self) -> u64 {
        self.port.bar_size()
    }

    fn region_read(&mut self, offset: u64, data: &mut [u8]) {
        let value = if data.len() != 4 {
            self.say(format!(
                "refused a {}-byte read of BAR0 at {offset:#x}: registers are 4 bytes",
                data.len()
            ));
            u32::MAX
        } else {
            self.port.bar_read32(offset).unwrap_or_else(|e| {
                self.say(e);
                u32::MAX
            })
        };
        for (dst, src) in data.iter_mut().zip(value.to_le_bytes().iter().cycle()) {
            *dst = *src;
        }
    }

    fn region_write(&mut self, offset: u64, data: &[u8]) {
        match <[u8; 4]>::try_from(data) {
            Ok(bytes) => {
                if let Err(e) = self.port.bar_write32(offset, u32::from_le_bytes(bytes)) {
                    self.say(e);
                }
            }
            Err(_) => self.say(format!(
                "refused a {}-byte write of BAR0 at {offset:#x}: registers are 4 bytes",
                data.len()
            )),
        }
    }

    fn dma_map(
        &mut self,
        iova: u64,
        size: u64,
        file: File,
        file_offset: u64,
    ) -> Result<(), Refusal> {
        // Mappings and their address space are the process's, shared by every function.
        if self.mappings.len() >= MAX_DMA_MAPS {
            return Err(Refusal {
                errno: libc::ENOSPC,
                reason: format!(
                    "the client already holds {MAX_DMA_MAPS} mappings, the most it may"
                ),
            });
        }
        let held: u64 = self.mappings.iter().map(|&(_, len)| len).sum();
        if held
            .checked_add(size)
            .is_none_or(|total| total > MAX_DMA_BYTES)
        {
            return Err(Refusal {
                errno: libc::ENOSPC,
                reason: format!(
                    "the client holds {held:#x} bytes of mappings: {size:#x} more would pass \
                     the {MAX_DMA_BYTES:#x} it may map"
                ),
            });
        }
        // A file that shrinks under the mapping would be SIGBUS in the device thread, the
        // end of every function: only a file that cannot shrink is mapped.
        crate::memfd::check_shrink_seal(&file).map_err(Refusal::invalid)?;
        // The mapping is MAP_SHARED: it outlives `file`, which is closed here.
        self.port
            .dma_map(iova, size, &file, file_offset)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        self.mappings.push((iova, size));
        Ok(())
    }

    fn dma_unmap(&mut self, iova: u64, size: u64) -> Result<(), Refusal> {
        self.port
            .dma_unmap(iova, size)
            .map_err(|e| Refusal::invalid(e.to_string()))?;
        let end = iova.saturating_add(size);
        self.mappings
            .retain(|&(start, len)| !(start >= iova && start.saturating_add(len) <= end));
        Ok(())
    }

    fn set_irq(&mut self, vector: u32, eventfd: Option<File>) -> Result<(), Refusal> {
        let eventfd = match eventfd {
            Some(file) => {
                // The device thread writes the vector's eventfd: any other file could block
                // it (a full pipe) or fill a disk.
                check_eventfd(&file).map_err(Refusal::invalid)?;
                // SAFETY: `into_raw_fd` hands over the one owner of a descriptor the client
                // sent with the message, which is an eventfd (checked above); EventFd takes
                // that ownership.
                Some(unsafe { EventFd::from_raw_fd(file.into_raw_fd()) })
            }
            None => None,
        };
        self.port
            .set_irq(vector, eventfd)
            .map_err(|e| Refusal::invalid(e.to_string()))
    }

    fn release(&mut self) {
        self.release_all();
    }
}

/// Checks that `file` is an eventfd: `Err` says what it is instead.
fn check_eventfd(file: &File) -> Result<(), String> {
    let link = format!("/proc/self/fd/{}", file.as_raw_fd());
    match std::fs::read_link(&link) {
        Ok(target) if target.as_os_str() == "anon_inode:[eventfd]" => Ok(()),
        Ok(target) => Err(format!(
            "the interrupt's descriptor is {}, not an eventfd",
            target.display()
        )),
        Err(e) => Err(format!(
            "cannot tell what the interrupt's descriptor is: {e}"
        )),
    }
}

/// Binds the function's socket at `path`, which must not exist yet, for its owner alone.
fn bind(port: &FunctionPort, path: &Path) -> Result<UnixListener, SimError> {
    socket::listen_private(path).map_err(|e| {
        SimError::io(
            format!(
                "serving {} at {}",
                FunctionName(port.function()),
                path.display()
            ),
            e,
        )
    })
}

/// Serves the clients of `listener` on `dev` one at a time, forever. Whatever ends a
/// connection (a hang-up, a message that cannot be read, a panic while handling one) ends
/// that connection only: what its client set up is released, and the next client is
/// accepted.
pub(super) fn serve_clients(listener: &UnixListener, dev: &mut impl Backend) {
    loop {
        let mut stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: give the process a moment to close some.
                dev.log(&format!("cannot accept a client: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        match panic::catch_unwind(AssertUnwindSafe(|| connection::serve(&mut stream, dev))) {
            Ok(Ok(())) => {}
            Ok(Err(reason)) => dev.log(&format!("connection dropped: {reason}")),
            Err(panic) => dev.log(&format!(
                "connection dropped: handling its message panicked: {}",
                panic_message(panic.as_ref())
            )),
        }
        drop(stream);
        if panic::catch_unwind(AssertUnwindSafe(|| dev.release())).is_err() {
            dev.log("releasing the client's mappings and interrupts panicked");
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
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
    let unbind = |bound: &[(UnixListener, FunctionPort, PathBuf)]| {
        for (_, _, p) in bound {
            let _ = std::fs::remove_file(p);
        }
    };
    for (port, p) in functions {
        match bind(&port, &p) {
            Ok(listener) => bound.push((listener, port, p)),
            Err(e) => {
                unbind(&bound);
                return Err(e);
            }
        }
    }
    let uplink_path = super::uplink_socket(path);
    let uplink_listener = uplink::listen(&uplink_path).inspect_err(|_| unbind(&bound))?;
    let mut sockets = Vec::new();
    let mut threads = Vec::new();
    for (listener, port, p) in bound {
        sockets.push(p);
        let name = format!("vfio-user-{}", FunctionName(port.function()));
        let t = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut dev = FunctionDevice {
                    port,
                    mappings: Vec::new(),
                };
                serve_clients(&listener, &mut dev);
            })
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
