//! hw-sim as a vfio-user device: the board served over Unix sockets, one per PCI function
//! (`nic-sim --socket PATH`); the clients use rust-vmm's `vfio_user` crate.
//!
//! # Design
//!
//! Each PCI function is its own vfio-user device, as each SR-IOV VF is its own VFIO device
//! that gets assigned to one VM:
//!
//! | socket | what it serves |
//! | --- | --- |
//! | `PATH` | the PF, for the host driver (`nicctl --device vfio-user:PATH`) |
//! | `PATH.vfN` | VF `N`, for the VM (VMM) that owns it |
//! | `PATH.uplink` | the far end of the uplink cable (not vfio-user: frames, see [`uplink`]) |
//!
//! Every socket is mode 0600 from the moment it exists, whatever the umask: connecting
//! takes write permission on the file, so only the user running the board reaches it.
//!
//! Every function device has one region, BAR0 (`VFIO_PCI_BAR0_REGION_INDEX`, read/write,
//! not mmap-able: every access is a `REGION_READ`/`REGION_WRITE` message, so every write
//! wakes the device thread as a doorbell does), and the three PCI interrupt indexes of which
//! only MSI-X has vectors (one, vector 0). The messages map onto [`crate::FunctionPort`]:
//!
//! - `REGION_READ`/`REGION_WRITE` of 4 bytes at a 4-byte aligned offset: `bar_read32`/
//!   `bar_write32`.
//! - `DMA_MAP` with a file descriptor (the client's memfd): `dma_map(iova, size, fd,
//!   offset)`, a `MAP_SHARED` mapping of the client's pages, so DMA reaches them directly.
//!   The file must be sealed against shrinking (`F_SEAL_SHRINK`, as
//!   [`crate::memfd::SharedMemory`] is): pages cut off under the mapping would be SIGBUS in
//!   the device thread, which would take down every function of the board where a real
//!   device sees an IOMMU fault. A file without the seal is refused. A client holds at most
//!   64 mappings and 64 GiB on a function: mappings and address space are the process's,
//!   shared by every function. `DMA_UNMAP`: `dma_unmap`.
//! - `SET_IRQS` on the MSI-X index with `DATA_EVENTFD | ACTION_TRIGGER`: wires vector
//!   `start` to the eventfd passed with the message (any other kind of descriptor is
//!   refused: the device thread writes it, and a full pipe would block it); with
//!   `DATA_NONE` and `count` 0 it unwires every vector, as VFIO does.
//! - A client that disconnects is a function reset by its owner: its DMA mappings and
//!   interrupts are dropped (the registers keep their values, as they do when a VFIO device
//!   is closed), and the socket accepts the next client.
//!
//! Errors: the server is this crate's own (the `connection` module), because a client is
//! a VMM the device does not trust. Every message is read whole and checked before anything
//! acts on it, every size against a limit (a region access against the region, a message
//! against 1 MiB of data plus 4 KiB); what is malformed or refused gets an error reply, and what
//! leaves no way to find the next message ends the connection. A panic while handling a
//! message ends only its connection. However a connection ends, its DMA mappings and
//! interrupts are released and the socket accepts the next client.
//!
//! The `vfio_user` 0.1 client (used by [`client::VfioUserPort`] and host-driver's backend)
//! does not look at the error flag of a reply, and waits for a reply of the command's full
//! size: error replies are padded to that size so it stays in step, and those clients
//! check alignment, bounds and the memfd's seal before they send. A region access the
//! registers refuse (misaligned, not 4 bytes) is not an error: as on PCI, a read returns all
//! ones and a write is dropped, and the server reports it on stderr.
pub mod client;
mod connection;
/// The vfio-user fuzzer's body (`hw-sim/fuzz`).
#[cfg(any(test, feature = "testing"))]
pub use connection::fuzz_messages;
pub mod server;
mod socket;
pub mod uplink;
mod wire;

use std::path::{Path, PathBuf};

/// Region index of BAR0 (`VFIO_PCI_BAR0_REGION_INDEX`).
pub const BAR0_REGION: u32 = vfio_bindings::bindings::vfio::VFIO_PCI_BAR0_REGION_INDEX;
/// Interrupt index of MSI-X (`VFIO_PCI_MSIX_IRQ_INDEX`).
pub const MSIX_IRQ_INDEX: u32 = vfio_bindings::bindings::vfio::VFIO_PCI_MSIX_IRQ_INDEX;
/// MSI-X vectors of each function.
pub const MSIX_VECTORS: u32 = 1;

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The socket of VF `vf` next to the PF's socket `path`: `PATH.vfN`.
pub fn vf_socket(path: &Path, vf: u16) -> PathBuf {
    with_suffix(path, &format!(".vf{vf}"))
}

/// The uplink socket next to the PF's socket `path`: `PATH.uplink`.
pub fn uplink_socket(path: &Path) -> PathBuf {
    with_suffix(path, ".uplink")
}

#[cfg(test)]
mod tests;
