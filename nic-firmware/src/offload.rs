//! VF offloads (ABI 1.5): TCP/UDP checksums completed for the VM, TCP super-frames cut into
//! segments, and super-frames delivered whole to a local VF that takes them.
use shared_regs::vf::Offloads;

/// What every VF is offered.
pub const OFFERED: Offloads = Offloads::TX_CSUM
    .union(Offloads::TSO4)
    .union(Offloads::RX_CSUM)
    .union(Offloads::RX_GSO);
