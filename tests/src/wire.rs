//! Frame builders and parsers the conformance tests need beyond [`crate::frames`]: IPv4
//! header surgery, TCP, frames from remote hosts over VXLAN, a strict VXLAN parser for F14,
//! ICMP and DHCP (F9) messages. Parsers check what they read and fail the test with a
//! message naming the field.
use crate::frames::{ethernet, ipv4, ipv4_frame, udp, vxlan_frame, BROADCAST, ETHERTYPE_IPV4};
use crate::topo::{HOST, NEXT_HOP_MAC, UPLINK_MAC};
use host_driver::Mac;
use smoltcp::wire::{
    DhcpMessageType, DhcpPacket, DhcpRepr, EthernetAddress, Icmpv4Message, Icmpv4Packet,
    IpProtocol, Ipv4Packet,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Length of an Ethernet header.
pub const ETH: usize = 14;
/// Bytes VXLAN adds: outer Ethernet, IPv4, UDP and VXLAN headers.
pub const VXLAN_OVERHEAD: usize = 50;
/// Offset of the IPv4 TTL in an Ethernet frame.
pub const TTL_AT: usize = ETH + 8;

/// A UDP/IPv4 frame with TTL 64 from port 40000 to port 7 carrying `payload`.
pub fn udp_frame(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    payload: &[u8],
) -> Vec<u8> {
    ipv4_frame(
        dst_mac,
        src_mac,
        src,
        dst,
        IpProtocol::Udp,
        64,
        &udp(40000, 7, payload),
    )
}

/// Changes the IPv4 header of an Ethernet frame with `edit`, then recomputes its checksum.
pub fn edit_ipv4(frame: &mut [u8], edit: impl FnOnce(&mut Ipv4Packet<&mut [u8]>)) {
    let mut pkt = Ipv4Packet::new_unchecked(&mut frame[ETH..]);
    edit(&mut pkt);
    pkt.fill_checksum();
}

/// A TCP segment (20-byte header, SYN) with checksum 0: nothing in the path reads it.
pub fn tcp_syn(src_port: u16, dst_port: u16) -> Vec<u8> {
    let mut t = Vec::with_capacity(20);
    t.extend_from_slice(&src_port.to_be_bytes());
    t.extend_from_slice(&dst_port.to_be_bytes());
    t.extend_from_slice(&1u32.to_be_bytes()); // sequence number
    t.extend_from_slice(&0u32.to_be_bytes()); // acknowledgement number
    t.extend_from_slice(&[0x50, 0x02]); // data offset 5, SYN
    t.extend_from_slice(&0xfaf0u16.to_be_bytes()); // window
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    t
}

/// An ICMP message of `msg_type`/`code` with `rest` after the 4-byte header, checksummed.
pub fn icmp(msg_type: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type, code, 0, 0];
    m.extend_from_slice(rest);
    let mut pkt = Icmpv4Packet::new_unchecked(&mut m[..]);
    pkt.fill_checksum();
    m
}

/// An IPv4 frame whose header carries `options` (a multiple of 4 bytes) after the fixed 20.
pub fn ipv4_frame_with_options(
    dst_mac: Mac,
    src_mac: Mac,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    options: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    assert_eq!(options.len() % 4, 0, "IPv4 options fill whole words");
    let plain = ipv4(src, dst, IpProtocol::Udp, 64, payload);
    let mut packet = plain[..20].to_vec();
    packet.extend_from_slice(options);
    packet.extend_from_slice(&plain[20..]);
    let mut frame = ethernet(dst_mac, src_mac, ETHERTYPE_IPV4, &packet);
    let total = packet.len() as u16;
    let ihl = ((20 + options.len()) / 4) as u8;
    edit_ipv4(&mut frame, |p| {
        p.set_header_len(ihl * 4);
        p.set_total_len(total);
    });
    frame
}

/// A VXLAN frame as remote host (or gateway) `outer_src` sends it to this host.
pub fn from_host(outer_src: Ipv4Addr, vni: u32, inner: &[u8]) -> Vec<u8> {
    vxlan_frame(UPLINK_MAC, NEXT_HOP_MAC, outer_src, HOST, vni, inner)
}

/// The IPv4 header fields of the packet in an Ethernet frame, checked for validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Header {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    pub ttl: u8,
    pub ident: u16,
    pub dont_frag: bool,
    pub more_frags: bool,
    pub frag_offset: u16,
    pub header_len: usize,
    pub total_len: usize,
}

impl Ipv4Header {
    /// Parses the IPv4 header of `frame` (an Ethernet frame); fails the test unless it is a
    /// valid IPv4 header with a good checksum and a total length equal to the bytes present.
    pub fn of(frame: &[u8]) -> Ipv4Header {
        assert_eq!(&frame[12..14], &[0x08, 0x00], "ethertype IPv4");
        let p = Ipv4Packet::new_checked(&frame[ETH..]).expect("a well-formed IPv4 header");
        assert_eq!(p.version(), 4);
        assert!(p.verify_checksum(), "IPv4 header checksum is valid");
        assert_eq!(
            usize::from(p.total_len()),
            frame.len() - ETH,
            "IPv4 total length covers exactly the frame"
        );
        Ipv4Header {
            src: p.src_addr(),
            dst: p.dst_addr(),
            protocol: p.next_header(),
            ttl: p.hop_limit(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
            more_frags: p.more_frags(),
            frag_offset: p.frag_offset(),
            header_len: usize::from(p.header_len()),
            total_len: usize::from(p.total_len()),
        }
    }
}

/// The destination and source MAC of a frame.
pub fn macs(frame: &[u8]) -> (Mac, Mac) {
    (
        frame[0..6].try_into().expect("6 bytes"),
        frame[6..12].try_into().expect("6 bytes"),
    )
}

/// Asserts that `got` is `sent` delivered by F12: new MACs, every other byte unchanged.
pub fn assert_delivered(got: &[u8], sent: &[u8], dst: Mac, src: Mac) {
    assert_eq!(macs(got), (dst, src), "F12 MACs");
    assert_eq!(
        &got[12..],
        &sent[12..],
        "everything after the MACs unchanged"
    );
}

/// A VXLAN frame taken apart (F14).
#[derive(Clone, Debug)]
pub struct Vxlan {
    pub dst_mac: Mac,
    pub src_mac: Mac,
    pub outer: Ipv4Header,
    pub src_port: u16,
    pub dst_port: u16,
    pub udp_len: usize,
    pub udp_checksum: u16,
    /// The 8-byte VXLAN header.
    pub header: [u8; 8],
    pub vni: u32,
    pub inner: Vec<u8>,
}

impl Vxlan {
    /// Takes apart a frame that left the uplink; fails the test unless it is Ethernet,
    /// IPv4 and UDP carrying at least a VXLAN header and an inner Ethernet header.
    pub fn parse(frame: &[u8]) -> Vxlan {
        assert!(
            frame.len() >= VXLAN_OVERHEAD + ETH,
            "a {}-byte frame cannot be VXLAN",
            frame.len()
        );
        let (dst_mac, src_mac) = macs(frame);
        let outer = Ipv4Header::of(frame);
        assert_eq!(outer.protocol, IpProtocol::Udp, "outer protocol UDP");
        assert_eq!(outer.header_len, 20, "outer IPv4 without options");
        let u = &frame[34..42];
        let header: [u8; 8] = frame[42..50].try_into().expect("8 bytes");
        Vxlan {
            dst_mac,
            src_mac,
            src_port: u16::from_be_bytes([u[0], u[1]]),
            dst_port: u16::from_be_bytes([u[2], u[3]]),
            udp_len: usize::from(u16::from_be_bytes([u[4], u[5]])),
            udp_checksum: u16::from_be_bytes([u[6], u[7]]),
            vni: u32::from_be_bytes([0, header[4], header[5], header[6]]),
            header,
            inner: frame[50..].to_vec(),
            outer,
        }
    }

    /// Asserts every outer field F14 prescribes, for a frame to `underlay_dst` in `vni`.
    pub fn assert_f14(&self, underlay_dst: Ipv4Addr, vni: u32) {
        assert_eq!(self.dst_mac, NEXT_HOP_MAC, "outer destination: next hop");
        assert_eq!(self.src_mac, UPLINK_MAC, "outer source: the uplink");
        assert_eq!(self.outer.src, HOST, "outer source IP: this host");
        assert_eq!(self.outer.dst, underlay_dst, "outer destination IP");
        assert_eq!(self.outer.ttl, 64, "outer TTL");
        assert!(self.outer.dont_frag, "outer DF");
        assert!(!self.outer.more_frags && self.outer.frag_offset == 0);
        assert_eq!(self.dst_port, 4789, "UDP destination port");
        assert!(
            self.src_port >= 49152,
            "UDP source port {} in 49152-65535",
            self.src_port
        );
        assert_eq!(self.udp_checksum, 0, "UDP checksum 0");
        assert_eq!(self.udp_len, self.outer.total_len - 20, "UDP length");
        assert_eq!(self.header[0], 0x08, "VXLAN flags: I only");
        assert_eq!(&self.header[1..4], &[0, 0, 0], "VXLAN reserved bits");
        assert_eq!(self.header[7], 0, "VXLAN reserved byte");
        assert_eq!(self.vni, vni, "VNI");
    }
}

/// An ICMP message taken apart, checksum checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icmp {
    pub msg_type: Icmpv4Message,
    pub code: u8,
    /// Bytes 4..8 of the message (identifier and sequence, or unused and next-hop MTU).
    pub rest_of_header: [u8; 4],
    /// Everything after the 8-byte header.
    pub data: Vec<u8>,
}

impl Icmp {
    /// The ICMP message in `frame` (Ethernet, IPv4 without options).
    pub fn of(frame: &[u8]) -> Icmp {
        let ip = Ipv4Header::of(frame);
        assert_eq!(ip.protocol, IpProtocol::Icmp);
        let bytes = &frame[ETH + ip.header_len..];
        let p = Icmpv4Packet::new_checked(bytes).expect("an ICMP message");
        assert!(p.verify_checksum(), "ICMP checksum is valid");
        Icmp {
            msg_type: p.msg_type(),
            code: p.msg_code(),
            rest_of_header: bytes[4..8].try_into().expect("4 bytes"),
            data: bytes[8..].to_vec(),
        }
    }
}

/// What a DHCP client puts in a message.
#[derive(Clone, Copy, Debug)]
pub struct DhcpClient {
    pub kind: DhcpMessageType,
    pub xid: u32,
    pub chaddr: Mac,
    pub ciaddr: Ipv4Addr,
    pub requested: Option<Ipv4Addr>,
    pub broadcast: bool,
}

impl DhcpClient {
    /// A message of `kind` from a client with hardware address `chaddr` and no address.
    pub fn new(kind: DhcpMessageType, chaddr: Mac) -> DhcpClient {
        DhcpClient {
            kind,
            xid: 0x3903_f326,
            chaddr,
            ciaddr: Ipv4Addr::UNSPECIFIED,
            requested: None,
            broadcast: false,
        }
    }

    /// The BOOTP/DHCP message bytes.
    pub fn message(&self) -> Vec<u8> {
        let repr = DhcpRepr {
            message_type: self.kind,
            transaction_id: self.xid,
            secs: 3,
            client_hardware_address: EthernetAddress(self.chaddr),
            client_ip: self.ciaddr,
            your_ip: Ipv4Addr::UNSPECIFIED,
            server_ip: Ipv4Addr::UNSPECIFIED,
            router: None,
            subnet_mask: None,
            relay_agent_ip: Ipv4Addr::UNSPECIFIED,
            broadcast: self.broadcast,
            requested_ip: self.requested,
            client_identifier: Some(EthernetAddress(self.chaddr)),
            server_identifier: None,
            parameter_request_list: Some(&[1, 3, 6, 15, 26, 51, 54]),
            dns_servers: None,
            max_size: Some(1500),
            lease_duration: None,
            renew_duration: None,
            rebind_duration: None,
            additional_options: &[],
        };
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut DhcpPacket::new_unchecked(&mut buf[..]))
            .expect("DHCP message fits its buffer");
        buf
    }

    /// The message in a frame from `src_mac`/`src` to `dst` (UDP 68 -> 67): Ethernet
    /// broadcast when `dst` is 255.255.255.255, else to `dst_mac`.
    pub fn frame(&self, src_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr, dst_mac: Mac) -> Vec<u8> {
        let dst_mac = if dst == Ipv4Addr::BROADCAST {
            BROADCAST
        } else {
            dst_mac
        };
        ipv4_frame(
            dst_mac,
            src_mac,
            src,
            dst,
            IpProtocol::Udp,
            64,
            &udp(68, 67, &self.message()),
        )
    }
}

/// A DHCP server reply taken apart.
#[derive(Clone, Debug)]
pub struct DhcpReply {
    pub dst_mac: Mac,
    pub src_mac: Mac,
    pub ip: Ipv4Header,
    pub src_port: u16,
    pub dst_port: u16,
    /// BOOTP op: 2 for a reply.
    pub op: u8,
    pub xid: u32,
    pub broadcast_flag: bool,
    pub ciaddr: Ipv4Addr,
    pub yiaddr: Ipv4Addr,
    pub chaddr: Mac,
    /// Every option by code (53 message type, 54 server id, ...).
    pub options: BTreeMap<u8, Vec<u8>>,
}

impl DhcpReply {
    /// Parses a frame a VF received as a DHCP reply.
    pub fn parse(frame: &[u8]) -> DhcpReply {
        let (dst_mac, src_mac) = macs(frame);
        let ip = Ipv4Header::of(frame);
        assert_eq!(ip.protocol, IpProtocol::Udp, "DHCP travels in UDP");
        let u = &frame[ETH + ip.header_len..];
        assert_eq!(
            usize::from(u16::from_be_bytes([u[4], u[5]])),
            u.len(),
            "UDP length"
        );
        let pkt = DhcpPacket::new_checked(&u[8..]).expect("a BOOTP message");
        assert_eq!(pkt.magic_number(), 0x6382_5363, "DHCP magic cookie");
        let options = pkt
            .options()
            .map(|o| (o.kind, o.data.to_vec()))
            .collect::<BTreeMap<_, _>>();
        DhcpReply {
            dst_mac,
            src_mac,
            src_port: u16::from_be_bytes([u[0], u[1]]),
            dst_port: u16::from_be_bytes([u[2], u[3]]),
            op: u[8],
            xid: pkt.transaction_id(),
            broadcast_flag: u[8 + 10] & 0x80 != 0,
            ciaddr: pkt.client_ip(),
            yiaddr: pkt.your_ip(),
            chaddr: pkt.client_hardware_address().0,
            options,
            ip,
        }
    }

    /// The DHCP message type (option 53).
    pub fn kind(&self) -> DhcpMessageType {
        let v = self.option(53);
        assert_eq!(v.len(), 1, "option 53 is one byte");
        DhcpMessageType::from(v[0])
    }

    /// Option `code`'s data; fails the test when it is missing.
    pub fn option(&self, code: u8) -> &[u8] {
        self.options
            .get(&code)
            .unwrap_or_else(|| panic!("option {code} missing: {:?}", self.options))
    }
}

/// An Ethernet/IPv4 ARP frame taken apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arp {
    pub dst_mac: Mac,
    pub src_mac: Mac,
    pub op: u16,
    pub sha: Mac,
    pub spa: Ipv4Addr,
    pub tha: Mac,
    pub tpa: Ipv4Addr,
}

impl Arp {
    /// Parses `frame`; fails the test unless it is an Ethernet/IPv4 ARP packet.
    pub fn of(frame: &[u8]) -> Arp {
        assert_eq!(&frame[12..14], &[0x08, 0x06], "ethertype ARP");
        let a = &frame[ETH..ETH + 28];
        assert_eq!(
            &a[0..6],
            &[0, 1, 0x08, 0x00, 6, 4],
            "htype 1, ptype IPv4, 6, 4"
        );
        let (dst_mac, src_mac) = macs(frame);
        let ip4 = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
        Arp {
            dst_mac,
            src_mac,
            op: u16::from_be_bytes([a[6], a[7]]),
            sha: a[8..14].try_into().expect("6 bytes"),
            spa: ip4(&a[14..18]),
            tha: a[18..24].try_into().expect("6 bytes"),
            tpa: ip4(&a[24..28]),
        }
    }

    /// Asserts that `reply` is the F3 answer to a request from `requester` (MAC, address)
    /// for `target`, answered with `answer`: to the requester's MAC, op 2, sha = `answer`,
    /// spa = `target`, tha/tpa = the requester, zero-padded to 60 bytes.
    pub fn assert_reply(reply: &[u8], requester: (Mac, Ipv4Addr), target: Ipv4Addr, answer: Mac) {
        assert_eq!(reply.len(), 60, "ARP reply padded to the Ethernet minimum");
        assert!(reply[ETH + 28..].iter().all(|&b| b == 0), "zero padding");
        let a = Arp::of(reply);
        assert_eq!(a.dst_mac, requester.0, "reply goes to the requester's MAC");
        assert_eq!(a.op, 2, "ARP op reply");
        assert_eq!(
            (a.sha, a.spa),
            (answer, target),
            "sha = answered MAC, spa = T"
        );
        assert_eq!(
            (a.tha, a.tpa),
            requester,
            "tha/tpa = the requester's sha/spa"
        );
    }
}
