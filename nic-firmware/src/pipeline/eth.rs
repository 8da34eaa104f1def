//! Ethernet header access.
use shared_regs::ETH_HEADER_LEN;
use smoltcp::wire::EthernetFrame;

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
/// Shortest Ethernet frame without FCS; shorter frames are padded to it.
pub const MIN_FRAME: usize = 60;

/// The fields of an Ethernet header the pipeline decides on.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub ethertype: u16,
}

impl Header {
    /// Reads the header; `None` for a frame shorter than one.
    pub fn parse(frame: &[u8]) -> Option<Header> {
        let eth = EthernetFrame::new_checked(frame).ok()?;
        Some(Header {
            dst: eth.dst_addr().0,
            src: eth.src_addr().0,
            ethertype: u16::from(eth.ethertype()),
        })
    }
}

/// True for group (broadcast or multicast) MACs: the I/G bit is set.
pub fn is_group(mac: &[u8; 6]) -> bool {
    mac[0] & 1 != 0
}

/// The frame's payload after the Ethernet header.
pub fn payload(frame: &[u8]) -> &[u8] {
    frame.get(ETH_HEADER_LEN..).unwrap_or(&[])
}

/// The frame's payload after the Ethernet header, to change in place.
pub fn payload_mut(frame: &mut [u8]) -> &mut [u8] {
    frame.get_mut(ETH_HEADER_LEN..).unwrap_or(&mut [])
}

/// Writes destination and source MAC.
pub fn set_macs(frame: &mut [u8], dst: [u8; 6], src: [u8; 6]) {
    if let Some(d) = frame.get_mut(0..6) {
        d.copy_from_slice(&dst);
    }
    if let Some(s) = frame.get_mut(6..12) {
        s.copy_from_slice(&src);
    }
}
