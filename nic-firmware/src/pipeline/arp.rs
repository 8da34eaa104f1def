//! F3: the ARP proxy. The firmware answers every ARP request itself; no ARP leaves a VF.
use super::trace::{Step, Tracer};
use super::{eth, Hints, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::mapping::{Location, MappingKey};
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::ArpAnswerCase;
use shared_regs::ETH_HEADER_LEN;
use smoltcp::wire::ArpOperation;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// An ARP message for IPv4 over Ethernet, in wire order (RFC 826): the only kind a VF
/// may send. Read and written through this view, with the checks smoltcp's `ArpRepr`
/// makes (its reader is the reference in the tests).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct ArpWire {
    htype: [u8; 2],
    ptype: [u8; 2],
    hlen: u8,
    plen: u8,
    oper: [u8; 2],
    sha: [u8; 6],
    spa: [u8; 4],
    tha: [u8; 6],
    tpa: [u8; 4],
}

const _: () = assert!(core::mem::size_of::<ArpWire>() == 28);

/// Hardware type Ethernet, protocol type IPv4.
const HTYPE_ETHERNET: [u8; 2] = [0, 1];
const PTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const OPER_REQUEST: [u8; 2] = [0, 1];
const OPER_REPLY: [u8; 2] = [0, 2];

/// What a well-formed Ethernet/IPv4 ARP message says.
#[derive(Clone, Copy)]
struct Arp {
    /// Request, reply, or another operation (`None`).
    op: Option<ArpOperation>,
    sha: [u8; 6],
    spa: u32,
    tpa: u32,
}

/// The ARP message at the start of `payload`; `None` when it is not Ethernet/IPv4 ARP
/// or is cut short.
fn parse(payload: &[u8]) -> Option<Arp> {
    let (w, _) = ArpWire::ref_from_prefix(payload).ok()?;
    if w.htype != HTYPE_ETHERNET || w.ptype != PTYPE_IPV4 || w.hlen != 6 || w.plen != 4 {
        return None;
    }
    Some(Arp {
        op: match w.oper {
            OPER_REQUEST => Some(ArpOperation::Request),
            OPER_REPLY => Some(ArpOperation::Reply),
            _ => None,
        },
        sha: w.sha,
        spa: u32::from_be_bytes(w.spa),
        tpa: u32::from_be_bytes(w.tpa),
    })
}

/// The sender and target address of the ARP message in `frame` (sender in the high
/// half), as the flow cache keys an ARP request; `None` when it is not Ethernet/IPv4 ARP.
#[inline(always)]
pub(super) fn addrs(frame: &[u8]) -> Option<u64> {
    let a = parse(eth::payload(frame))?;
    Some(u64::from(a.spa) << 32 | u64::from(a.tpa))
}

/// The reply to the request in `frame`, answered `answer` when its flow was cached (the
/// sender's VF, source MAC and both addresses as when the pipeline answered it): what
/// [`from_vf`] would do. `None` for anything but a well-formed request.
#[inline(always)]
pub(super) fn cached_reply(
    sender: &Sender<'_>,
    frame: &mut FrameBuf,
    answer: [u8; 6],
) -> Option<Verdict> {
    let arp = parse(eth::payload(frame.data()))?;
    if arp.op != Some(ArpOperation::Request) {
        return None;
    }
    Some(if write_reply(frame, &arp, answer) {
        Verdict::Reply { vf: sender.vf }
    } else {
        sender.drop(Counter::DropMalformed)
    })
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
        Some(ArpOperation::Request) => {}
        Some(_) => return sender.drop(Counter::ArpIgnored),
        None => return sender.drop(Counter::DropMalformed),
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
    let reply = ArpWire {
        htype: HTYPE_ETHERNET,
        ptype: PTYPE_IPV4,
        hlen: 6,
        plen: 4,
        oper: OPER_REPLY,
        sha: answer,
        spa: req.tpa.to_be_bytes(),
        tha: req.sha,
        tpa: req.spa.to_be_bytes(),
    };
    let end = ETH_HEADER_LEN.saturating_add(core::mem::size_of::<ArpWire>());
    // The request is at least `end` long (it parsed): cut to the reply, then zero-pad.
    frame.truncate(end);
    if !frame.extend_to(eth::MIN_FRAME) {
        return false;
    }
    let data = frame.data_mut();
    eth::set_macs(data, req.sha, answer);
    match data.get_mut(ETH_HEADER_LEN..end) {
        Some(at) => {
            at.copy_from_slice(reply.as_bytes());
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;
    use smoltcp::wire::{ArpPacket, ArpRepr, EthernetAddress, Ipv4Address};

    /// smoltcp's reading of `payload`, as the pipeline took it before the typed view.
    fn reference(payload: &[u8]) -> Option<(Option<ArpOperation>, [u8; 6], u32, u32)> {
        match ArpRepr::parse(&ArpPacket::new_checked(payload).ok()?).ok()? {
            ArpRepr::EthernetIpv4 {
                operation,
                source_hardware_addr,
                source_protocol_addr,
                target_protocol_addr,
                ..
            } => Some((
                match operation {
                    ArpOperation::Request | ArpOperation::Reply => Some(operation),
                    _ => None,
                },
                source_hardware_addr.0,
                u32::from(source_protocol_addr),
                u32::from(target_protocol_addr),
            )),
            _ => None,
        }
    }

    /// The typed view accepts exactly the messages smoltcp accepts, with the same fields:
    /// random payloads, most of them with the Ethernet/IPv4 header right.
    #[test]
    fn parse_reads_as_smoltcp_does() {
        let mut rng = Rng(5);
        let mut accepted = 0;
        for _ in 0..200_000 {
            let len = rng.below(40) as usize;
            let mut p: std::vec::Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
            let fixed = [0u8, 1, 8, 0, 6, 4, 0, 1];
            for (i, b) in fixed.iter().enumerate().take(len) {
                if rng.chance(90) {
                    p[i] = *b;
                }
            }
            if len > 7 && rng.chance(30) {
                p[7] = rng.below(4) as u8;
            }
            let ours = parse(&p).map(|a| (a.op, a.sha, a.spa, a.tpa));
            assert_eq!(ours, reference(&p), "{p:02x?}");
            accepted += usize::from(ours.is_some());
        }
        assert!(accepted > 10_000, "{accepted}");
    }

    /// The reply's bytes are those smoltcp emits.
    #[test]
    fn reply_is_what_smoltcp_emits() {
        let req = Arp {
            op: Some(ArpOperation::Request),
            sha: [2, 0, 0, 0, 0, 7],
            spa: 0x0a00_0107,
            tpa: 0x0a00_0109,
        };
        let answer = [2, 0, 0, 0, 0, 9];
        let mut frame = FrameBuf::EMPTY;
        assert!(frame.extend_to(42));
        assert!(write_reply(&mut frame, &req, answer));
        let mut want = [0u8; 28];
        ArpRepr::EthernetIpv4 {
            operation: ArpOperation::Reply,
            source_hardware_addr: EthernetAddress(answer),
            source_protocol_addr: Ipv4Address::from(req.tpa),
            target_hardware_addr: EthernetAddress(req.sha),
            target_protocol_addr: Ipv4Address::from(req.spa),
        }
        .emit(&mut ArpPacket::new_unchecked(&mut want[..]));
        assert_eq!(frame.len(), eth::MIN_FRAME);
        assert_eq!(&frame.data()[ETH_HEADER_LEN..42], &want[..]);
        assert_eq!(&frame.data()[..12], &[req.sha, answer].concat()[..]);
        assert!(frame.data()[42..].iter().all(|b| *b == 0));
    }
}
