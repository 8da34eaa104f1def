//! The vfio-user messages the server reads and writes, as they lie on the socket (native
//! byte order, as the protocol has it), and the limits it holds every client to.
//!
//! Only the layouts live here: what a message must contain, and what the server does with
//! it, is [`super::connection`]'s.
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Commands (the header's `command`).
pub(super) mod command {
    pub const VERSION: u16 = 1;
    pub const DMA_MAP: u16 = 2;
    pub const DMA_UNMAP: u16 = 3;
    pub const DEVICE_GET_INFO: u16 = 4;
    pub const DEVICE_GET_REGION_INFO: u16 = 5;
    pub const DEVICE_GET_IRQ_INFO: u16 = 7;
    pub const DEVICE_SET_IRQS: u16 = 8;
    pub const REGION_READ: u16 = 9;
    pub const REGION_WRITE: u16 = 10;
    pub const DEVICE_RESET: u16 = 13;
}

/// The message type in the header's `flags`: a command or a reply.
pub(super) const FLAGS_TYPE: u32 = 0xf;
pub(super) const TYPE_COMMAND: u32 = 0;
pub(super) const TYPE_REPLY: u32 = 1;
/// The client wants no reply unless the command fails.
pub(super) const FLAG_NO_REPLY: u32 = 1 << 4;
/// The reply reports a failure: `error` is an errno.
pub(super) const FLAG_ERROR: u32 = 1 << 5;

/// `DMA_MAP` flags: the device may read and write the memory.
pub(super) const DMA_MAP_READ_WRITE: u32 = 0b11;

/// The protocol version the server speaks.
pub(super) const VERSION_MAJOR: u16 = 0;
pub(super) const VERSION_MINOR: u16 = 1;

/// Most bytes one `REGION_READ` or `REGION_WRITE` moves (the protocol's default
/// `max_data_xfer_size`); BAR0 is far smaller, and the region's size is the tighter bound.
pub(super) const MAX_DATA_XFER: u32 = 1 << 20;
/// Longest message read: the largest region write with its headers, with room to spare for
/// a capabilities string. A longer one cannot be a message of this protocol, and is not
/// read.
pub(super) const MAX_MESSAGE: u32 = MAX_DATA_XFER + 4096;
/// Longest capabilities string of a `VERSION`.
pub(super) const MAX_VERSION_DATA: usize = 4096;
/// DMA mappings one client may hold on a function. Each is a mapping and a descriptor
/// of the process, shared by every function (up to 257), so one client must not be able
/// to use them up; the clients in this repository hold one to a few.
pub(super) const MAX_DMA_MAPS: usize = 64;
/// Bytes one client may map on a function, all its mappings together: each mapping takes
/// that much of the process's address space, which every function shares (257 times this
/// is well inside it).
pub(super) const MAX_DMA_BYTES: u64 = 64 << 30;
/// Descriptors received with one message; more than that ends the connection (the kernel
/// drops the rest, so the message can no longer be read whole). Those a command does not
/// take are closed.
pub(super) const MAX_FDS: usize = 16;

/// The header of every message.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct Header {
    pub message_id: u16,
    pub command: u16,
    /// The whole message, this header included.
    pub message_size: u32,
    pub flags: u32,
    pub error: u32,
}

pub(super) const HEADER_SIZE: usize = size_of::<Header>();

/// `VERSION`, before the optional NUL-terminated JSON capabilities string.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct Version {
    pub major: u16,
    pub minor: u16,
}

/// `DMA_MAP`, with the memory's file descriptor.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct DmaMap {
    pub argsz: u32,
    pub flags: u32,
    /// Offset of the mapping in the file.
    pub offset: u64,
    /// The IOVA.
    pub address: u64,
    pub size: u64,
}

/// `DMA_UNMAP`, and its reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct DmaUnmap {
    pub argsz: u32,
    pub flags: u32,
    pub address: u64,
    pub size: u64,
}

/// `DEVICE_GET_INFO`, and its reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct DeviceInfo {
    pub argsz: u32,
    pub flags: u32,
    pub num_regions: u32,
    pub num_irqs: u32,
}

/// `DEVICE_GET_REGION_INFO` (`struct vfio_region_info`), and its reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct RegionInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub cap_offset: u32,
    pub size: u64,
    pub offset: u64,
}

/// `DEVICE_GET_IRQ_INFO` (`struct vfio_irq_info`), and its reply.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct IrqInfo {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub count: u32,
}

/// `DEVICE_SET_IRQS` (`struct vfio_irq_set` without data: eventfds come as descriptors).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct SetIrqs {
    pub argsz: u32,
    pub flags: u32,
    pub index: u32,
    pub start: u32,
    pub count: u32,
}

/// `REGION_READ` and `REGION_WRITE`, and their replies; the data follows (in a write, and
/// in a read's reply).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub(super) struct RegionAccess {
    pub offset: u64,
    pub region: u32,
    pub count: u32,
}

/// The capabilities the server announces in its `VERSION` reply, NUL-terminated.
pub(super) fn capabilities(max_msg_fds: u32) -> Vec<u8> {
    let mut json = format!(
        r#"{{"capabilities":{{"max_msg_fds":{max_msg_fds},"max_data_xfer_size":{MAX_DATA_XFER},"max_dma_maps":{MAX_DMA_MAPS},"pgsizes":{}}}}}"#,
        crate::dma::PAGE_SIZE
    )
    .into_bytes();
    json.push(0);
    json
}

/// What the reply to `command` carries after its header when it succeeds, data aside: an
/// error reply is padded to it. The vfio_user 0.1 client reads that many bytes whatever
/// the flags say, and a client that reads `message_size` bytes is not hurt, so both stay
/// in step with the server.
pub(super) fn reply_body_size(command: u16) -> usize {
    match command {
        command::VERSION => size_of::<Version>(),
        command::DMA_UNMAP => size_of::<DmaUnmap>(),
        command::DEVICE_GET_INFO => size_of::<DeviceInfo>(),
        command::DEVICE_GET_REGION_INFO => size_of::<RegionInfo>(),
        command::DEVICE_GET_IRQ_INFO => size_of::<IrqInfo>(),
        command::REGION_READ | command::REGION_WRITE => size_of::<RegionAccess>(),
        _ => 0,
    }
}

/// A reply: `header` completed with the reply type and the size of `body`, then `body`.
pub(super) fn reply(request: &Header, flags: u32, error: u32, body: &[u8]) -> Vec<u8> {
    let header = Header {
        message_id: request.message_id,
        command: request.command,
        // A body never exceeds the limits checked before it was built.
        message_size: u32::try_from(HEADER_SIZE + body.len()).unwrap_or(u32::MAX),
        flags: TYPE_REPLY | flags,
        error,
    };
    let mut msg = Vec::with_capacity(HEADER_SIZE + body.len());
    msg.extend_from_slice(header.as_bytes());
    msg.extend_from_slice(body);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_protocols() {
        assert_eq!(HEADER_SIZE, 16);
        assert_eq!(size_of::<DmaMap>(), 32);
        assert_eq!(size_of::<DmaUnmap>(), 24);
        assert_eq!(size_of::<DeviceInfo>(), 16);
        assert_eq!(size_of::<RegionInfo>(), 32);
        assert_eq!(size_of::<IrqInfo>(), 16);
        assert_eq!(size_of::<SetIrqs>(), 20);
        assert_eq!(size_of::<RegionAccess>(), 16);
    }

    #[test]
    fn capabilities_are_json_with_a_nul() {
        let caps = capabilities(1);
        assert_eq!(caps.last(), Some(&0));
        let text = std::str::from_utf8(&caps[..caps.len() - 1]).unwrap();
        assert_eq!(
            text,
            r#"{"capabilities":{"max_msg_fds":1,"max_data_xfer_size":1048576,"max_dma_maps":64,"pgsizes":4096}}"#
        );
    }
}
