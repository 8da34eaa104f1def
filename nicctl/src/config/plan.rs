//! From a valid [`Config`] to the ordered driver calls that program one host's NIC.
//!
//! IDs are stable ([`Ids`]): on a fresh NIC they follow file order (VPC `i` has ID `i` and
//! so has its main route table; the file's route table `j` has ID `vpcs + j`; subnet `k`
//! has ID `k`, gateway `g` ID `g`; this host's instances get VFs 0, 1, ...); on a NIC that
//! holds a plan already ([`plan_against`]), what it holds keeps its ID.
//!
//! Order: uplink, VPCs, gateways, route tables, routes, subnets, VFs (with their secondary
//! addresses), then a mapping for every address of every instance of every VPC: the local
//! VF for this host's instances, the other host's underlay address for the rest.
use super::ids::Ids;
use super::model::{self, Config, Target};
use host_driver::reconcile::{self, Change, ReadBackError, State};
use host_driver::tables::{
    mapping_text, route_text, Cidr, GatewaySpec, Mac, MappingLocationSpec, RouteTarget, SubnetSpec,
    UplinkSpec, VfSpec, VpcSpec,
};
use host_driver::DriverError;
use host_driver::PfDriver;
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
    /// (instance name, VF) of this host's instances, in file order.
    pub vfs: Vec<(String, u16)>,
    /// The table ID of each object of the file on this host's NIC.
    pub ids: Ids,
    pub commands: Vec<Command>,
}

impl Plan {
    /// What the NIC of this host should hold, for the reconciler.
    pub fn desired(&self) -> State {
        let mut s = State::default();
        for c in &self.commands {
            match c {
                Command::SetUplink(u) => s.uplink = Some(u.clone()),
                Command::AddVpc(v) => {
                    s.vpcs.insert(v.id, v.clone());
                }
                Command::AddGateway(g) => {
                    s.gateways.insert(g.id, g.clone());
                }
                Command::AddRouteTable { id, vpc_id } => {
                    s.route_tables.insert(*id, *vpc_id);
                }
                Command::AddRoute {
                    table,
                    dest,
                    target,
                } => {
                    s.routes.insert((*table, *dest), *target);
                }
                Command::AddSubnet(n) => {
                    s.subnets.insert(n.id, n.clone());
                }
                Command::SetVf(v) => {
                    s.vfs.insert(v.vf, v.clone());
                }
                Command::AddVfAddr { vf, ip } => {
                    s.vf_addrs.insert((*vf, *ip));
                }
                Command::AddMapping {
                    vni,
                    ip,
                    mac,
                    location,
                } => {
                    s.mappings.insert((*vni, *ip), (*mac, *location));
                }
            }
        }
        s
    }

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

/// Why there is no plan.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown host {host:?} (hosts of the file: {})", .known.join(", "))]
    UnknownHost { host: String, known: Vec<String> },
    #[error("host {host}: the table IDs given are for another file")]
    IdsOfAnotherFile { host: String },
}

/// The plan for host `host` (a name of [`Config::hosts`]) on a fresh NIC: IDs in file
/// order.
pub fn plan(config: &Config, host: &str) -> Result<Plan, PlanError> {
    plan_against(config, host, &State::default(), u16::MAX)
}

/// The plan for host `host` on a NIC that holds `held` and has `num_vfs` VFs: what the NIC
/// already has keeps its ID ([`Ids`]), so the difference is what the file changed.
pub fn plan_against(
    config: &Config,
    host: &str,
    held: &State,
    num_vfs: u16,
) -> Result<Plan, PlanError> {
    let h = host_index(config, host)?;
    plan_with(config, host, Ids::allocate(config, h, held, num_vfs))
}

fn host_index(config: &Config, host: &str) -> Result<usize, PlanError> {
    config
        .host_index(host)
        .ok_or_else(|| PlanError::UnknownHost {
            host: host.into(),
            known: config.hosts.iter().map(|h| h.name.clone()).collect(),
        })
}

/// The plan for host `host` with the table IDs `ids` ([`plan_against`] allocates them;
/// a client of a running deployment gets them from it).
pub fn plan_with(config: &Config, host: &str, ids: Ids) -> Result<Plan, PlanError> {
    let h = host_index(config, host)?;
    if !ids.fit(config, h) {
        return Err(PlanError::IdsOfAnotherFile { host: host.into() });
    }
    let underlay_ip = config.hosts[h].underlay;
    let mut cmds = vec![Command::SetUplink(UplinkSpec {
        mac: config.hosts[h].uplink_mac(),
        next_hop_mac: model::UNDERLAY_NEXT_HOP_MAC,
        underlay_ip,
        mtu: model::UPLINK_MTU,
    })];
    let nvpcs = config.vpcs.len();
    for (i, v) in config.vpcs.iter().enumerate() {
        cmds.push(Command::AddVpc(VpcSpec {
            id: ids.vpcs[i],
            vni: v.vni,
            cidr: v.cidr,
            main_route_table: Some(ids.main_tables[i]),
            dns: v.dns.clone(),
            domain: v.domain.clone(),
        }));
    }
    for (g, gw) in config.gateways.iter().enumerate() {
        cmds.push(Command::AddGateway(GatewaySpec {
            id: ids.gateways[g],
            kind: gw.kind,
            underlay_ip: gw.underlay,
            mac: gw.mac(),
        }));
    }
    for i in 0..nvpcs {
        cmds.push(Command::AddRouteTable {
            id: ids.main_tables[i],
            vpc_id: ids.vpcs[i],
        });
    }
    for (j, t) in config.route_tables.iter().enumerate() {
        cmds.push(Command::AddRouteTable {
            id: ids.route_tables[j],
            vpc_id: ids.vpcs[t.vpc],
        });
    }
    for (j, t) in config.route_tables.iter().enumerate() {
        for r in &t.routes {
            let target = match r.target {
                Target::Blackhole => RouteTarget::Blackhole,
                Target::Gateway(g) => RouteTarget::Gateway(ids.gateways[g]),
                Target::Peering(v) => RouteTarget::Peering(ids.vpcs[v]),
                Target::Instance(i) => RouteTarget::Instance(config.instances[i].ip),
            };
            cmds.push(Command::AddRoute {
                table: ids.route_tables[j],
                dest: r.dest,
                target,
            });
        }
    }
    for (k, s) in config.subnets.iter().enumerate() {
        cmds.push(Command::AddSubnet(SubnetSpec {
            id: ids.subnets[k],
            vpc_id: ids.vpcs[s.vpc],
            cidr: s.cidr,
            route_table: s.route_table.map(|j| ids.route_tables[j]),
            gateway_mac: config.subnet_gateway_mac(k),
        }));
    }
    let mut vfs = Vec::new();
    for (i, inst) in config.instances.iter().enumerate() {
        let Some(&vf) = ids.vfs.get(&i) else { continue };
        vfs.push((inst.name.clone(), vf));
        cmds.push(Command::SetVf(VfSpec {
            vf,
            subnet_id: ids.subnets[inst.subnet],
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
                None => MappingLocationSpec::Remote(config.hosts[inst.host].underlay),
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
        ids,
        commands: cmds,
    })
}

/// Why a NIC could not be brought to a plan.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// What the NIC holds could not be read back.
    #[error("reading back what the NIC holds: {error}")]
    ReadBack { error: DriverError },
    /// What the NIC holds is not something a plan makes.
    #[error("what the NIC holds: {0}")]
    Understand(#[from] ReadBackError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The desired state is bigger than one of the NIC's tables: nothing was changed.
    #[error("the file does not fit this NIC, so nothing was changed: {0}")]
    NoRoom(#[from] reconcile::NoRoom),
    /// A change was refused; the ones before it were made, and the next apply, which reads
    /// the NIC back, goes on from there.
    #[error("{error} (of {total} changes)")]
    Refused {
        total: usize,
        error: Box<reconcile::ApplyError>,
    },
}

/// What a NIC holds, read back.
pub fn held(drv: &PfDriver) -> Result<State, ApplyError> {
    let tables = drv
        .read_tables()
        .map_err(|error| ApplyError::ReadBack { error })?;
    Ok(State::from_tables(&tables)?)
}

/// Brings a NIC to what `plan` programs: reads back what it holds, and makes the difference
/// (on a fresh NIC, every entry), calling `progress(done, total)` after each change; stops
/// at the first refusal. A plan bigger than one of the NIC's tables changes nothing.
/// Returns the changes made. Make the plan with [`plan_against`] what the NIC holds, so
/// that what it has keeps its IDs.
pub fn apply(
    drv: &PfDriver,
    plan: &Plan,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<Change>, ApplyError> {
    let desired = plan.desired();
    desired.fits(drv.info())?;
    let changes = reconcile::diff(&desired, &held(drv)?);
    make(drv, &changes, progress)?;
    Ok(changes)
}

/// Host `host`'s plan for `config` on the NIC `drv` and the changes that bring the NIC to
/// it: what the NIC holds is read back and keeps its IDs. Nothing is changed yet ([`make`]);
/// a plan bigger than one of the NIC's tables is refused here.
pub fn plan_nic(
    drv: &PfDriver,
    config: &Config,
    host: &str,
) -> Result<(Plan, Vec<Change>), ApplyError> {
    let held = held(drv)?;
    let num_vfs = u16::try_from(drv.info().num_vfs).unwrap_or(u16::MAX);
    let plan = plan_against(config, host, &held, num_vfs)?;
    let desired = plan.desired();
    desired.fits(drv.info())?;
    let changes = reconcile::diff(&desired, &held);
    Ok((plan, changes))
}

/// Makes `changes` on `drv`, calling `progress(done, total)` after each; stops at the first
/// refusal, naming the object and the status.
pub fn make(
    drv: &PfDriver,
    changes: &[Change],
    progress: impl FnMut(usize, usize),
) -> Result<(), ApplyError> {
    reconcile::apply(drv, changes, progress).map_err(|error| ApplyError::Refused {
        total: changes.len(),
        error,
    })
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
