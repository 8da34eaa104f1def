//! Typed views of the headers smoltcp has no view of, in smoltcp's `wire` shape: a
//! `Packet<T: AsRef<[u8]>>` checked once by `new_checked`, getters and setters over it, and
//! a `Repr` with `parse` and `emit`. The error type is smoltcp's, so one `?` serves views of
//! both kinds.
pub mod vxlan;

pub use vxlan::{Packet as VxlanPacket, Repr as VxlanRepr};
