//! From a valid [`Config`] to the ordered driver calls that program one host's NIC.
//!
//! IDs are stable: they follow file order.
//! - VPC `i` (file order) has ID `i`; its main route table has ID `i` too.
//! - The route table `j` of the file has ID `vpcs + j`.
//! - Subnet `k` has ID `k`; gateway `g` has ID `g`.
//! - This host's instances get VFs 0, 1, ... in file order.
//!
//! Order: uplink, VPCs, gateways, route tables, routes, subnets, VFs (with their secondary
//! addresses), then a mapping for every address of every instance of every VPC: the local
//! VF for this host's instances, the other host's underlay address for the rest.
use super::model::{self, Config, Target};
use host_driver::tables::{
    mapping_text, route_text, Cidr, GatewaySpec, Mac, MappingLocationSpec, RouteTarget, SubnetSpec,
    UplinkSpec, VfSpec, VpcSpec,
};
use host_driver::DriverError;
use host_driver::{Batch, PfDriver};
use std::fmt;
use std::net::Ipv4Addr;

/// One driver call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    SetUplink(UplinkSpec),
    AddVpc(VpcSpec),
    AddGateway(GatewaySpec),
    AddRouteTable {
        id: u16,
        vpc_id: u16,
    },
    AddRoute {
        table: u16,
        dest: Cidr,
        target: RouteTarget,
    },
    AddSubnet(SubnetSpec),
    SetVf(VfSpec),
    AddVfAddr {
        vf: u16,
        ip: Ipv4Addr,
    },
    AddMapping {
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        location: MappingLocationSpec,
    },
}

impl Command {
    /// Makes the call.
    pub fn apply(&self, drv: &PfDriver) -> host_driver::Result<()> {
        match self {
            Command::SetUplink(s) => drv.set_uplink(s),
            Command::AddVpc(s) => drv.add_vpc(s),
            Command::AddGateway(s) => drv.add_gateway(s),
            Command::AddRouteTable { id, vpc_id } => drv.add_route_table(*id, *vpc_id),
            Command::AddRoute {
                table,
                dest,
                target,
            } => drv.add_route(*table, *dest, *target),
            Command::AddSubnet(s) => drv.add_subnet(s),
            Command::SetVf(s) => drv.set_vf(s),
            Command::AddVfAddr { vf, ip } => drv.add_vf_addr(*vf, *ip),
            Command::AddMapping {
                vni,
                ip,
                mac,
                location,
            } => drv.add_mapping(*vni, *ip, *mac, *location),
        }
    }
}

impl Command {
    /// Queues the call in `batch` (see [`apply`]); fails only on a spec the driver refuses
    /// before sending anything.
    pub fn queue(&self, batch: &mut Batch<'_>) -> host_driver::Result<()> {
        match self {
            Command::SetUplink(s) => batch.set_uplink(s),
            Command::AddVpc(s) => batch.add_vpc(s)?,
            Command::AddGateway(s) => batch.add_gateway(s),
            Command::AddRouteTable { id, vpc_id } => batch.add_route_table(*id, *vpc_id),
            Command::AddRoute {
                table,
                dest,
                target,
            } => batch.add_route(*table, *dest, *target),
            Command::AddSubnet(s) => batch.add_subnet(s),
            Command::SetVf(s) => batch.set_vf(s),
            Command::AddVfAddr { vf, ip } => batch.add_vf_addr(*vf, *ip),
            Command::AddMapping {
                vni,
                ip,
                mac,
                location,
            } => batch.add_mapping(*vni, *ip, *mac, *location),
        };
        Ok(())
    }
}

impl fmt::Display for Command {
    /// "VPC_ADD vpc 0, vni 100, 10.0.0.0/16".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::SetUplink(s) => write!(f, "UPLINK_SET {}", s.describe()),
            Command::AddVpc(s) => write!(f, "VPC_ADD {}", s.describe()),
            Command::AddGateway(s) => write!(f, "GATEWAY_ADD {}", s.describe()),
            Command::AddRouteTable { id, vpc_id } => {
                write!(f, "ROUTE_TABLE_ADD route table {id} of vpc {vpc_id}")
            }
            Command::AddRoute {
                table,
                dest,
                target,
            } => {
                write!(f, "ROUTE_ADD {} to {target}", route_text(*table, *dest))
            }
            Command::AddSubnet(s) => write!(f, "SUBNET_ADD {}", s.describe()),
            Command::SetVf(s) => write!(f, "VF_SET {}", s.describe()),
            Command::AddVfAddr { vf, ip } => write!(f, "VF_ADDR_ADD vf {vf}, {ip}"),
            Command::AddMapping {
                vni, ip, location, ..
            } => {
                write!(f, "MAPPING_ADD {} on {location}", mapping_text(*vni, *ip))
            }
        }
    }
}

/// What one host's NIC is programmed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The host the plan is for.
    pub host: String,
    pub underlay_ip: Ipv4Addr,
    /// (instance name, VF) of this host's instances, in VF order.
    pub vfs: Vec<(String, u16)>,
    pub commands: Vec<Command>,
}

impl Plan {
    /// How many commands of each opcode: "1 UPLINK_SET, 2 VPC_ADD, ...".
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut out: Vec<(&'static str, usize)> = Vec::new();
        for c in &self.commands {
            let name = match c {
                Command::SetUplink(_) => "UPLINK_SET",
                Command::AddVpc(_) => "VPC_ADD",
                Command::AddGateway(_) => "GATEWAY_ADD",
                Command::AddRouteTable { .. } => "ROUTE_TABLE_ADD",
                Command::AddRoute { .. } => "ROUTE_ADD",
                Command::AddSubnet(_) => "SUBNET_ADD",
                Command::SetVf(_) => "VF_SET",
                Command::AddVfAddr { .. } => "VF_ADDR_ADD",
                Command::AddMapping { .. } => "MAPPING_ADD",
            };
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some((_, k)) => *k += 1,
                None => out.push((name, 1)),
            }
        }
        out
    }
}

fn id(index: usize) -> u16 {
    index as u16
}

/// Why there is no plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown host {host:?} (hosts of the file: {})", .known.join(", "))]
    UnknownHost { host: String, known: Vec<String> },
}

/// The plan for host `host` (a name of [`Config::hosts`]).
pub fn plan(config: &Config, host: &str) -> Result<Plan, PlanError> {
    let Some(h) = config.host_index(host) else {
        return Err(PlanError::UnknownHost {
            host: host.into(),
            known: config.hosts.iter().map(|h| h.name.clone()).collect(),
        });
    };
    let underlay_ip = model::host_underlay(h);
    let mut cmds = vec![Command::SetUplink(UplinkSpec {
        mac: model::host_uplink_mac(h),
        next_hop_mac: model::UNDERLAY_NEXT_HOP_MAC,
        underlay_ip,
        mtu: model::UPLINK_MTU,
    })];
    let nvpcs = config.vpcs.len();
    for (i, v) in config.vpcs.iter().enumerate() {
        cmds.push(Command::AddVpc(VpcSpec {
            id: id(i),
            vni: v.vni,
            cidr: v.cidr,
            main_route_table: Some(id(i)),
            dns: v.dns.clone(),
            domain: v.domain.clone(),
        }));
    }
    for (g, gw) in config.gateways.iter().enumerate() {
        cmds.push(Command::AddGateway(GatewaySpec {
            id: id(g),
            kind: gw.kind,
            underlay_ip: model::gateway_underlay(g),
            mac: model::gateway_mac(g),
        }));
    }
    for i in 0..nvpcs {
        cmds.push(Command::AddRouteTable {
            id: id(i),
            vpc_id: id(i),
        });
    }
    for (j, t) in config.route_tables.iter().enumerate() {
        cmds.push(Command::AddRouteTable {
            id: id(nvpcs + j),
            vpc_id: id(t.vpc),
        });
    }
    for (j, t) in config.route_tables.iter().enumerate() {
        for r in &t.routes {
            let target = match r.target {
                Target::Blackhole => RouteTarget::Blackhole,
                Target::Gateway(g) => RouteTarget::Gateway(id(g)),
                Target::Peering(v) => RouteTarget::Peering(id(v)),
                Target::Instance(i) => RouteTarget::Instance(config.instances[i].ip),
            };
            cmds.push(Command::AddRoute {
                table: id(nvpcs + j),
                dest: r.dest,
                target,
            });
        }
    }
    for (k, s) in config.subnets.iter().enumerate() {
        cmds.push(Command::AddSubnet(SubnetSpec {
            id: id(k),
            vpc_id: id(s.vpc),
            cidr: s.cidr,
            route_table: s.route_table.map(|j| id(nvpcs + j)),
            gateway_mac: config.subnet_gateway_mac(k),
        }));
    }
    let mut vfs = Vec::new();
    for inst in config.instances.iter().filter(|i| i.host == h) {
        let vf = id(vfs.len());
        vfs.push((inst.name.clone(), vf));
        cmds.push(Command::SetVf(VfSpec {
            vf,
            subnet_id: id(inst.subnet),
            mac: inst.mac,
            primary_ip: inst.ip,
            src_dst_check: inst.src_dst_check,
        }));
        for &ip in &inst.secondary_ips {
            cmds.push(Command::AddVfAddr { vf, ip });
        }
    }
    for v in 0..nvpcs {
        for inst in config
            .instances
            .iter()
            .filter(|i| config.subnets[i.subnet].vpc == v)
        {
            let location = match vfs.iter().find(|(n, _)| *n == inst.name) {
                Some(&(_, vf)) => MappingLocationSpec::LocalVf(vf),
                None => MappingLocationSpec::Remote(model::host_underlay(inst.host)),
            };
            for &ip in std::iter::once(&inst.ip).chain(&inst.secondary_ips) {
                cmds.push(Command::AddMapping {
                    vni: config.vpcs[v].vni,
                    ip,
                    mac: inst.mac,
                    location,
                });
            }
        }
    }
    Ok(Plan {
        host: host.to_string(),
        underlay_ip,
        vfs,
        commands: cmds,
    })
}

/// A command of a plan failed; the ones before it were made.
#[derive(Debug, thiserror::Error)]
#[error("command {number} of {total} failed: {error}")]
pub struct ApplyError {
    /// 1-based.
    pub number: usize,
    pub total: usize,
    pub error: DriverError,
}

/// Makes every call of `plan` in order, many admin commands per doorbell (a
/// [`host_driver::Batch`]), calling `progress(done, total)` as completions arrive (once
/// per round of completions); stops at the first failure, the commands before it made and
/// none after.
pub fn apply(
    drv: &PfDriver,
    plan: &Plan,
    mut progress: impl FnMut(usize, usize),
) -> Result<(), ApplyError> {
    let total = plan.commands.len();
    let mut batch = drv.batch();
    // A spec the driver refuses before sending stops the plan there: what comes before it
    // is still made, as one call at a time would.
    let mut refused = None;
    for (i, cmd) in plan.commands.iter().enumerate() {
        if let Err(error) = cmd.queue(&mut batch) {
            refused = Some((i, error));
            break;
        }
    }
    batch
        .run_with_progress(&mut progress)
        .map_err(|error| match error {
            DriverError::Batch { applied, error, .. } => ApplyError {
                number: applied + 1,
                total,
                error: *error,
            },
            error => ApplyError {
                number: 1,
                total,
                error,
            },
        })?;
    match refused {
        Some((i, error)) => Err(ApplyError {
            number: i + 1,
            total,
            error,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
