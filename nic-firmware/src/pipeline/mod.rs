//! The forwarding pipeline of spec/vpc-forwarding.md: a function over a batch of frames and
//! the tables. It decides and rewrites frames in place (encapsulation included); moving
//! them (DMA, ports) and counting is the caller's job, so the same code serves forwarding,
//! `TRACE`, tests, benchmarks and fuzzing.
mod arp;
mod dhcp;
mod eth;
mod ipv4;
pub mod mtu;
mod route;
pub mod trace;
mod uplink;
pub mod vxlan;

use crate::frame::FrameBuf;
use crate::tables::vpc::{Subnet, VfConfig, Vpc};
use crate::tables::Tables;
use shared_regs::stats::Counter;
use shared_regs::trace::StepKind;
use trace::{NoTrace, Step, Tracer};
pub use vxlan::Encap;

/// Where a frame entered or leaves the NIC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// A VF.
    Vf(u16),
    /// The uplink port.
    Uplink,
}

/// The fate of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not forwarded: `reason` of `port`'s counters moves (exactly one drop counter, F17).
    Drop { port: Port, reason: Counter },
    /// Deliver the rewritten frame to VF `vf`'s RX ring.
    ToVf { vf: u16 },
    /// The firmware answered the sender itself (ARP, gateway ping, frag-needed): the frame
    /// now holds the answer for VF `vf`.
    Reply { vf: u16 },
    /// Send the frame, now ready for the wire (encapsulated, or an ARP reply), out of the
    /// uplink.
    ToUplink,
    /// The frame holds an inner IPv4 packet too long for `mtu` without DF: fragment it
    /// (F13), then encapsulate each fragment with `encap` (F14) and send it.
    Fragment { encap: Encap, mtu: u16 },
}

impl Verdict {
    /// A drop counted on `port`.
    pub fn drop(port: Port, reason: Counter) -> Verdict {
        Verdict::Drop { port, reason }
    }
}

/// What the pipeline knows about the VF a frame came from.
#[derive(Clone, Copy)]
pub(crate) struct Sender<'a> {
    pub vf: u16,
    pub cfg: &'a VfConfig,
    pub subnet: &'a Subnet,
    pub vpc: &'a Vpc,
}

impl Sender<'_> {
    pub fn port(&self) -> Port {
        Port::Vf(self.vf)
    }

    pub fn drop(&self, reason: Counter) -> Verdict {
        Verdict::drop(self.port(), reason)
    }

    /// True when `ip` is one of the VF's own addresses.
    pub fn owns(&self, ip: u32) -> bool {
        self.cfg.owns(ip)
    }
}

/// Decides the fate of every frame of a batch that arrived on `src`. `verdicts` gets one
/// entry per frame (the shorter of the two slices bounds the work).
pub fn process_batch(
    tables: &Tables<'_>,
    src: Port,
    frames: &mut [FrameBuf],
    verdicts: &mut [Verdict],
) {
    for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
        *verdict = process_frame(tables, src, frame);
    }
}

/// Decides the fate of one frame that arrived on `src`, rewriting it in place.
pub fn process_frame(tables: &Tables<'_>, src: Port, frame: &mut FrameBuf) -> Verdict {
    process_frame_traced(tables, src, frame, &mut NoTrace)
}

/// [`process_frame`], reporting every decision to `tr`.
pub fn process_frame_traced<T: Tracer>(
    tables: &Tables<'_>,
    src: Port,
    frame: &mut FrameBuf,
    tr: &mut T,
) -> Verdict {
    let ethertype = eth::Header::parse(frame.data()).map_or(0, |h| u32::from(h.ethertype));
    let (port_id, rule) = match src {
        Port::Vf(vf) => (vf, 1),
        Port::Uplink => (0xFFFF, 15),
    };
    tr.step(
        Step::new(
            rule,
            StepKind::Received,
            [ethertype, frame.len() as u32, 0, 0],
        )
        .at(port_id),
    );
    match src {
        Port::Vf(vf) => from_vf(tables, vf, frame, tr),
        Port::Uplink => uplink::from_uplink(tables, frame, tr),
    }
}

fn from_vf<T: Tracer>(tables: &Tables<'_>, vf: u16, frame: &mut FrameBuf, tr: &mut T) -> Verdict {
    let port = Port::Vf(vf);
    // The rings of an unassigned VF are not served, so a frame without a complete sender
    // context means the tables changed under a queued frame: drop it as unroutable.
    let Some(sender) = sender(tables, vf) else {
        return Verdict::drop(port, Counter::DropNoRoute);
    };
    let Some(hdr) = eth::Header::parse(frame.data()) else {
        return sender.drop(Counter::DropMalformed);
    };
    // F1 before F2: an IPv6 frame is an ethertype drop whatever its source MAC.
    if hdr.ethertype != eth::ETHERTYPE_ARP && hdr.ethertype != eth::ETHERTYPE_IPV4 {
        return sender.drop(Counter::DropEthertype);
    }
    tr.step(Step::new(
        1,
        StepKind::Ethertype,
        [u32::from(hdr.ethertype), 0, 0, 0],
    ));
    if hdr.src != sender.cfg.mac {
        return sender.drop(Counter::DropSrcMac);
    }
    tr.step(Step::new(2, StepKind::SrcMac, [0; 4]).at(vf));
    if hdr.ethertype == eth::ETHERTYPE_ARP {
        arp::from_vf(tables, &sender, frame, tr)
    } else {
        ipv4::from_vf(tables, &sender, &hdr, frame, tr)
    }
}

fn sender<'a>(tables: &'a Tables<'_>, vf: u16) -> Option<Sender<'a>> {
    let cfg = tables.vf(vf)?;
    let subnet = tables.subnet(cfg.subnet)?;
    let vpc = tables.vpc(subnet.vpc)?;
    Some(Sender {
        vf,
        cfg,
        subnet,
        vpc,
    })
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_dhcp;
#[cfg(test)]
mod tests_uplink;
