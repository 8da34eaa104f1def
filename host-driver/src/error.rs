//! The driver's one error type. Every message names the device or command it is about, what
//! was expected and what was found, so that a user can act on it without reading the code.
use shared_regs::admin::{Opcode, Status};
use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Result of every driver operation.
pub type Result<T, E = DriverError> = std::result::Result<T, E>;

/// Everything that can go wrong between the driver and the device.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A register access did not reach the device.
    #[error(
        "{device}: {access} of register {register} (BAR0 offset {offset:#05x}) failed: {reason}"
    )]
    Register {
        device: String,
        /// "read" or "write".
        access: &'static str,
        register: &'static str,
        offset: u32,
        reason: String,
    },

    /// The device did not reach a state in time (bring-up).
    #[error(
        "{device}: timed out after {waited:?} waiting for {what} in register {register} \
         (last value read: {last:#010x}); is the firmware running?"
    )]
    RegisterTimeout {
        device: String,
        register: &'static str,
        what: &'static str,
        waited: Duration,
        last: u32,
    },

    /// The ID register does not hold the vpcnic magic.
    #[error(
        "{device} is not a vpcnic device: register ID reads {found:#010x}, expected {expected:#010x} (\"VPCN\")"
    )]
    NotVpcnic {
        device: String,
        found: u32,
        expected: u32,
    },

    /// The device speaks another major ABI version.
    #[error(
        "{device} speaks device ABI {device_major}.{device_minor} but this driver speaks ABI \
         {driver_major}.{driver_minor}; major versions must match: use a driver built for ABI \
         {device_major}.x or update the firmware"
    )]
    AbiMismatch {
        device: String,
        device_major: u16,
        device_minor: u16,
        driver_major: u16,
        driver_minor: u16,
    },

    /// The device reports something the driver cannot work with (bad capability values).
    #[error("{device}: {what}")]
    Unsupported { device: String, what: String },

    /// STATUS.FATAL is set: the firmware stopped.
    #[error("{device}: the firmware stopped on an unrecoverable error (STATUS.FATAL set, STATUS = {status:#010x}); reset the device")]
    Fatal { device: String, status: u32 },

    /// The firmware refused the admin queue registers.
    #[error(
        "{device}: the firmware rejected the admin queue (STATUS.ADMINQ_ERROR set) with base \
         {base:#x} and size {size} entries; the base must be 64-byte aligned and the size a \
         power of two of at most {max}"
    )]
    AdminQueueRejected {
        device: String,
        base: u64,
        size: u32,
        max: u32,
    },

    /// The admin queue has no free entry: the firmware has not taken earlier commands.
    #[error(
        "{device}: admin queue full ({size} entries, ADMINQ_HEAD {head}, tail {tail}): the \
         firmware has not taken earlier commands"
    )]
    AdminQueueFull {
        device: String,
        size: u32,
        head: u32,
        tail: u32,
    },

    /// A command completed with a status other than OK.
    #[error("{} failed: {status}", command_label(*.opcode, .what))]
    Command {
        opcode: Opcode,
        status: Status,
        /// The thing the command was about, e.g. "vpc 3, vni 100".
        what: String,
    },

    /// A batch of admin commands stopped at command `applied`, for `error` (a refusal, a
    /// timeout, ...): the `applied` commands before it were applied. After a refusal none
    /// after it was; after a device error those after it may or may not have been.
    #[error("{error} (command {} of a batch of {total}: the {applied} before it were applied)", .applied + 1)]
    Batch {
        applied: usize,
        total: usize,
        error: Box<DriverError>,
    },

    /// A command was not completed in time.
    #[error(
        "{command}: the firmware did not answer within {waited:?} (admin queue entry {entry}, \
         ADMINQ_HEAD {head}, STATUS {status:#010x}, {heartbeat})"
    )]
    CommandTimeout {
        /// Opcode name and what it was about.
        command: String,
        waited: Duration,
        entry: u32,
        head: u32,
        status: u32,
        /// Whether the firmware is alive, from two HEARTBEAT reads.
        heartbeat: String,
    },

    /// The firmware's completion is inconsistent (e.g. fewer stats bytes than a block).
    #[error("{command}: unexpected completion: {what}")]
    BadCompletion { command: String, what: String },

    /// A report from the device holds a value the contract does not define.
    #[error("the device reported {field} {value}, which the contract does not define")]
    UnknownValue { field: &'static str, value: u32 },

    /// A `TRACE` report shorter than its header says.
    #[error(
        "the report is {len} bytes but its header announces {steps} steps and a {frame_len}-byte \
         frame ({needed} bytes in all)"
    )]
    TraceReportLength {
        len: usize,
        steps: u8,
        frame_len: usize,
        needed: usize,
    },

    /// A `TRACE` report shorter than its header.
    #[error("the report is {len} bytes, shorter than its {header}-byte header")]
    TraceReportHeader { len: usize, header: usize },

    /// A host memory access outside a DMA buffer.
    #[error("DMA buffer access out of bounds: {len} bytes at offset {offset:#x} of a {size:#x}-byte buffer")]
    DmaBounds { offset: u64, len: u64, size: u64 },

    /// Host memory for DMA could not be created.
    #[error("could not allocate {size:#x} bytes of DMA memory: {source}")]
    DmaAlloc {
        size: u64,
        #[source]
        source: std::io::Error,
    },

    /// The device could not map (or unmap) a DMA buffer.
    #[error(
        "{device}: could not {action} {size:#x} bytes of DMA memory at IOVA {iova:#x}: {reason}"
    )]
    DmaMap {
        device: String,
        action: &'static str,
        iova: u64,
        size: u64,
        reason: String,
    },

    /// The driver ran out of IOVA space.
    #[error("IOVA space exhausted: cannot allocate {size:#x} more bytes")]
    IovaExhausted { size: u64 },

    /// Interrupt setup failed.
    #[error("{device}: could not set up interrupt vector {vector}: {reason}")]
    Irq {
        device: String,
        vector: u32,
        reason: String,
    },

    /// The device backend itself failed to start or stopped.
    #[error("{device}: {reason}")]
    Backend { device: String, reason: String },

    /// An argument the driver rejects before sending anything to the device.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    // SR-IOV through sysfs (crate::sriov).
    #[error("PF {pf} not found: {} does not exist; `lspci -D` lists the PCI addresses", .path.display())]
    PfNotFound { pf: String, path: PathBuf },
    #[error("{pf} is not SR-IOV capable: it has no {} (is this the PF, and is its driver loaded?)", .path.display())]
    NotSriov { pf: String, path: PathBuf },
    #[error("{pf} supports at most {total} VFs (sriov_totalvfs), {requested} requested")]
    TooManyVfs {
        pf: String,
        requested: u32,
        total: u32,
    },
    #[error("after writing {count} to sriov_numvfs of {pf}, {} is missing: the kernel did not create VF {index}", .path.display())]
    MissingVf {
        pf: String,
        count: u32,
        index: u32,
        path: PathBuf,
    },
    #[error("{pf} is bound to vfio-pci, which creates VFs only when loaded with \
             enable_sriov=1 ({} is not Y): `echo Y > {}` (or `modprobe vfio-pci enable_sriov=1`)",
            .path.display(), .path.display())]
    VfioPciWithoutSriov { pf: String, path: PathBuf },
    #[error("{}: {what}", .path.display())]
    SysfsMalformed { path: PathBuf, what: String },
    #[error("cannot {action} {}: {source}{}", .path.display(), permission_hint(.source))]
    Sysfs {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A device name nicctl does not know.
    #[error("unknown device {name:?}; known devices: {known}")]
    UnknownDevice { name: String, known: String },
}

fn permission_hint(e: &io::Error) -> &'static str {
    if e.kind() == io::ErrorKind::PermissionDenied {
        " (run nicctl as root)"
    } else {
        ""
    }
}

/// "VPC_ADD (vpc 3, vni 100)" or just "NOP".
pub(crate) fn command_label(opcode: Opcode, what: &str) -> String {
    if what.is_empty() {
        opcode.name().to_string()
    } else {
        format!("{} ({what})", opcode.name())
    }
}

/// The name of a raw opcode number: the datasheet name or "opcode 0xbeef".
pub(crate) fn raw_opcode_label(opcode: u16, what: &str) -> String {
    match Opcode::from_u16(opcode) {
        Some(op) => command_label(op, what),
        None if what.is_empty() => format!("opcode {opcode:#06x}"),
        None => format!("opcode {opcode:#06x} ({what})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_error_names_the_thing_and_the_reason() {
        let e = DriverError::Command {
            opcode: Opcode::VpcAdd,
            status: Status::Exists,
            what: "vpc 3, vni 100".into(),
        };
        assert_eq!(
            e.to_string(),
            "VPC_ADD (vpc 3, vni 100) failed: already exists"
        );
        let e = DriverError::Command {
            opcode: Opcode::Nop,
            status: Status::BadOpcode,
            what: String::new(),
        };
        assert_eq!(e.to_string(), "NOP failed: unknown opcode");
    }

    #[test]
    fn raw_opcode_labels() {
        assert_eq!(raw_opcode_label(0x0001, ""), "NOP");
        assert_eq!(raw_opcode_label(0xbeef, "x"), "opcode 0xbeef (x)");
    }
}
