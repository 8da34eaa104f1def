//! The simulator's one error type. Every message names the function and the register offset
//! or IOVA involved, because the caller is usually a driver test trying to find its own bug.
use nic_firmware::Function;
use std::fmt;

/// Displays a [`Function`] the way the datasheet names it: `PF`, `VF 3`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionName(pub Function);

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Function::Pf => f.write_str("PF"),
            Function::Vf(n) => write!(f, "VF {n}"),
        }
    }
}

fn name(f: &Function) -> FunctionName {
    FunctionName(*f)
}

/// What went wrong talking to the simulated device.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A BAR access not on a 4-byte boundary (registers are 32 bits, aligned).
    #[error("{}: BAR0 offset {offset:#x} is not 4-byte aligned", name(.function))]
    MisalignedAccess { function: Function, offset: u64 },

    /// A BAR access past the end of the BAR.
    #[error("{}: BAR0 offset {offset:#x} is outside the {bar_size:#x}-byte BAR", name(.function))]
    OutsideBar {
        function: Function,
        offset: u64,
        bar_size: u64,
    },

    /// A DMA mapping the IOMMU refuses (alignment, overlap, a file too short, ...).
    #[error("{}: cannot map DMA [{iova:#x}, +{size:#x}): {reason}", name(.function))]
    DmaMap {
        function: Function,
        iova: u64,
        size: u64,
        reason: String,
    },

    /// An unmap that does not match whole mappings.
    #[error("{}: cannot unmap DMA [{iova:#x}, +{size:#x}): {reason}", name(.function))]
    DmaUnmap {
        function: Function,
        iova: u64,
        size: u64,
        reason: String,
    },

    /// An interrupt vector the function does not have.
    #[error("{}: no interrupt vector {vector} (the function has {vectors})", name(.function))]
    NoSuchVector {
        function: Function,
        vector: u32,
        vectors: u32,
    },

    /// A [`crate::SimConfig`] the simulator cannot build.
    #[error("invalid simulator configuration: {0}")]
    Config(String),

    /// A guest-side (VM driver) failure: bad arguments, a ring that stays full, ...
    #[error("{}: {reason}", name(.function))]
    Guest { function: Function, reason: String },

    /// The device thread panicked: a firmware bug (the firmware must never panic).
    #[error("the device thread panicked: {0}")]
    DevicePanicked(String),

    /// An operating-system call failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl SimError {
    /// An [`SimError::Io`] saying what was being done.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        SimError::Io {
            what: what.into(),
            source,
        }
    }
}
