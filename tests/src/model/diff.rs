//! The comparison: each frame's fate by the model against what the firmware did, and a
//! run over many frames and topologies with its tallies.
use super::generate;
use super::nic::{Nic, Observed};
use super::rules::{be16, checksum, decide, Fate, Port};
use super::topology::Topology;
use nic_firmware::testing::Rng;
use std::collections::BTreeMap;

/// Tallies of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub frames: u64,
    pub topologies: u64,
    /// Frames whose fate the model does not decide, by why (not compared).
    pub unmodelled: BTreeMap<&'static str, u64>,
    /// Compared frames by the model's verdict ("drop_src_ip", "to VF", ...).
    pub verdicts: BTreeMap<String, u64>,
    /// Frames where model and firmware differ: (seed, frame number, port, frame, why).
    pub differences: Vec<(u64, u64, Port, Vec<u8>, String)>,
    /// Packets the firmware put into another VPC than the one they came from without a
    /// `pcx:` route of the sender's table to that VPC (F16).
    pub cross_vpc: u64,
}

/// Runs `frames_per_topology` frames on each of `topologies` topologies drawn from
/// `seed`. Counters are read on every function after every frame when `every_counter`,
/// else on the ports the model names (and in full every 1000 frames).
pub fn run(seed: u64, topologies: u64, frames_per_topology: u64, every_counter: bool) -> Report {
    let mut report = Report::default();
    for n in 0..topologies {
        let tseed = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9));
        let mut rng = Rng::new(tseed);
        let want = generate::topology(&mut rng);
        let (mut nic, t) = Nic::program(&want);
        report.topologies += 1;
        for i in 0..frames_per_topology {
            let (port, frame) = generate::frame(&t, &mut rng);
            let fate = decide(&t, port, &frame);
            let mut watch = vec![port];
            if let Fate::Drop { port: p, .. } = fate {
                watch.push(p);
            }
            // An unmodelled frame may move a counter anywhere: read them all, so that the next
            // frame's deltas are its own.
            let all = every_counter || i % 1000 == 999 || matches!(fate, Fate::Unmodelled(_));
            let seen = nic.run(port, &frame, (!all).then_some(&watch[..]));
            report.frames += 1;
            report.cross_vpc += cross_vpc(&t, port, &frame, &seen);
            if let Fate::Unmodelled(why) = fate {
                *report.unmodelled.entry(why).or_default() += 1;
                continue;
            }
            *report.verdicts.entry(verdict_name(&fate)).or_default() += 1;
            if let Err(why) = compare(&fate, &seen) {
                report.differences.push((tseed, i, port, frame, why));
                // Counters and outputs are now out of step: start over on this topology.
                break;
            }
        }
    }
    report
}

fn verdict_name(f: &Fate) -> String {
    match f {
        Fate::Drop { reason, .. } => reason.name().to_string(),
        Fate::ToVf { .. } => "to VF".into(),
        Fate::EchoReply { .. } => "echo reply".into(),
        Fate::Dhcp { .. } => "DHCP answer".into(),
        Fate::ToUplink { .. } => "VXLAN out".into(),
        Fate::Unmodelled(_) => "unmodelled".into(),
    }
}

/// `Ok` when the firmware did exactly what the model says.
pub fn compare(fate: &Fate, seen: &Observed) -> Result<(), String> {
    let outputs = seen.to_vfs.len() + seen.to_uplink.len();
    let summary = || {
        format!(
            "firmware: to VFs {:?}, {} to the uplink, drops {:?}",
            seen.to_vfs
                .iter()
                .map(|(v, f)| (v, f.len()))
                .collect::<Vec<_>>(),
            seen.to_uplink.len(),
            seen.drops
        )
    };
    match fate {
        Fate::Drop { port, reason } => {
            if outputs != 0 || seen.drops != [(*port, *reason, 1)] {
                return Err(format!(
                    "model: {} of {port:?}; {}",
                    reason.name(),
                    summary()
                ));
            }
        }
        _ if !seen.drops.is_empty() => return Err(format!("model: {fate:?}; {}", summary())),
        Fate::ToVf { vf, frame } => {
            if !seen.to_uplink.is_empty() || seen.to_vfs != [(*vf, frame.clone())] {
                return Err(format!(
                    "model: to VF{vf} {frame:02x?}; {} {:02x?}",
                    summary(),
                    seen.to_vfs
                ));
            }
        }
        Fate::Dhcp { vf } => {
            let one = seen.to_vfs.len() == 1 && seen.to_vfs[0].0 == *vf;
            if !one || !seen.to_uplink.is_empty() {
                return Err(format!("model: DHCP answer to VF{vf}; {}", summary()));
            }
        }
        Fate::EchoReply {
            vf,
            gateway_mac,
            gateway_ip,
            request,
        } => {
            let ok = seen.to_uplink.is_empty()
                && seen.to_vfs.len() == 1
                && seen.to_vfs[0].0 == *vf
                && echo_reply_ok(&seen.to_vfs[0].1, *gateway_mac, *gateway_ip, request);
            if !ok {
                return Err(format!(
                    "model: echo reply to VF{vf}; {} {:02x?}",
                    summary(),
                    seen.to_vfs
                ));
            }
        }
        Fate::ToUplink { frame } => {
            let ok = seen.to_vfs.is_empty()
                && seen.to_uplink.len() == 1
                && vxlan_ok(&seen.to_uplink[0], frame);
            if !ok {
                return Err(format!(
                    "model: VXLAN {frame:02x?}; {} {:02x?}",
                    summary(),
                    seen.to_uplink
                ));
            }
        }
        Fate::Unmodelled(_) => {}
    }
    Ok(())
}

/// F14: equal to the model's frame except the outer identification and checksum (which
/// must hold) and the UDP source port (which must be in 49152-65535).
fn vxlan_ok(got: &[u8], want: &[u8]) -> bool {
    if got.len() != want.len() || got.len() < 50 {
        return false;
    }
    let masked = |b: &[u8]| {
        let mut b = b.to_vec();
        b[18..20].fill(0);
        b[24..26].fill(0);
        b[34..36].fill(0);
        b
    };
    masked(got) == masked(want) && checksum(&got[14..34]) == 0 && be16(got, 34) >= 49152
}

/// F10: from the gateway's MAC and IP to the requester, TTL 64, an echo reply with the
/// request's identifier, sequence number and data, checksums right.
fn echo_reply_ok(got: &[u8], gw_mac: [u8; 6], gw_ip: u32, req: &[u8]) -> bool {
    if got.len() < 14 + 20 + 8 {
        return false;
    }
    let ip = &got[14..];
    let hl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(be16(ip, 2));
    let req_hl = usize::from(req[0] & 0x0f) * 4;
    if total > ip.len() || hl < 20 || total < hl + 8 {
        return false;
    }
    let (icmp, req_icmp) = (&ip[hl..total], &req[req_hl..]);
    got[6..12] == gw_mac
        && got[12..14] == [0x08, 0x00]
        && ip[8] == 64
        && ip[9] == 1
        && checksum(&ip[..hl]) == 0
        && ip[12..16] == gw_ip.to_be_bytes()
        && ip[16..20] == req[12..16]
        && icmp[0] == 0
        && icmp[1] == 0
        && checksum(icmp) == 0
        && icmp[4..] == req_icmp[4..]
}

/// F16 on the firmware's outputs alone: a delivery or VXLAN frame in another VPC than the
/// frame came from, without a `pcx:` route to that VPC in the sender's table.
fn cross_vpc(t: &Topology, port: Port, frame: &[u8], seen: &Observed) -> u64 {
    let from = match port {
        Port::Vf(vf) => t.vf(vf).and_then(|v| t.vpc_of_vf(v)).map(|v| v.id),
        Port::Uplink if frame.len() >= 50 => t
            .vpc_of_vni(super::rules::be32(frame, 46) >> 8)
            .map(|v| v.id),
        Port::Uplink => None,
    };
    let Some(from) = from else { return 0 };
    let peered = |to: u16| match port {
        Port::Vf(vf) => {
            let s = t.vf(vf).and_then(|v| t.subnet(v.subnet));
            let table = s.and_then(|s| t.table_of(s));
            t.routes
                .iter()
                .any(|r| Some(r.table) == table && r.target == super::topology::Target::Peering(to))
        }
        Port::Uplink => false,
    };
    let to_vfs = seen
        .to_vfs
        .iter()
        .filter_map(|(vf, _)| t.vf(*vf).and_then(|v| t.vpc_of_vf(v)).map(|v| v.id));
    let to_uplink = seen
        .to_uplink
        .iter()
        .filter(|f| f.len() >= 50)
        .filter_map(|f| t.vpc_of_vni(super::rules::be32(f, 46) >> 8).map(|v| v.id));
    to_vfs
        .chain(to_uplink)
        .filter(|&to| to != from && !peered(to))
        .count() as u64
}
