//! The forwarding pipeline of spec/vpc-forwarding.md: a function over a batch of frames and
//! the tables. It decides and rewrites frames in place (encapsulation included); moving
//! them (DMA, ports) and counting is the caller's job, so the same code serves forwarding,
//! `TRACE`, tests, benchmarks and fuzzing.
//!
//! A frame from a VF meets F1 (ethertype) and F2 (source MAC) in `from_vf` here, then the
//! module of its protocol; the crate docs map every rule to its module. The rule modules
//! are public for their documentation; what they hold is the pipeline's own.
pub mod arp;
mod batch;
pub mod deliver;
pub mod dhcp;
mod eth;
pub mod flow_cache;
pub mod ipv4;
pub mod mtu;
pub mod route;
pub mod subnet_gateway;
pub mod trace;
pub mod uplink;
pub mod vxlan;

use crate::frame::FrameBuf;
use crate::tables::lpm::Route;
use crate::tables::mapping::{Mapping, MappingKey};
use crate::tables::vpc::{Subnet, VfConfig, Vpc};
use crate::tables::Tables;
pub use flow_cache::{FlowCache, FlowEntry};
use shared_regs::entry::UPLINK_FUNCTION;
use shared_regs::stats::Counter;
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
///
/// The same verdicts and bytes as [`process_frame`] on each frame in turn, faster: frames
/// from a VF go through the staged batch of [`batch`] (parse all, look up all, then decide
/// each), so the table reads of a batch overlap.
pub fn process_batch(
    tables: &Tables<'_>,
    src: Port,
    frames: &mut [FrameBuf],
    verdicts: &mut [Verdict],
) {
    match src {
        Port::Vf(vf) => batch::from_vf(tables, None, vf, frames, verdicts),
        Port::Uplink => {
            for (frame, verdict) in frames.iter_mut().zip(verdicts.iter_mut()) {
                *verdict = process_frame(tables, src, frame);
            }
        }
    }
}

/// [`process_batch`] with a flow cache in front (see [`flow_cache`]): the same verdicts
/// and bytes, as long as `cache` was invalidated after every change to `tables`.
pub fn process_batch_cached(
    tables: &Tables<'_>,
    cache: &mut FlowCache<'_>,
    src: Port,
    frames: &mut [FrameBuf],
    verdicts: &mut [Verdict],
) {
    match src {
        Port::Vf(vf) if cache.capacity() > 0 => {
            batch::from_vf(tables, Some(cache), vf, frames, verdicts)
        }
        _ => process_batch(tables, src, frames, verdicts),
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
    let hdr = eth::Header::parse(frame.data());
    tr.step(Step::Received {
        function: match src {
            Port::Vf(vf) => vf,
            Port::Uplink => UPLINK_FUNCTION,
        },
        ethertype: hdr.map_or(0, |h| h.ethertype),
        len: frame.len() as u32,
    });
    match src {
        Port::Vf(vf) => match sender(tables, vf) {
            Some(sender) => from_vf(tables, &sender, hdr, frame, &Hints::NONE, tr),
            // The rings of an unassigned VF are not served, so a frame without a complete
            // sender context means the tables changed under a queued frame: drop it as
            // unroutable.
            None => Verdict::drop(src, Counter::DropNoRoute),
        },
        Port::Uplink => uplink::from_uplink(tables, hdr, frame, tr),
    }
}

/// Table answers found ahead of the decision (by the staged batch), keyed by what was
/// looked up. A lookup whose key differs from the hint's reads the table, so a hint can
/// only save time, never change a verdict.
#[derive(Clone, Copy)]
pub(crate) struct Hints {
    /// (route table, address) and its longest-prefix match.
    route: Option<(u16, u32, Option<Route>)>,
    /// A mapping key and its entry.
    mapping: Option<(MappingKey, Option<Mapping>)>,
}

impl Hints {
    /// No hint: every lookup reads the tables.
    pub const NONE: Hints = Hints {
        route: None,
        mapping: None,
    };

    /// The mapping for `key`.
    #[inline(always)]
    pub fn mapping(&self, tables: &Tables<'_>, key: MappingKey) -> Option<Mapping> {
        match self.mapping {
            Some((k, m)) if k == key => m,
            _ => tables.mappings.get(key),
        }
    }

    /// The longest-prefix match for `ip` in route table `table`.
    #[inline(always)]
    pub fn route(&self, tables: &Tables<'_>, table: u16, ip: u32) -> Option<Route> {
        match self.route {
            Some((t, a, r)) if t == table && a == ip => r,
            _ => tables.routes.lookup(table, ip),
        }
    }
}

/// A frame from the VF of `sender`, whose Ethernet header is `hdr` (`None`: too short).
#[inline(always)]
fn from_vf<T: Tracer>(
    tables: &Tables<'_>,
    sender: &Sender<'_>,
    hdr: Option<eth::Header>,
    frame: &mut FrameBuf,
    hints: &Hints,
    tr: &mut T,
) -> Verdict {
    let vf = sender.vf;
    let Some(hdr) = hdr else {
        return sender.drop(Counter::DropMalformed);
    };
    // F1 before F2: an IPv6 frame is an ethertype drop whatever its source MAC.
    if hdr.ethertype != eth::ETHERTYPE_ARP && hdr.ethertype != eth::ETHERTYPE_IPV4 {
        return sender.drop(Counter::DropEthertype);
    }
    tr.step(Step::Ethertype {
        ethertype: hdr.ethertype,
    });
    if hdr.src != sender.cfg.mac {
        return sender.drop(Counter::DropSrcMac);
    }
    tr.step(Step::SrcMac { vf });
    if hdr.ethertype == eth::ETHERTYPE_ARP {
        arp::from_vf(tables, sender, frame, hints, tr)
    } else {
        ipv4::from_vf(tables, sender, &hdr, frame, hints, tr)
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
mod tests_batch;
#[cfg(test)]
mod tests_dhcp;
#[cfg(test)]
mod tests_offload;
#[cfg(test)]
mod tests_replace;
#[cfg(test)]
pub(crate) mod tests_uplink;
