//! The virtio-net header a TAP with `IFF_VNET_HDR` puts before every frame, and what it
//! means for the VF: the VM's kernel hands over TCP super-frames and frames whose checksum
//! it left to the device, as it would to a virtio-net NIC under QEMU, and is told which
//! frames the device checked or delivered whole.
//!
//! Pure functions over bytes, so each rule is tested on known frames.
use nic_firmware::offload::{fold, sum};
use shared_regs::vf::Offloads;
use vf_driver::{RxMeta, TxOffload};

/// Bytes of the header: `struct virtio_net_hdr_mrg_rxbuf` (the layout set with
/// `TUNSETVNETHDRSZ`).
pub const VNET_HDR_LEN: usize = 12;

/// `flags`: the checksum from `csum_start` to the end is left to the device; the field at
/// `csum_start + csum_offset` holds the pseudo-header sum.
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the frame's checksum was checked (towards the VM).
pub const F_DATA_VALID: u8 = 2;
/// `gso_type`: a frame of one segment.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: a TCP/IPv4 super-frame of segments of `gso_size` payload bytes.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type` bit: the super-frame's CWR is for its first segment only.
pub const GSO_ECN: u8 = 0x80;

const ETH_HEADER: usize = shared_regs::ETH_HEADER_LEN;
const ETHERTYPE_IPV4: u16 = 0x0800;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
/// Where the checksum sits in a TCP and a UDP header.
const TCP_CSUM_AT: u16 = 16;
const UDP_CSUM_AT: u16 = 6;
const TCP_CWR: u8 = 0x80;

/// A virtio-net header. `num_buffers`, the header's last field, means nothing to a TAP: it
/// is written 0 and ignored when read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    /// Bytes of headers before a super-frame's payload.
    pub hdr_len: u16,
    /// Payload bytes a segment.
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    /// The header at the start of `bytes`; `None` when they are too few.
    pub fn parse(bytes: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; VNET_HDR_LEN] = bytes.get(..VNET_HDR_LEN)?.try_into().ok()?;
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's bytes. Little-endian: the TAP is told so (`TUNSETVNETLE`).
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }
}

/// How a frame the VM sent goes to the VF.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// What the device is asked for.
    pub offload: TxOffload,
    /// The bridge completed the frame's checksum itself (the VF lacks the offload, or the
    /// frame is not one the device completes: IPv6, a fragment, not TCP or UDP).
    pub software_csum: bool,
}

/// Why a frame the VM sent cannot go to the VF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsendable {
    #[error("GSO type {0:#04x}: only TCP/IPv4 segmentation is offered to the VM")]
    GsoType(u8),
    #[error("a TCP super-frame, and the VF does not segment")]
    NoTso,
    #[error("a TCP super-frame with a segment size of 0")]
    NoSegmentSize,
    #[error("checksum start {start} and offset {offset} outside a {len}-byte frame")]
    CsumOutside { start: u16, offset: u16, len: usize },
}

/// What to ask of a VF offering `offers` for `frame`, sent by the VM with `hdr`. A
/// checksum the device cannot complete is completed here, in `frame`.
pub fn outbound(hdr: &VnetHdr, frame: &mut [u8], offers: Offloads) -> Result<Outbound, Unsendable> {
    let send = |offload| {
        Ok(Outbound {
            offload,
            software_csum: false,
        })
    };
    match hdr.gso_type & !GSO_ECN {
        GSO_NONE => {}
        GSO_TCPV4 if hdr.gso_size == 0 => return Err(Unsendable::NoSegmentSize),
        // The device completes every checksum of the segments, so the partial one is
        // left as it is.
        GSO_TCPV4 if offers.contains(Offloads::TSO4) => {
            return send(TxOffload::Tso { mss: hdr.gso_size })
        }
        GSO_TCPV4 => return Err(Unsendable::NoTso),
        _ => return Err(Unsendable::GsoType(hdr.gso_type)),
    }
    if hdr.flags & F_NEEDS_CSUM == 0 {
        return send(TxOffload::None);
    }
    if offers.contains(Offloads::TX_CSUM) && device_completes(hdr, frame) {
        return send(TxOffload::Csum);
    }
    complete_csum(frame, hdr.csum_start, hdr.csum_offset)?;
    Ok(Outbound {
        offload: TxOffload::None,
        software_csum: true,
    })
}

/// True when `hdr` asks for the checksum the device's `TxFlags::CSUM` computes: that of
/// the TCP or UDP header right after an IPv4 header, in a frame that is not a fragment.
fn device_completes(hdr: &VnetHdr, frame: &[u8]) -> bool {
    let Some(ip) = Ipv4::parse(frame) else {
        return false;
    };
    let at = match ip.proto {
        PROTO_TCP => TCP_CSUM_AT,
        PROTO_UDP => UDP_CSUM_AT,
        _ => return false,
    };
    !ip.fragment && usize::from(hdr.csum_start) == ip.l4 && hdr.csum_offset == at
}

/// Completes a checksum the VM left partial, as Linux's `skb_checksum_help`: the field at
/// `start + offset` holds the pseudo-header sum, and the one's complement sum from `start`
/// to the end of the frame is stored there, inverted.
pub fn complete_csum(frame: &mut [u8], start: u16, offset: u16) -> Result<(), Unsendable> {
    let (s, at) = (usize::from(start), usize::from(start) + usize::from(offset));
    if at + 2 > frame.len() {
        return Err(Unsendable::CsumOutside {
            start,
            offset,
            len: frame.len(),
        });
    }
    let sum = !fold(sum(&frame[s..], 0));
    // 0 means "no checksum" to UDP; its complement is the same sum.
    let sum = if sum == 0 { 0xFFFF } else { sum };
    frame[at..at + 2].copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// The header with which the VM gets `frame`, received from the VF with `meta`. A
/// super-frame leaves with its TCP checksum turned into the pseudo-header sum, as a Linux
/// stack keeps a super-frame (`CHECKSUM_PARTIAL`), so that a VM forwarding it (an
/// appliance) has it completed right by whoever segments it.
pub fn inbound(meta: RxMeta, frame: &mut [u8]) -> VnetHdr {
    if let Some(mss) = meta.gso_mss {
        if let Some(hdr) = super_frame(mss, frame) {
            return hdr;
        }
    }
    if meta.csum_valid {
        return VnetHdr {
            flags: F_DATA_VALID,
            ..VnetHdr::default()
        };
    }
    VnetHdr::default()
}

/// [`inbound`] for a TCP/IPv4 super-frame; `None`, and `frame` untouched, when it is not
/// one (the VM then checks it as any frame).
fn super_frame(mss: u16, frame: &mut [u8]) -> Option<VnetHdr> {
    let ip = Ipv4::parse(frame)?;
    if ip.proto != PROTO_TCP || ip.fragment {
        return None;
    }
    let tcp = frame.get(ip.l4..ip.end)?;
    let doff = usize::from(*tcp.get(12)? >> 4) * 4;
    if doff < 20 || tcp.len() < doff {
        return None;
    }
    let cwr = tcp[13] & TCP_CWR != 0;
    let pseudo = fold(pseudo_sum(frame, &ip));
    let at = ip.l4 + usize::from(TCP_CSUM_AT);
    frame[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
    Some(VnetHdr {
        flags: F_NEEDS_CSUM,
        // As Linux's GRO: a CWR in the headers is the first segment's.
        gso_type: GSO_TCPV4 | if cwr { GSO_ECN } else { 0 },
        hdr_len: u16::try_from(ip.l4 + doff).ok()?,
        gso_size: mss,
        csum_start: u16::try_from(ip.l4).ok()?,
        csum_offset: TCP_CSUM_AT,
    })
}

/// The IPv4 header of an untagged Ethernet frame, as far as checksums need it.
struct Ipv4 {
    proto: u8,
    fragment: bool,
    /// Where the transport header starts and the packet ends (IPv4 total length; the rest
    /// is Ethernet padding).
    l4: usize,
    end: usize,
}

impl Ipv4 {
    fn parse(frame: &[u8]) -> Option<Ipv4> {
        let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
        let ip = frame.get(ETH_HEADER..)?;
        if ethertype != ETHERTYPE_IPV4 || ip.len() < 20 || ip[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(ip[0] & 0x0F) * 4;
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        if ihl < 20 || total < ihl || total > ip.len() {
            return None;
        }
        let frag = u16::from_be_bytes([ip[6], ip[7]]);
        Some(Ipv4 {
            proto: ip[9],
            // More fragments, or an offset.
            fragment: frag & 0x3FFF != 0,
            l4: ETH_HEADER + ihl,
            end: ETH_HEADER + total,
        })
    }
}

/// The TCP/UDP pseudo-header's sum (addresses, protocol, transport length), unfolded.
fn pseudo_sum(frame: &[u8], ip: &Ipv4) -> u64 {
    let addrs = &frame[ETH_HEADER + 12..ETH_HEADER + 20];
    // The transport length fits 16 bits: it is part of a 16-bit total length.
    sum(addrs, u64::from(ip.proto) + (ip.end - ip.l4) as u64)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A TCP/IPv4 frame from 10.0.0.1:40000 to 10.0.0.2:5201 (MACs 02:..:01 -> 02:..:02)
    /// with `payload`, `flags` and its checksums complete.
    pub(crate) fn tcp_frame(payload: &[u8], flags: u8) -> Vec<u8> {
        ipv4_frame(
            PROTO_TCP,
            &tcp_segment(payload, flags),
            [10, 0, 0, 1],
            [10, 0, 0, 2],
        )
    }

    fn tcp_segment(payload: &[u8], flags: u8) -> Vec<u8> {
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[8..12].copy_from_slice(&2000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&65535u16.to_be_bytes());
        tcp.extend_from_slice(payload);
        tcp
    }

    /// An IPv4 frame carrying `l4` with its IPv4 checksum and its TCP or UDP checksum
    /// complete.
    pub(crate) fn ipv4_frame(proto: u8, l4: &[u8], src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00];
        let total = (20 + l4.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let csum = !fold(sum(&ip, 0));
        ip[10..12].copy_from_slice(&csum.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(l4);
        let at = match proto {
            PROTO_TCP => Some(34 + 16),
            PROTO_UDP => Some(34 + 6),
            _ => None,
        };
        if let Some(at) = at {
            let ip = Ipv4::parse(&f).unwrap();
            let sum = !fold(sum(&f[34..], pseudo_sum(&f, &ip)));
            f[at..at + 2].copy_from_slice(&sum.to_be_bytes());
        }
        f
    }

    /// True when the frame's TCP or UDP checksum verifies.
    pub(crate) fn l4_csum_ok(frame: &[u8]) -> bool {
        let ip = Ipv4::parse(frame).unwrap();
        fold(sum(&frame[ip.l4..ip.end], pseudo_sum(frame, &ip))) == 0xFFFF
    }

    /// What a Linux stack hands over for `frame` with `CHECKSUM_PARTIAL`: the TCP or UDP
    /// checksum field holding the pseudo-header sum.
    fn partial(mut frame: Vec<u8>, at: usize) -> Vec<u8> {
        let ip = Ipv4::parse(&frame).unwrap();
        let pseudo = fold(pseudo_sum(&frame, &ip));
        frame[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
        frame
    }

    #[test]
    fn the_header_reads_and_writes_the_kernel_layout() {
        // flags NEEDS_CSUM, TCPV4|ECN, hdr_len 66, gso_size 1448 (0x05a8), csum_start 34,
        // csum_offset 16, num_buffers.
        let raw = [1, 0x81, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 1, 0];
        let h = VnetHdr::parse(&raw).unwrap();
        assert_eq!(
            h,
            VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_TCPV4 | GSO_ECN,
                hdr_len: 66,
                gso_size: 1448,
                csum_start: 34,
                csum_offset: 16,
            }
        );
        assert_eq!(
            h.to_bytes(),
            [1, 0x81, 66, 0, 0xa8, 0x05, 34, 0, 16, 0, 0, 0]
        );
        assert_eq!(VnetHdr::parse(&raw[..11]), None);
    }

    #[test]
    fn outbound_asks_the_device_for_tso_and_checksums() {
        let all = Offloads::all();
        let mut f = partial(tcp_frame(&[7; 3000], 0x18), 50);
        let tso = |gso_type| VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let before = f.clone();
        for gso_type in [GSO_TCPV4, GSO_TCPV4 | GSO_ECN] {
            assert_eq!(
                outbound(&tso(gso_type), &mut f, all),
                Ok(Outbound {
                    offload: TxOffload::Tso { mss: 1448 },
                    software_csum: false
                })
            );
        }
        assert_eq!(f, before, "the device completes a super-frame's checksums");
        let csum = VnetHdr {
            gso_type: GSO_NONE,
            gso_size: 0,
            ..tso(0)
        };
        let mut f = partial(tcp_frame(b"hello", 0x18), 50);
        assert_eq!(
            outbound(&csum, &mut f, all).map(|o| o.offload),
            Ok(TxOffload::Csum)
        );
        let mut u = partial(
            ipv4_frame(
                PROTO_UDP,
                &[0, 53, 0, 53, 0, 12, 0, 0, 1, 2, 3, 4],
                [10, 0, 0, 1],
                [10, 0, 0, 2],
            ),
            40,
        );
        let udp = VnetHdr {
            csum_offset: 6,
            ..csum
        };
        assert_eq!(
            outbound(&udp, &mut u, all).map(|o| o.offload),
            Ok(TxOffload::Csum)
        );
        let mut plain = tcp_frame(b"x", 0x10);
        assert_eq!(
            outbound(&VnetHdr::default(), &mut plain, Offloads::empty()),
            Ok(Outbound {
                offload: TxOffload::None,
                software_csum: false
            })
        );
    }

    #[test]
    fn outbound_completes_in_software_what_the_device_does_not() {
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let whole = tcp_frame(&[0x5A; 1001], 0x18);
        let sw = Ok(Outbound {
            offload: TxOffload::None,
            software_csum: true,
        });
        // A VF without the checksum offload.
        let mut f = partial(whole.clone(), 50);
        assert!(!l4_csum_ok(&f));
        assert_eq!(outbound(&hdr, &mut f, Offloads::TSO4), sw);
        assert_eq!(f, whole);
        // A fragment: the device computes no checksum of a part.
        let mut frag = partial(whole.clone(), 50);
        frag[20] |= 0x20;
        assert_eq!(outbound(&hdr, &mut frag, Offloads::all()), sw);
        assert!(l4_csum_ok(&frag));
        // A checksum somewhere else than a TCP header's right after the IPv4 header.
        let mut f = partial(whole.clone(), 50);
        let odd = VnetHdr {
            csum_start: 30,
            csum_offset: 20,
            ..hdr
        };
        assert_eq!(outbound(&odd, &mut f, Offloads::all()), sw);
        assert_ne!(f, whole);
        // Not IPv4: an IPv6 frame's partial checksum (here a made-up one) is completed too.
        let mut v6 = vec![0u8; 80];
        v6[12..14].copy_from_slice(&[0x86, 0xDD]);
        v6[54..80].fill(0x11);
        // The field holds the pseudo-header's sum, here 0.
        v6[70..72].fill(0);
        let v6hdr = VnetHdr {
            csum_start: 54,
            ..hdr
        };
        assert_eq!(outbound(&v6hdr, &mut v6, Offloads::all()), sw);
        assert_eq!(fold(sum(&v6[54..], 0)), 0xFFFF);
    }

    #[test]
    fn outbound_refuses_what_neither_can_do() {
        let mut f = tcp_frame(&[1; 3000], 0x10);
        let tso = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        assert_eq!(
            outbound(&tso, &mut f, Offloads::TX_CSUM),
            Err(Unsendable::NoTso)
        );
        let zero = VnetHdr { gso_size: 0, ..tso };
        assert_eq!(
            outbound(&zero, &mut f, Offloads::all()),
            Err(Unsendable::NoSegmentSize)
        );
        // UDP (3), TCPv6 (4), UDP_L4 (5): never offered to the VM.
        for gso_type in [3, 4, 5, 4 | GSO_ECN] {
            let h = VnetHdr { gso_type, ..tso };
            assert_eq!(
                outbound(&h, &mut f, Offloads::all()),
                Err(Unsendable::GsoType(gso_type))
            );
        }
        let outside = VnetHdr {
            gso_type: GSO_NONE,
            csum_start: 3040,
            ..tso
        };
        let len = f.len();
        assert_eq!(
            outbound(&outside, &mut f, Offloads::empty()),
            Err(Unsendable::CsumOutside {
                start: 3040,
                offset: 16,
                len
            })
        );
    }

    #[test]
    fn inbound_tells_the_vm_what_the_device_checked() {
        let mut f = tcp_frame(b"abc", 0x18);
        let before = f.clone();
        let valid = RxMeta {
            csum_valid: true,
            gso_mss: None,
        };
        assert_eq!(
            inbound(valid, &mut f).to_bytes(),
            [F_DATA_VALID, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(inbound(RxMeta::default(), &mut f), VnetHdr::default());
        assert_eq!(f, before, "a plain frame is not touched");
    }

    #[test]
    fn inbound_hands_a_super_frame_over_with_a_partial_checksum() {
        let whole = tcp_frame(&[0xC3; 40_000], 0x18);
        let mut f = whole.clone();
        let meta = RxMeta {
            csum_valid: true,
            gso_mss: Some(8949),
        };
        let h = inbound(meta, &mut f);
        assert_eq!(
            h.to_bytes(),
            // NEEDS_CSUM, TCPV4, hdr_len 54, gso_size 8949 (0x22f5), start 34, offset 16.
            [1, 1, 54, 0, 0xf5, 0x22, 34, 0, 16, 0, 0, 0]
        );
        // The field holds the pseudo-header sum: 10.0.0.1 + 10.0.0.2 + 6 + 40,020 bytes.
        let pseudo = fold(0x0a00 + 0x0001 + 0x0a00 + 0x0002 + 6 + 40_020);
        assert_eq!(&f[50..52], &pseudo.to_be_bytes());
        assert_eq!(&f[..50], &whole[..50]);
        assert_eq!(&f[52..], &whole[52..]);
        // Completing it as a segmenting stack would gives the device's checksum back.
        complete_csum(&mut f, h.csum_start, h.csum_offset).unwrap();
        assert_eq!(f, whole);

        // CWR rides on the first segment: GSO_ECN, as Linux's GRO says it.
        let mut f = tcp_frame(&[0; 20_000], 0x80 | 0x10);
        assert_eq!(inbound(meta, &mut f).gso_type, GSO_TCPV4 | GSO_ECN);

        // A "super-frame" that is not TCP/IPv4 goes as a checked frame, untouched.
        let mut u = ipv4_frame(PROTO_UDP, &[0; 100], [1, 1, 1, 1], [2, 2, 2, 2]);
        let before = u.clone();
        assert_eq!(inbound(meta, &mut u).flags, F_DATA_VALID);
        assert_eq!(u, before);
    }
}
