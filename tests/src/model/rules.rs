//! The rules F1-F17, one frame at a time, from spec/vpc-forwarding.md alone. Each step
//! names its rule; the order of the checks is the order of the spec's numbering, which is
//! the order in which a frame meets them.
use super::topology::{Location, Mac, Subnet, Target, Topology, Vf};
use shared_regs::stats::Counter;

/// Where a frame entered, or which function's counters a drop moves (F17: the sending
/// port's, except `drop_dst_ip`, which belongs to the port the frame was for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Port {
    Vf(u16),
    Uplink,
}

/// What the model says happens to a frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Not forwarded; exactly `reason` of `port` moves, by one.
    Drop { port: Port, reason: Counter },
    /// These exact bytes reach VF `vf`: a delivery (F12) or an ARP reply (F3).
    ToVf { vf: u16, frame: Vec<u8> },
    /// An echo reply from the VF's gateway (F10) to `request` (the frame as sent).
    EchoReply {
        vf: u16,
        gateway_mac: Mac,
        gateway_ip: u32,
        request: Vec<u8>,
    },
    /// The firmware's DHCP server answers (F9): one frame back to `vf`, nothing else.
    Dhcp { vf: u16 },
    /// This VXLAN frame leaves the uplink (F14); the outer IPv4 identification and
    /// checksum and the UDP source port are the firmware's choice and are checked apart.
    ToUplink { frame: Vec<u8> },
    /// A case the model does not decide (see the report): not compared.
    Unmodelled(&'static str),
}

const ETH: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;
/// F13: the VF MTU.
const VF_MTU: usize = 9001;
/// F13: the MTU towards a gateway target.
const GATEWAY_MTU: usize = 1500;
const VXLAN_PORT: u16 = 4789;

pub fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn mac_at(b: &[u8], at: usize) -> Mac {
    b[at..at + 6].try_into().expect("6 bytes")
}

/// RFC 1071 checksum of `b`; 0 over a header whose checksum field is right.
pub fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 packet that passed F4: the bytes within total length, padding removed.
struct Ipv4<'a> {
    pkt: &'a [u8],
    hl: usize,
}

impl Ipv4<'_> {
    fn src(&self) -> u32 {
        be32(self.pkt, 12)
    }
    fn dst(&self) -> u32 {
        be32(self.pkt, 16)
    }
    fn proto(&self) -> u8 {
        self.pkt[9]
    }
    /// MF set or a fragment offset: a fragment (forwarded unchanged, F4).
    fn fragment(&self) -> bool {
        be16(self.pkt, 6) & 0x3fff != 0
    }
    fn payload(&self) -> &[u8] {
        &self.pkt[self.hl..]
    }
}

/// F4: version 4, IHL >= 5, a valid checksum, header length <= total length <= bytes
/// present. `None`: `drop_malformed`.
fn ipv4(l3: &[u8]) -> Option<Ipv4<'_>> {
    let first = *l3.first()?;
    let hl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || hl < 20 || l3.len() < hl || checksum(&l3[..hl]) != 0 {
        return None;
    }
    let total = usize::from(be16(l3, 2));
    (total >= hl && total <= l3.len()).then(|| Ipv4 {
        pkt: &l3[..total],
        hl,
    })
}

/// The fate of `frame` arriving on `port`.
pub fn decide(t: &Topology, port: Port, frame: &[u8]) -> Fate {
    if frame.len() < ETH {
        return Fate::Unmodelled("runt frame");
    }
    match port {
        Port::Vf(vf) => match t.vf(vf) {
            Some(vf) => from_vf(t, vf, frame),
            None => Fate::Unmodelled("frame from an unassigned VF"),
        },
        Port::Uplink => from_uplink(t, frame),
    }
}

/// Everything the rules need about the sending VF.
struct Sender<'a> {
    vf: &'a Vf,
    subnet: &'a Subnet,
    vni: u32,
    vpc: u16,
}

impl Sender<'_> {
    fn drop(&self, reason: Counter) -> Fate {
        Fate::Drop {
            port: Port::Vf(self.vf.vf),
            reason,
        }
    }
}

fn from_vf(t: &Topology, vf: &Vf, f: &[u8]) -> Fate {
    let Some(subnet) = t.subnet(vf.subnet) else {
        return Fate::Unmodelled("VF without a subnet");
    };
    let Some(vpc) = t.vpc(subnet.vpc) else {
        return Fate::Unmodelled("subnet without a VPC");
    };
    let s = Sender {
        vf,
        subnet,
        vni: vpc.vni,
        vpc: vpc.id,
    };
    // F13 at L2: no frame from a VF is longer than its MTU plus the Ethernet header,
    // whatever it claims inside.
    if f.len() > ETH + VF_MTU {
        return s.drop(Counter::DropOversize);
    }
    // F1, then F2.
    let ethertype = be16(f, 12);
    if ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_ARP {
        return s.drop(Counter::DropEthertype);
    }
    if mac_at(f, 6) != vf.mac {
        return s.drop(Counter::DropSrcMac);
    }
    if ethertype == ETHERTYPE_ARP {
        return arp(t, &s, f);
    }
    let Some(ip) = ipv4(&f[ETH..]) else {
        return s.drop(Counter::DropMalformed);
    };
    if let Some(fate) = dhcp(&s, &ip) {
        return fate;
    }
    // F13 on the way in: no VF takes more than its MTU.
    if ip.pkt.len() > VF_MTU {
        return s.drop(Counter::DropOversize);
    }
    // F6, then F5 (the spec orders neither before the other; the firmware judges the
    // destination first, and so does the model).
    let dst_mac = mac_at(f, 0);
    let dst = ip.dst();
    if dst_mac[0] & 1 != 0 || dst == u32::MAX || dst >> 28 == 0xe || dst == subnet.cidr.last() {
        return s.drop(Counter::DropBcastMcast);
    }
    if vf.check && !vf.owns(ip.src()) {
        return s.drop(Counter::DropSrcIp);
    }
    // Packets to a gateway address in pieces: F10 does not say whether a first fragment
    // is an echo request.
    let gateway_ips = || t.subnets.iter().map(|n| n.gateway_ip());
    if ip.fragment() && gateway_ips().any(|g| g == dst) {
        return Fate::Unmodelled("a fragment to a gateway address");
    }
    // F10 for the VF's own gateway address comes before F7 (the spec orders neither; the
    // firmware judges the address first), then F7.
    if dst_mac == subnet.gateway_mac || dst == subnet.gateway_ip() {
        return route(t, &s, &ip);
    }
    // F7: the sender's own MAC is not "another instance".
    if dst_mac == vf.mac {
        return s.drop(Counter::DropDstMac);
    }
    if let Some(fate) = to_instance_mac(t, &s, dst_mac, &ip) {
        return fate;
    }
    s.drop(Counter::DropDstMac)
}

/// F3, for an ARP frame from a VF whose source MAC passed F2.
fn arp(t: &Topology, s: &Sender, f: &[u8]) -> Fate {
    let a = &f[ETH..];
    if a.len() < 28 || be16(a, 0) != 1 || be16(a, 2) != ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4 {
        return s.drop(Counter::DropMalformed);
    }
    match be16(a, 6) {
        1 => {}
        2 => return s.drop(Counter::ArpIgnored),
        _ => return Fate::Unmodelled("ARP with an opcode other than request or reply"),
    }
    let (sha, spa, tpa) = (mac_at(a, 8), be32(a, 14), be32(a, 24));
    // e: gratuitous ARP or an RFC 5227 probe for one of its own addresses.
    if s.vf.owns(tpa) {
        return s.drop(Counter::ArpIgnored);
    }
    if spa == 0 {
        return Fate::Unmodelled("ARP probe (sender 0.0.0.0) for an address not its own");
    }
    let answer = if tpa == s.subnet.gateway_ip() || !s.subnet.cidr.contains(tpa) {
        // a and d.
        s.subnet.gateway_mac
    } else {
        // b, or c (reserved or unassigned addresses).
        match t.mapping(s.vni, tpa) {
            Some((mac, _)) => mac,
            None => return s.drop(Counter::ArpUnanswered),
        }
    };
    let mut r = Vec::with_capacity(60);
    r.extend_from_slice(&sha);
    r.extend_from_slice(&answer);
    r.extend_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    r.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 2]);
    r.extend_from_slice(&answer);
    r.extend_from_slice(&tpa.to_be_bytes());
    r.extend_from_slice(&sha);
    r.extend_from_slice(&spa.to_be_bytes());
    r.resize(60, 0);
    Fate::ToVf {
        vf: s.vf.vf,
        frame: r,
    }
}

/// F9: a DHCP client message is the server's, whatever F5 and F6 say. `None`: not DHCP.
fn dhcp(s: &Sender, ip: &Ipv4) -> Option<Fate> {
    let udp = ip.payload();
    let client = ip.proto() == 17
        && !ip.fragment()
        && udp.len() >= 8
        && be16(udp, 0) == 68
        && be16(udp, 2) == 67
        && (ip.dst() == u32::MAX || ip.dst() == s.subnet.gateway_ip())
        && (ip.src() == 0 || s.vf.owns(ip.src()));
    if !client {
        return None;
    }
    // chaddr: BOOTP offset 28 after the 8-byte UDP header.
    let Some(chaddr) = udp.get(8 + 28..8 + 34) else {
        return Some(Fate::Unmodelled("DHCP message too short for chaddr"));
    };
    if chaddr != s.vf.mac {
        return Some(s.drop(Counter::DropDhcpSpoof));
    }
    Some(Fate::Dhcp { vf: s.vf.vf })
}

/// F7, second case: a frame to the MAC of another instance of the sender's subnet goes to
/// it without a route lookup.
fn to_instance_mac(t: &Topology, s: &Sender, dst_mac: Mac, ip: &Ipv4) -> Option<Fate> {
    if let Some(r) = t
        .vfs
        .iter()
        .find(|r| r.vf != s.vf.vf && r.subnet == s.subnet.id && r.mac == dst_mac)
    {
        return Some(deliver(t, s, r, ip));
    }
    let remote = t
        .remotes
        .iter()
        .find(|r| r.vni == s.vni && r.mac == dst_mac && s.subnet.cidr.contains(r.ip))?;
    if remote.ip != ip.dst() {
        // The spec: sent to that instance's host all the same (F5 is the receiver's).
        return Some(Fate::Unmodelled(
            "known firmware difference F7: a frame to a remote instance's MAC for another address",
        ));
    }
    Some(encap(t, s.vf.mac, remote.host, s.vni, remote.mac, ip))
}

/// F10 for the sender's own gateway, then F8.
fn route(t: &Topology, s: &Sender, ip: &Ipv4) -> Fate {
    if ip.dst() == s.subnet.gateway_ip() {
        if echo_request(ip) && checksum(ip.payload()) != 0 {
            return Fate::Unmodelled("an echo request to the gateway with a bad ICMP checksum");
        }
        return if echo_request(ip) {
            Fate::EchoReply {
                vf: s.vf.vf,
                gateway_mac: s.subnet.gateway_mac,
                gateway_ip: s.subnet.gateway_ip(),
                request: ip.pkt.to_vec(),
            }
        } else {
            s.drop(Counter::DropToGateway)
        };
    }
    let Some(table) = t.table_of(s.subnet) else {
        return Fate::Unmodelled("subnet without a route table");
    };
    match t.lookup(table, ip.dst()) {
        None => s.drop(Counter::DropNoRoute),
        Some(Target::Blackhole) => s.drop(Counter::DropBlackhole),
        Some(Target::Local) => to_vpc(t, s, s.vpc, ip),
        Some(Target::Peering(peer)) => to_vpc(t, s, peer, ip),
        Some(Target::Gateway(g)) => match t.gateway(g) {
            None => Fate::Unmodelled("route to a gateway that is not configured"),
            Some(_) if ip.pkt.len() > GATEWAY_MTU => Fate::Unmodelled("F13 gateway MTU 1500"),
            Some(g) => encap(t, s.vf.mac, g.underlay, s.vni, g.mac, ip),
        },
        Some(Target::Instance(eni)) => match t.mapping(s.vni, eni) {
            None => s.drop(Counter::DropNoMapping),
            Some((_, Location::LocalVf(r))) => match t.vf(r) {
                Some(r) => deliver(t, s, r, ip),
                None => Fate::Unmodelled("mapping to an unassigned VF"),
            },
            Some((mac, Location::Remote(host))) => encap(t, s.vf.mac, host, s.vni, mac, ip),
        },
    }
}

fn echo_request(ip: &Ipv4) -> bool {
    let icmp = ip.payload();
    ip.proto() == 1 && !ip.fragment() && icmp.len() >= 8 && icmp[0] == 8 && icmp[1] == 0
}

/// `local` or `pcx:`: the addresses of VPC `vpc` (F10 for its gateways, F6 for its subnet
/// broadcasts), then the mapping in its VNI.
fn to_vpc(t: &Topology, s: &Sender, vpc: u16, ip: &Ipv4) -> Fate {
    let Some(v) = t.vpc(vpc) else {
        return Fate::Unmodelled("peering with a VPC that is not configured");
    };
    let dst = ip.dst();
    let subnets = || t.subnets.iter().filter(|n| n.vpc == vpc);
    if subnets().any(|n| n.gateway_ip() == dst) {
        return s.drop(if echo_request(ip) {
            Counter::DropForeignGateway
        } else {
            Counter::DropToGateway
        });
    }
    if subnets().any(|n| n.cidr.last() == dst) {
        return s.drop(Counter::DropBcastMcast);
    }
    match t.mapping(v.vni, dst) {
        None => s.drop(Counter::DropNoMapping),
        Some((_, Location::LocalVf(r))) => match t.vf(r) {
            Some(r) => deliver(t, s, r, ip),
            None => Fate::Unmodelled("mapping to an unassigned VF"),
        },
        Some((mac, Location::Remote(host))) => encap(t, s.vf.mac, host, v.vni, mac, ip),
    }
}

/// Delivery from a local VF: F5 at the receiver, then F12.
fn deliver(t: &Topology, s: &Sender, r: &Vf, ip: &Ipv4) -> Fate {
    if r.vf == s.vf.vf {
        return Fate::Unmodelled("a packet back to its own VF");
    }
    let src_mac = if r.subnet == s.subnet.id {
        s.vf.mac
    } else {
        match t.subnet(r.subnet) {
            Some(n) => n.gateway_mac,
            None => return Fate::Unmodelled("receiver without a subnet"),
        }
    };
    to_vf(r, src_mac, ip)
}

/// F5 at the receiver, F12 and F11 (the IPv4 packet as it was, TTL included).
fn to_vf(r: &Vf, src_mac: Mac, ip: &Ipv4) -> Fate {
    if r.check && !r.owns(ip.dst()) {
        return Fate::Drop {
            port: Port::Vf(r.vf),
            reason: Counter::DropDstIp,
        };
    }
    let mut frame = Vec::with_capacity(ETH + ip.pkt.len());
    frame.extend_from_slice(&r.mac);
    frame.extend_from_slice(&src_mac);
    frame.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    frame.extend_from_slice(ip.pkt);
    Fate::ToVf { vf: r.vf, frame }
}

/// F14: the VXLAN frame to `host`, the checksum, identification and UDP source port left
/// zero (the comparison masks them).
fn encap(t: &Topology, src_mac: Mac, host: u32, vni: u32, dst_mac: Mac, ip: &Ipv4) -> Fate {
    let inner_len = ETH + ip.pkt.len();
    let udp_len = 8 + 8 + inner_len;
    let outer_len = 20 + udp_len;
    if outer_len > usize::from(t.uplink.mtu) {
        return Fate::Unmodelled("F13 uplink MTU");
    }
    let mut f = Vec::with_capacity(ETH + outer_len);
    f.extend_from_slice(&t.uplink.next_hop_mac);
    f.extend_from_slice(&t.uplink.mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f.extend_from_slice(&[0x45, 0]);
    f.extend_from_slice(&(outer_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    f.extend_from_slice(&t.uplink.host.to_be_bytes());
    f.extend_from_slice(&host.to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&VXLAN_PORT.to_be_bytes());
    f.extend_from_slice(&(udp_len as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0, 0x08, 0, 0, 0]);
    f.extend_from_slice(&(vni << 8).to_be_bytes());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    f.extend_from_slice(ip.pkt);
    Fate::ToUplink { frame: f }
}

/// F15, then F5 and F12 at the receiving VF.
fn from_uplink(t: &Topology, f: &[u8]) -> Fate {
    let foreign = Fate::Drop {
        port: Port::Uplink,
        reason: Counter::DropUplinkForeign,
    };
    if be16(f, 12) != ETHERTYPE_IPV4 {
        return foreign;
    }
    let Some(outer) = ipv4(&f[ETH..]) else {
        return Fate::Unmodelled("malformed outer IPv4 on the uplink");
    };
    let udp = outer.payload();
    if outer.dst() != t.uplink.host
        || outer.proto() != 17
        || outer.fragment()
        || udp.len() < 16
        || be16(udp, 2) != VXLAN_PORT
    {
        return foreign;
    }
    let vni = be32(udp, 12) >> 8;
    let Some(vpc) = t.vpc_of_vni(vni) else {
        return foreign;
    };
    if udp[8] & 0x08 == 0 {
        return Fate::Unmodelled("VXLAN without the I flag");
    }
    let inner = &udp[16..];
    if inner.len() < ETH || be16(inner, 12) != ETHERTYPE_IPV4 {
        return Fate::Unmodelled("VXLAN carrying something other than IPv4");
    }
    let Some(ip) = ipv4(&inner[ETH..]) else {
        return Fate::Unmodelled("VXLAN carrying malformed IPv4");
    };
    let drop = |reason| Fate::Drop {
        port: Port::Uplink,
        reason,
    };
    // The inner destination is a local instance's address; or, for a middlebox reached
    // from another host (an `eni:` route, F8), the inner frame is addressed to a local VF
    // of this VPC with its check off (F5): the F15 reading of this project, which lets F8
    // reach an appliance wherever it runs.
    let r = match t.mapping(vni, ip.dst()) {
        Some((_, Location::LocalVf(r))) => r,
        _ => {
            let dst_mac = mac_at(inner, 0);
            // The first such VF by index, should two share a MAC.
            let middlebox = t
                .vfs
                .iter()
                .filter(|v| {
                    v.mac == dst_mac
                        && !v.check
                        && t.subnet(v.subnet).is_some_and(|n| n.vpc == vpc.id)
                })
                .min_by_key(|v| v.vf);
            match middlebox {
                Some(v) => v.vf,
                None => return drop(Counter::DropNoMapping),
            }
        }
    };
    let plausible = match t.mapping(vni, ip.src()) {
        Some((_, Location::Remote(host))) if host == outer.src() => true,
        // A peered sender encapsulates with this VPC's VNI: its mapping is in its own VPC,
        // one whose route tables have a `pcx:` route to this VPC.
        _ if peered_on_host(t, vpc.id, ip.src(), outer.src()) => true,
        // "A gateway of that VPC": one a route table of the VPC routes to.
        _ => t.gateways.iter().any(|g| {
            g.underlay == outer.src()
                && t.routes.iter().any(|r| {
                    r.target == Target::Gateway(g.id)
                        && t.tables.iter().any(|&(id, v)| id == r.table && v == vpc.id)
                })
        }),
    };
    if !plausible {
        return drop(Counter::DropDecapSpoof);
    }
    if ip.pkt.len() > VF_MTU {
        return Fate::Unmodelled("F13 oversize from the uplink");
    }
    let Some(r) = t.vf(r) else {
        return Fate::Unmodelled("mapping to an unassigned VF");
    };
    let Some(n) = t.subnet(r.subnet).filter(|n| n.vpc == vpc.id) else {
        return Fate::Unmodelled("receiver outside the VNI's VPC");
    };
    let src_mac = if n.cidr.contains(ip.src()) {
        mac_at(inner, 6)
    } else {
        n.gateway_mac
    };
    to_vf(r, src_mac, &ip)
}

/// Whether `src` is an instance on `host` in a VPC that has a `pcx:` route to `vpc`.
fn peered_on_host(t: &Topology, vpc: u16, src: u32, host: u32) -> bool {
    t.vpcs.iter().filter(|q| q.id != vpc).any(|q| {
        let peers = t.routes.iter().any(|r| {
            r.target == Target::Peering(vpc)
                && t.tables.iter().any(|&(id, v)| id == r.table && v == q.id)
        });
        peers && matches!(t.mapping(q.vni, src), Some((_, Location::Remote(h))) if h == host)
    })
}
