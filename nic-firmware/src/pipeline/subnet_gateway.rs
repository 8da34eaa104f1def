//! F10: the subnet gateway is a limited router. The sender's own gateway answers an ICMP
//! echo request and nothing else; the gateway of any other subnet answers nobody, even when
//! a route leads to it.
use super::ipv4::Ipv4Info;
use super::trace::{Step, Tracer};
use super::{eth, Sender, Verdict};
use crate::frame::FrameBuf;
use shared_regs::stats::Counter;
use smoltcp::wire::{Icmpv4Message, Icmpv4Packet, IpProtocol, Ipv4Packet};

/// True for an ICMP echo request.
fn is_echo_request(ip: &Ipv4Info, frame: &[u8]) -> bool {
    if ip.protocol != IpProtocol::Icmp {
        return false;
    }
    Icmpv4Packet::new_checked(ip.l4(frame))
        .map(|p| p.msg_type() == Icmpv4Message::EchoRequest)
        .unwrap_or(false)
}

/// F10: the own gateway answers ping and nothing else.
pub(super) fn to_own_gateway<T: Tracer>(
    sender: &Sender<'_>,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let echo = is_echo_request(ip, frame.data());
    tr.step(Step::Gateway {
        ip: ip.dst.into(),
        own_subnet: true,
        echo,
    });
    if !echo {
        return sender.drop(Counter::DropToGateway);
    }
    if !write_echo_reply(sender, ip, frame) {
        return sender.drop(Counter::DropMalformed);
    }
    Verdict::Reply { vf: sender.vf }
}

/// Turns the echo request in `frame` into the gateway's echo reply, in place.
fn write_echo_reply(sender: &Sender<'_>, ip: &Ipv4Info, frame: &mut FrameBuf) -> bool {
    let data = frame.data_mut();
    eth::set_macs(data, sender.cfg.mac, sender.subnet.gateway_mac);
    let Ok(mut pkt) = Ipv4Packet::new_checked(eth::payload_mut(data)) else {
        return false;
    };
    pkt.set_src_addr(ip.dst.into());
    pkt.set_dst_addr(ip.src.into());
    pkt.set_hop_limit(64);
    pkt.fill_checksum();
    let Ok(mut icmp) = Icmpv4Packet::new_checked(pkt.payload_mut()) else {
        return false;
    };
    if !super::ipv4::sums_to_ones(icmp.as_ref()) {
        return false;
    }
    icmp.set_msg_type(Icmpv4Message::EchoReply);
    icmp.set_msg_code(0);
    icmp.fill_checksum();
    true
}

/// F10: another subnet's gateway, reached through a route, answers nobody.
pub(super) fn to_foreign_gateway<T: Tracer>(
    sender: &Sender<'_>,
    ip: &Ipv4Info,
    frame: &FrameBuf,
    tr: &mut T,
) -> Verdict {
    let echo = is_echo_request(ip, frame.data());
    tr.step(Step::Gateway {
        ip: ip.dst.into(),
        own_subnet: false,
        echo,
    });
    if echo {
        sender.drop(Counter::DropForeignGateway)
    } else {
        sender.drop(Counter::DropToGateway)
    }
}
