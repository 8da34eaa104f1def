//! VF TX and RX ring handling.

/// A VF's ring state as the firmware tracks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VfRings {
    pub(crate) enabled: bool,
    pub(crate) tx_base: u64,
    pub(crate) tx_size: u32,
    pub(crate) tx_head: u32,
    pub(crate) rx_base: u64,
    pub(crate) rx_size: u32,
    pub(crate) rx_head: u32,
}

impl VfRings {
    /// Rings not served.
    pub const EMPTY: VfRings = VfRings {
        enabled: false,
        tx_base: 0,
        tx_size: 0,
        tx_head: 0,
        rx_base: 0,
        rx_size: 0,
        rx_head: 0,
    };
}
