//! F9: the DHCP server each subnet gateway runs. It hands a VF exactly its primary address,
//! with the VPC's options, and never forwards a DHCP client message.
use super::ipv4::{self, Ipv4Info};
use super::trace::{Step, Tracer};
use super::{eth, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::lpm::prefix_mask;
use shared_regs::stats::Counter;
use shared_regs::{ETH_HEADER_LEN, VF_MTU};
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    DhcpMessageType, DhcpOption, DhcpPacket, DhcpRepr, EthernetAddress, IpAddress, IpProtocol,
    UdpPacket, UdpRepr,
};

const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
/// Lease time handed out (option 51).
pub const LEASE_SECS: u32 = 3600;
/// BOOTP's minimum message size (RFC 1542): some clients drop shorter replies.
const MIN_MESSAGE: usize = 300;
const OPT_DNS: u8 = 6;
const OPT_DOMAIN: u8 = 15;
const OPT_MTU: u8 = 26;
const IPV4_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// True for UDP from port 68 to port 67.
pub(super) fn is_client_message(ip: &Ipv4Info, frame: &[u8]) -> bool {
    if ip.protocol != IpProtocol::Udp {
        return false;
    }
    let l4 = ip.l4(frame);
    l4.get(0..4) == Some(&[0, CLIENT_PORT as u8, 0, SERVER_PORT as u8][..])
}

/// True when the message is for this subnet's server: to the broadcast address or the
/// gateway, from no address yet or from one of the VF's own.
pub(super) fn is_for_server(sender: &Sender<'_>, ip: &Ipv4Info) -> bool {
    (ip.dst == u32::MAX || ip.dst == sender.subnet.gateway_ip())
        && (ip.src == 0 || sender.owns(ip.src))
}

/// What the request asked for, copied out of the frame that the reply will overwrite.
struct Request {
    kind: DhcpMessageType,
    xid: u32,
    secs: u16,
    chaddr: [u8; 6],
    ciaddr: u32,
    requested: Option<u32>,
    broadcast: bool,
}

fn parse(ip: &Ipv4Info, frame: &[u8]) -> Option<Request> {
    let udp = ip.l4(frame);
    let pkt = DhcpPacket::new_checked(udp.get(UDP_HEADER..)?).ok()?;
    let repr = DhcpRepr::parse(&pkt).ok()?;
    Some(Request {
        kind: repr.message_type,
        xid: repr.transaction_id,
        secs: repr.secs,
        chaddr: repr.client_hardware_address.0,
        ciaddr: u32::from(repr.client_ip),
        requested: repr.requested_ip.map(u32::from),
        broadcast: repr.broadcast,
    })
}

pub(super) fn serve<T: Tracer>(
    sender: &Sender<'_>,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let Some(req) = parse(ip, frame.data()) else {
        return sender.drop(Counter::DropMalformed);
    };
    if req.chaddr != sender.cfg.mac {
        return sender.drop(Counter::DropDhcpSpoof);
    }
    let primary = sender.cfg.primary_ip;
    let (kind, yiaddr) = match req.kind {
        DhcpMessageType::Discover => (DhcpMessageType::Offer, primary),
        DhcpMessageType::Request => {
            let asked = req.requested.unwrap_or(req.ciaddr);
            if asked == primary {
                (DhcpMessageType::Ack, primary)
            } else {
                (DhcpMessageType::Nak, 0)
            }
        }
        DhcpMessageType::Inform => (DhcpMessageType::Ack, 0),
        DhcpMessageType::Release | DhcpMessageType::Decline => {
            return sender.drop(Counter::DhcpConsumed)
        }
        _ => return sender.drop(Counter::DropMalformed),
    };
    tr.step(Step::Dhcp {
        request: req.kind.into(),
        offered: yiaddr.into(),
        reply: kind.into(),
    });
    if write_reply(sender, &req, kind, yiaddr, frame) {
        Verdict::Reply { vf: sender.vf }
    } else {
        sender.drop(Counter::DropMalformed)
    }
}

/// Builds the server's reply in `frame`, replacing the request.
fn write_reply(
    sender: &Sender<'_>,
    req: &Request,
    kind: DhcpMessageType,
    yiaddr: u32,
    frame: &mut FrameBuf,
) -> bool {
    let subnet = sender.subnet;
    let vpc = sender.vpc;
    let server = subnet.gateway_ip();
    let nak = kind == DhcpMessageType::Nak;

    let mut dns = [0u8; 4 * shared_regs::entry::VPC_DNS_SERVERS];
    let servers = vpc.dns.get(..usize::from(vpc.dns_count)).unwrap_or(&[]);
    let default_dns = [vpc.cidr.saturating_add(2)];
    let servers = if servers.is_empty() {
        &default_dns[..]
    } else {
        servers
    };
    for (chunk, s) in dns.chunks_exact_mut(4).zip(servers) {
        chunk.copy_from_slice(&s.to_be_bytes());
    }
    let dns = dns.get(..servers.len().saturating_mul(4)).unwrap_or(&[]);
    let domain = vpc.domain.get(..usize::from(vpc.domain_len)).unwrap_or(&[]);
    let mtu = (VF_MTU as u16).to_be_bytes();
    let options = [
        DhcpOption {
            kind: OPT_DNS,
            data: dns,
        },
        DhcpOption {
            kind: OPT_MTU,
            data: &mtu,
        },
        DhcpOption {
            kind: OPT_DOMAIN,
            data: domain,
        },
    ];
    let options = match (nak, domain.is_empty()) {
        (true, _) => &options[..0],
        (false, true) => &options[..2],
        (false, false) => &options[..],
    };
    let lease = kind != DhcpMessageType::Nak && yiaddr != 0;
    let repr = DhcpRepr {
        message_type: kind,
        transaction_id: req.xid,
        secs: req.secs,
        client_hardware_address: EthernetAddress(req.chaddr),
        client_ip: if nak { 0 } else { req.ciaddr }.into(),
        your_ip: yiaddr.into(),
        server_ip: 0.into(),
        router: (!nak).then_some(server.into()),
        subnet_mask: (!nak).then_some(prefix_mask(subnet.prefix_len).into()),
        relay_agent_ip: 0.into(),
        broadcast: req.broadcast,
        requested_ip: None,
        client_identifier: None,
        server_identifier: Some(server.into()),
        parameter_request_list: None,
        dns_servers: None,
        max_size: None,
        lease_duration: lease.then_some(LEASE_SECS),
        renew_duration: None,
        rebind_duration: None,
        additional_options: options,
    };

    // RFC 2131 4.1: NAKs and replies to clients that asked for it go to broadcast; a client
    // with an address (INFORM) gets unicast to it; else unicast to the offered address.
    let (dst_ip, dst_mac) = if nak || req.broadcast {
        (u32::MAX, [0xff; 6])
    } else if req.ciaddr != 0 {
        (req.ciaddr, req.chaddr)
    } else {
        (yiaddr, req.chaddr)
    };

    let dhcp_len = repr.buffer_len().max(MIN_MESSAGE);
    let udp_len = UDP_HEADER.saturating_add(dhcp_len);
    let ip_len = IPV4_HEADER.saturating_add(udp_len);
    let Some(buf) = frame.reset(ETH_HEADER_LEN.saturating_add(ip_len)) else {
        return false;
    };
    buf.fill(0);
    eth::set_macs(buf, dst_mac, subnet.gateway_mac);
    let Some((l2, l3)) = buf.split_at_mut_checked(ETH_HEADER_LEN) else {
        return false;
    };
    if let Some(t) = l2.get_mut(12..14) {
        t.copy_from_slice(&eth::ETHERTYPE_IPV4.to_be_bytes());
    }
    let caps = ChecksumCapabilities::default();
    let Some((ip_hdr, udp_buf)) = l3.split_at_mut_checked(IPV4_HEADER) else {
        return false;
    };
    if !ipv4::write_header(ip_hdr, server, dst_ip, IpProtocol::Udp, udp_len, true) {
        return false;
    }
    let Some(dhcp_buf) = udp_buf.get_mut(UDP_HEADER..) else {
        return false;
    };
    if repr.emit(&mut DhcpPacket::new_unchecked(dhcp_buf)).is_err() {
        return false;
    }
    let udp_repr = UdpRepr {
        src_port: SERVER_PORT,
        dst_port: CLIENT_PORT,
    };
    udp_repr.emit(
        &mut UdpPacket::new_unchecked(udp_buf),
        &IpAddress::Ipv4(server.into()),
        &IpAddress::Ipv4(dst_ip.into()),
        dhcp_len,
        |_| {},
        &caps,
    );
    true
}
