//! Delivery to a local VF: F5's check at the receiver, then the F12 rewrite of the Ethernet
//! header. Every path that ends in a VF's RX ring comes through `to_local_vf`, from a local
//! sender (F7, F8) or a remote one (F15), so no route skips either rule.
use super::ipv4::Ipv4Info;
use super::trace::{Step, Tracer};
use super::{eth, Port, Sender, Verdict};
use crate::frame::FrameBuf;
use crate::tables::Tables;
use shared_regs::stats::Counter;

/// Who sent a frame that is delivered to a local VF, for F12.
#[derive(Clone, Copy)]
pub(super) enum Origin {
    /// A local VF in subnet `subnet` with MAC `mac`.
    Local { subnet: u16, mac: [u8; 6] },
    /// A remote instance (or gateway) by inner source address, in VPC `vni`; its MAC is the
    /// inner frame's source MAC, already in place.
    Remote { src_ip: u32, vni: u32 },
}

/// [`to_local_vf`] for a frame from the VF of `sender`.
pub(super) fn deliver_to_vf<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    vf: u16,
    ip: &Ipv4Info,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let origin = Origin::Local {
        subnet: sender.cfg.subnet,
        mac: sender.cfg.mac,
    };
    to_local_vf(tables, sender.port(), origin, vf, ip.dst, frame, tr)
}

/// F5 at the receiver, then F12. `from` is the port a drop for lack of a VF is counted on.
pub(super) fn to_local_vf<T: Tracer>(
    tables: &Tables<'_>,
    from: Port,
    origin: Origin,
    vf: u16,
    dst_ip: u32,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let (Some(dst), Some(subnet)) = (
        tables.vf(vf),
        tables.vf(vf).and_then(|d| tables.subnet(d.subnet)),
    ) else {
        return Verdict::drop(from, Counter::DropNoMapping);
    };
    tr.step(Step::DstIp {
        vf,
        check: dst.src_dst_check,
        dst: dst_ip.into(),
    });
    if dst.src_dst_check && !dst.owns(dst_ip) {
        return Verdict::drop(Port::Vf(vf), Counter::DropDstIp);
    }
    let same_subnet_mac = match origin {
        Origin::Local { subnet, mac } => (subnet == dst.subnet).then_some(mac),
        Origin::Remote { src_ip, vni } => {
            let same_vpc = tables.vpc(subnet.vpc).is_some_and(|v| v.vni == vni);
            let src_mac = eth::Header::parse(frame.data()).map(|h| h.src);
            if same_vpc && subnet.contains(src_ip) {
                src_mac
            } else {
                None
            }
        }
    };
    let same_subnet = same_subnet_mac.is_some();
    tr.step(Step::Rewrite { vf, same_subnet });
    eth::set_macs(
        frame.data_mut(),
        dst.mac,
        same_subnet_mac.unwrap_or(subnet.gateway_mac),
    );
    Verdict::ToVf { vf }
}
