//! The firmware side of the comparison: a whole firmware ([`FakeNic`]: the real admin
//! handler, VF rings and pipeline on a deterministic in-memory platform, no threads),
//! programmed through its admin queue with the same topology the model reads.
use super::rules::Port;
use super::topology::{Location, Target, Topology};
use nic_firmware::testing::{FakeNic, Sizes};
use shared_regs::admin::Opcode;
use shared_regs::entry::{
    GatewayEntry, MappingEntry, MappingLocation, RouteEntry, RouteTableEntry, RouteTarget,
    SubnetEntry, UplinkEntry, VfAddrEntry, VfEntry, VfFlags, VpcEntry, MAIN_ROUTE_TABLE,
    UPLINK_FUNCTION,
};
use shared_regs::stats::{Counter, Counters};
use shared_regs::Le16;
use std::net::Ipv4Addr;

/// What came out of the NIC for one frame.
#[derive(Debug, Default)]
pub struct Observed {
    pub to_vfs: Vec<(u16, Vec<u8>)>,
    pub to_uplink: Vec<Vec<u8>>,
    /// Drop counters that moved: (function, counter, by how much).
    pub drops: Vec<(Port, Counter, u64)>,
}

pub struct Nic {
    pub fake: FakeNic<'static>,
    functions: Vec<Port>,
    /// Counters as of the last frame, per function of `functions`.
    seen: Vec<Counters>,
}

fn function_index(p: Port) -> u16 {
    match p {
        Port::Vf(vf) => vf,
        Port::Uplink => UPLINK_FUNCTION,
    }
}

impl Nic {
    /// Programs `want` into a fresh firmware and returns it with the part of `want` the
    /// admin handler accepted (a refused route or mapping is left out of the model too, so
    /// both sides decide on the same configuration).
    pub fn program(want: &Topology) -> (Nic, Topology) {
        let mut nic = FakeNic::new(Sizes::default());
        let mut have = want.clone();
        let up = UplinkEntry {
            mac: want.uplink.mac,
            next_hop_mac: want.uplink.next_hop_mac,
            underlay_ip: want.uplink.host.to_be_bytes(),
            mtu: Le16::new(want.uplink.mtu),
            ..Default::default()
        };
        nic.admin(Opcode::UplinkSet, &up).expect("UPLINK_SET");
        for g in &want.gateways {
            let e = GatewayEntry {
                id: Le16::new(g.id),
                kind: 0,
                underlay_ip: g.underlay.to_be_bytes(),
                mac: g.mac,
                ..Default::default()
            };
            nic.admin(Opcode::GatewayAdd, &e).expect("GATEWAY_ADD");
        }
        for v in &want.vpcs {
            let e = VpcEntry {
                id: Le16::new(v.id),
                main_route_table: Le16::new(v.main_table),
                vni: v.vni.into(),
                cidr: v.cidr.base.to_be_bytes(),
                cidr_len: v.cidr.len,
                ..Default::default()
            };
            nic.admin(Opcode::VpcAdd, &e).expect("VPC_ADD");
        }
        for &(id, vpc) in &want.tables {
            let e = RouteTableEntry {
                id: Le16::new(id),
                vpc_id: Le16::new(vpc),
            };
            nic.admin(Opcode::RouteTableAdd, &e)
                .expect("ROUTE_TABLE_ADD");
        }
        for s in &want.subnets {
            let e = SubnetEntry {
                id: Le16::new(s.id),
                vpc_id: Le16::new(s.vpc),
                route_table_id: Le16::new(s.table.unwrap_or(MAIN_ROUTE_TABLE)),
                prefix_len: s.cidr.len,
                prefix: s.cidr.base.to_be_bytes(),
                gateway_mac: s.gateway_mac,
                ..Default::default()
            };
            nic.admin(Opcode::SubnetAdd, &e).expect("SUBNET_ADD");
        }
        for vf in &want.vfs {
            let vni = want.vpc_of_vf(vf).expect("VF in a VPC").vni;
            let flags = if vf.check {
                VfFlags::SRC_DST_CHECK.bits()
            } else {
                0
            };
            let e = VfEntry {
                vf: Le16::new(vf.vf),
                subnet_id: Le16::new(vf.subnet),
                flags: Le16::new(flags),
                mac: vf.mac,
                primary_ip: vf.primary.to_be_bytes(),
                ..Default::default()
            };
            nic.admin(Opcode::VfSet, &e).expect("VF_SET");
            add_mapping(&mut nic, vni, vf.primary, vf.mac, Location::LocalVf(vf.vf))
                .expect("MAPPING_ADD of a primary address");
            for &a in &vf.secondaries {
                let e = VfAddrEntry {
                    vf: Le16::new(vf.vf),
                    ip: a.to_be_bytes(),
                    ..Default::default()
                };
                nic.admin(Opcode::VfAddrAdd, &e).expect("VF_ADDR_ADD");
                add_mapping(&mut nic, vni, a, vf.mac, Location::LocalVf(vf.vf))
                    .expect("MAPPING_ADD of a secondary address");
            }
            nic.attach_vf(vf.vf);
        }
        have.remotes.retain(|r| {
            add_mapping(&mut nic, r.vni, r.ip, r.mac, Location::Remote(r.host)).is_ok()
        });
        have.routes.retain(|r| {
            let target = match r.target {
                Target::Local => RouteTarget::Local,
                Target::Blackhole => RouteTarget::Blackhole,
                Target::Gateway(g) => RouteTarget::Gateway(g),
                Target::Peering(p) => RouteTarget::Peering(p),
                Target::Instance(ip) => RouteTarget::Instance(Ipv4Addr::from(ip)),
            };
            let e = RouteEntry::new(r.table, Ipv4Addr::from(r.dest.base), r.dest.len, target);
            nic.admin(Opcode::RouteAdd, &e).is_ok()
        });
        let mut functions: Vec<Port> = want.vfs.iter().map(|v| Port::Vf(v.vf)).collect();
        functions.push(Port::Uplink);
        let mut nic = Nic {
            fake: nic,
            seen: Vec::new(),
            functions,
        };
        nic.seen = nic.read_all();
        (nic, have)
    }

    fn read_all(&mut self) -> Vec<Counters> {
        let fs = self.functions.clone();
        fs.into_iter()
            .map(|f| self.fake.counters(function_index(f)))
            .collect()
    }

    /// Sends `frame` in on `port`, runs the firmware, and takes everything that came out,
    /// with the drop counters that moved on `watch` (every function when `None`).
    pub fn run(&mut self, port: Port, frame: &[u8], watch: Option<&[Port]>) -> Observed {
        match port {
            Port::Vf(vf) => self.fake.send(vf, frame),
            Port::Uplink => {
                self.fake.platform.uplink_in.push_back(frame.to_vec());
                self.fake.poll();
            }
        }
        let mut out = Observed::default();
        for i in 0..self.functions.len() {
            if let Port::Vf(vf) = self.functions[i] {
                while let Some(f) = self.fake.recv(vf) {
                    out.to_vfs.push((vf, f));
                }
            }
        }
        out.to_uplink = std::mem::take(&mut self.fake.platform.uplink_out);
        for i in 0..self.functions.len() {
            let f = self.functions[i];
            if watch.is_some_and(|w| !w.contains(&f)) {
                continue;
            }
            let now = self.fake.counters(function_index(f));
            for &c in Counter::ALL.iter().filter(|c| c.is_drop()) {
                let d = now.get(c).wrapping_sub(self.seen[i].get(c));
                if d != 0 {
                    out.drops.push((f, c, d));
                }
            }
            self.seen[i] = now;
        }
        out
    }
}

fn add_mapping(
    nic: &mut FakeNic,
    vni: u32,
    ip: u32,
    mac: [u8; 6],
    at: Location,
) -> Result<(), shared_regs::admin::Status> {
    let mut e = MappingEntry {
        vni: vni.into(),
        ip: ip.to_be_bytes(),
        mac,
        ..Default::default()
    };
    match at {
        Location::LocalVf(vf) => {
            e.location = MappingLocation::LocalVf as u8;
            e.vf = Le16::new(vf);
        }
        Location::Remote(host) => {
            e.location = MappingLocation::Remote as u8;
            e.underlay_ip = host.to_be_bytes();
        }
    }
    nic.admin(Opcode::MappingAdd, &e)
}
