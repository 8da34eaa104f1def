//! The VXLAN header (RFC 7348 section 5), which F14 writes and F15 reads.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |R|R|R|R|I|R|R|R|            Reserved                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                VXLAN Network Identifier (VNI) |   Reserved    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Unlike smoltcp's views, accessors never panic on a buffer shorter than the header
//! (the firmware denies panics): they read zeros and write nothing there. `new_checked`
//! still refuses such a buffer, so a checked view never meets the case.
use smoltcp::wire::{Error, Result};

/// The UDP destination port IANA assigned to VXLAN.
pub const UDP_PORT: u16 = 4789;
/// Bytes of the header.
pub const HEADER_LEN: usize = 8;
/// The "I" flag: the VNI is valid. RFC 7348 reserves the other flag bits.
pub const FLAG_VNI: u8 = 0x08;

mod field {
    use core::ops::Range;

    pub const FLAGS: usize = 0;
    pub const RESERVED_1: Range<usize> = 1..4;
    pub const VNI: Range<usize> = 4..7;
    pub const RESERVED_2: usize = 7;
}

/// A VXLAN header and the inner Ethernet frame after it, over a byte buffer.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// A view over `buffer` without checking its length.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// A view over `buffer`, which must hold at least the header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// `Err` when the buffer is shorter than the header.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error)
        } else {
            Ok(())
        }
    }

    /// The buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The flags byte.
    #[inline]
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref().get(field::FLAGS).copied().unwrap_or(0)
    }

    /// The 24-bit VNI.
    #[inline]
    pub fn vni(&self) -> u32 {
        match self.buffer.as_ref().get(field::VNI) {
            Some(&[a, b, c]) => u32::from_be_bytes([0, a, b, c]),
            _ => 0,
        }
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> Packet<&'a T> {
    /// The inner Ethernet frame.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the flags byte.
    #[inline]
    pub fn set_flags(&mut self, value: u8) {
        if let Some(b) = self.buffer.as_mut().get_mut(field::FLAGS) {
            *b = value;
        }
    }

    /// Sets the VNI; bits above the 24th are dropped.
    #[inline]
    pub fn set_vni(&mut self, value: u32) {
        let [_, a, b, c] = value.to_be_bytes();
        if let Some(vni) = self.buffer.as_mut().get_mut(field::VNI) {
            vni.copy_from_slice(&[a, b, c]);
        }
    }

    /// Zeroes both reserved fields, as RFC 7348 asks of a sender.
    #[inline]
    pub fn clear_reserved(&mut self) {
        let data = self.buffer.as_mut();
        if let Some(r) = data.get_mut(field::RESERVED_1) {
            r.fill(0);
        }
        if let Some(r) = data.get_mut(field::RESERVED_2) {
            *r = 0;
        }
    }

    /// The inner Ethernet frame, to change in place.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        self.buffer
            .as_mut()
            .get_mut(HEADER_LEN..)
            .unwrap_or(&mut [])
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// What a VXLAN header says.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Repr {
    /// The VXLAN Network Identifier (24 bits): the VPC.
    pub vni: u32,
}

impl Repr {
    /// Reads a header whose I flag is set. Reserved bits are ignored, as RFC 7348 asks of a
    /// receiver.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        if packet.flags() & FLAG_VNI == 0 {
            return Err(Error);
        }
        Ok(Repr { vni: packet.vni() })
    }

    /// Bytes [`Repr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header: the I flag, the VNI, reserved fields zero.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_flags(FLAG_VNI);
        packet.clear_reserved();
        packet.set_vni(self.vni);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7348's header for VNI 0x123456, followed by one payload byte.
    const BYTES: [u8; 9] = [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xAB];

    #[test]
    fn parse_reads_the_vni_of_a_header_with_the_i_flag() {
        let packet = Packet::new_checked(&BYTES[..]).unwrap();
        assert_eq!(packet.flags(), FLAG_VNI);
        assert_eq!(packet.vni(), 0x12_3456);
        assert_eq!(packet.payload(), &[0xAB]);
        assert_eq!(Repr::parse(&packet), Ok(Repr { vni: 0x12_3456 }));
    }

    #[test]
    fn parse_ignores_reserved_bits_and_refuses_a_header_without_the_i_flag() {
        let mut bytes = BYTES;
        bytes[0] = 0xF7;
        assert_eq!(Repr::parse(&Packet::new_unchecked(&bytes[..])), Err(Error));
        bytes[0] = 0xFF;
        bytes[1..4].fill(0xFF);
        bytes[7] = 0xFF;
        assert_eq!(
            Repr::parse(&Packet::new_unchecked(&bytes[..])),
            Ok(Repr { vni: 0x12_3456 })
        );
    }

    #[test]
    fn a_buffer_shorter_than_the_header_is_refused_and_never_panics() {
        assert_eq!(Packet::new_checked(&BYTES[..7]), Err(Error));
        assert_eq!(Repr::parse(&Packet::new_unchecked(&BYTES[..7])), Err(Error));
        let mut short = [0xFFu8; 3];
        let mut packet = Packet::new_unchecked(&mut short[..]);
        Repr { vni: 1 }.emit(&mut packet);
        assert_eq!((packet.flags(), packet.vni()), (FLAG_VNI, 0));
        assert!(packet.payload_mut().is_empty());
    }

    #[test]
    fn emit_writes_the_rfc_layout_and_keeps_the_payload() {
        let mut bytes = [0xFFu8; 9];
        let repr = Repr { vni: 0xFF12_3456 };
        let mut packet = Packet::new_checked(&mut bytes[..]).unwrap();
        repr.emit(&mut packet);
        assert_eq!(&bytes[..8], &BYTES[..8]);
        assert_eq!(bytes[8], 0xFF);
        assert_eq!(repr.buffer_len(), HEADER_LEN);
    }
}
