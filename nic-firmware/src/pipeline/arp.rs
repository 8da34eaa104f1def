//! F3: the ARP proxy. The firmware answers every ARP request itself; no ARP leaves a VF.
use super::trace::{Step, Tracer};
use super::{eth, Hints, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::mapping::{Location, MappingKey};
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::ArpAnswerCase;
use smoltcp::wire::{ArpOperation, ArpPacket, ArpRepr, EthernetAddress, Ipv4Address};

/// A well-formed Ethernet/IPv4 ARP message.
struct Arp {
    op: ArpOperation,
    sha: [u8; 6],
    spa: u32,
    tpa: u32,
}

fn parse(payload: &[u8]) -> Option<Arp> {
    match ArpRepr::parse(&ArpPacket::new_checked(payload).ok()?).ok()? {
        ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } => Some(Arp {
            op: operation,
            sha: source_hardware_addr.0,
            spa: u32::from(source_protocol_addr),
            tpa: u32::from(target_protocol_addr),
        }),
        _ => None,
    }
}

pub(super) fn from_vf<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    frame: &mut FrameBuf,
    hints: &Hints,
    tr: &mut T,
) -> Verdict {
    let Some(arp) = parse(eth::payload(frame.data())) else {
        return sender.drop(Counter::DropMalformed);
    };
    tr.step(Step::ArpRequest {
        sender: arp.spa.into(),
        target: arp.tpa.into(),
    });
    match arp.op {
        ArpOperation::Request => {}
        ArpOperation::Reply => return sender.drop(Counter::ArpIgnored),
        _ => return sender.drop(Counter::DropMalformed),
    }
    // F3e, and gratuitous ARP (sender announces its own address).
    if sender.owns(arp.tpa) || arp.spa == arp.tpa {
        return sender.drop(Counter::ArpIgnored);
    }
    let subnet = sender.subnet;
    let (answer, case) = if arp.tpa == subnet.gateway_ip() {
        (subnet.gateway_mac, ArpAnswerCase::Gateway)
    } else if !subnet.contains(arp.tpa) {
        (subnet.gateway_mac, ArpAnswerCase::OutsideSubnet)
    } else {
        // F3b, F3c: only an instance of the subnet answers; reserved addresses have none.
        let key = MappingKey {
            vni: sender.vpc.vni,
            ip: arp.tpa,
        };
        match hints.mapping(tables, key) {
            Some(m) if matches!(m.location, Location::LocalVf(_) | Location::Remote { .. }) => {
                (m.mac, ArpAnswerCase::Instance)
            }
            _ => return sender.drop(Counter::ArpUnanswered),
        }
    };
    if !write_reply(frame, &arp, answer) {
        return sender.drop(Counter::DropMalformed);
    }
    tr.step(Step::ArpAnswer {
        target: arp.tpa.into(),
        mac: answer,
        case,
    });
    Verdict::Reply { vf: sender.vf }
}

/// Turns the request in `frame` into the reply, in place, padded to the Ethernet minimum.
fn write_reply(frame: &mut FrameBuf, req: &Arp, answer: [u8; 6]) -> bool {
    let reply = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Reply,
        source_hardware_addr: EthernetAddress(answer),
        source_protocol_addr: Ipv4Address::from(req.tpa),
        target_hardware_addr: EthernetAddress(req.sha),
        target_protocol_addr: Ipv4Address::from(req.spa),
    };
    let end = shared_regs::ETH_HEADER_LEN.saturating_add(reply.buffer_len());
    frame.truncate(end);
    if !frame.extend_to(eth::MIN_FRAME) {
        return false;
    }
    let data = frame.data_mut();
    if let Some(pad) = data.get_mut(end..) {
        pad.fill(0);
    }
    eth::set_macs(data, req.sha, answer);
    let Ok(mut pkt) = ArpPacket::new_checked(eth::payload_mut(data)) else {
        return false;
    };
    reply.emit(&mut pkt);
    true
}
