//! Many admin commands per doorbell: [`Batch`], the typed builder, and
//! [`PfDriver::submit_batch`], its raw form.
//!
//! A batch writes as many ring entries as are free, rings `ADMINQ_TAIL` once for all of
//! them, and collects the completions in order as their `DONE` flags appear, refilling the
//! entries it reclaims (see [`AdminQueue::submit_batch`](crate::adminq::AdminQueue::submit_batch)).
//! Every command but the first is chained ([`CmdFlags::CHAIN`](shared_regs::admin::CmdFlags)),
//! so a batch stops at its first refused command: the commands before it are applied, none
//! after, and the error ([`DriverError::Batch`]) names the refused command's object and
//! status and says how many were applied. A device without `Caps::ADMIN_CHAIN` gets the
//! same guarantee one command at a time.
//!
//! `VPC_ADD` with a domain name needs the indirect buffer: it goes alone, between the
//! batched commands around it, in its place in the order.
use crate::error::{raw_opcode_label, DriverError, Result};
use crate::nic::PfDriver;
use crate::tables::{
    mapping_entry, mapping_text, route_entry, route_text, vf_addr_entry, vf_flags_entry, Cidr,
    GatewaySpec, Mac, MappingLocationSpec, RouteTarget, StatsFunction, SubnetSpec, UplinkSpec,
    VfSpec, VpcSpec,
};
use shared_regs::admin::{AdminCmd, Opcode, Status};
use shared_regs::entry::{IdParam, MappingEntry, RouteTableEntry, StatsQuery};
use shared_regs::pf::Caps;
use shared_regs::{Le16, Le32};
use std::net::Ipv4Addr;
use zerocopy::{Immutable, IntoBytes};

/// What a queued command is about, kept cheap (no string) until an error needs its text.
#[derive(Clone, Debug)]
enum Object {
    /// Formatted when queued (rare, larger objects).
    Text(String),
    /// "vpc 3", "vf 2", ...
    Id(&'static str, u16),
    RouteTable {
        id: u16,
        vpc_id: u16,
    },
    Route {
        table: u16,
        dest: Cidr,
        target: Option<RouteTarget>,
    },
    Mapping {
        vni: u32,
        ip: Ipv4Addr,
        loc: Option<MappingLocationSpec>,
    },
    VfAddr {
        vf: u16,
        ip: Ipv4Addr,
    },
    VfFlags {
        vf: u16,
        on: bool,
    },
    Stats(StatsFunction),
    /// `VPC_ADD` with a domain: sent alone through the indirect buffer.
    VpcWithDomain(Box<VpcSpec>),
    /// A raw command from [`PfDriver::submit_batch`].
    Raw,
}

impl Object {
    fn text(&self) -> String {
        match self {
            Object::Text(t) => t.clone(),
            Object::Id(kind, id) => format!("{kind} {id}"),
            Object::RouteTable { id, vpc_id } => format!("route table {id} of vpc {vpc_id}"),
            Object::Route {
                table,
                dest,
                target: Some(target),
            } => format!("{} to {target}", route_text(*table, *dest)),
            Object::Route { table, dest, .. } => route_text(*table, *dest),
            Object::Mapping {
                vni,
                ip,
                loc: Some(loc),
            } => format!("{} on {loc}", mapping_text(*vni, *ip)),
            Object::Mapping { vni, ip, .. } => mapping_text(*vni, *ip),
            Object::VfAddr { vf, ip } => format!("vf {vf}, secondary address {ip}"),
            Object::VfFlags { vf, on } => format!(
                "vf {vf}, source/destination check {}",
                if *on { "on" } else { "off" }
            ),
            Object::Stats(function) => function.to_string(),
            Object::VpcWithDomain(spec) => spec.describe(),
            Object::Raw => String::new(),
        }
    }
}

/// Table commands queued to run many per doorbell: `drv.batch()`, then the typed calls of
/// [`PfDriver`] (`add_mapping`, `del_route`, ...), then [`Batch::run`]. Nothing reaches the
/// device before `run`.
pub struct Batch<'d> {
    drv: &'d PfDriver,
    cmds: Vec<AdminCmd>,
    objects: Vec<Object>,
}

impl std::fmt::Debug for Batch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("commands", &self.cmds.len())
            .finish()
    }
}

fn id_param(id: u16) -> IdParam {
    IdParam { id: Le16::new(id) }
}

impl PfDriver {
    /// An empty [`Batch`] of table commands for this NIC.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            drv: self,
            cmds: Vec::new(),
            objects: Vec::new(),
        }
    }

    /// Posts raw commands many per doorbell, chained, and returns the completed entries in
    /// order: those that completed OK, then the first that did not, if any; the commands
    /// after it were not applied. Commands that use the indirect buffer do not belong here.
    /// Errors only when the device failed ([`DriverError::Batch`] around a timeout, ...).
    pub fn submit_batch(&self, cmds: &[AdminCmd]) -> Result<Vec<AdminCmd>> {
        let chain = self.chains();
        let out = self.with_queue(|q, dev| q.submit_batch(dev, cmds, chain, &mut |_| {}));
        match out.error {
            None => Ok(out.completed),
            Some(error) => Err(DriverError::Batch {
                applied: out.completed.len(),
                total: cmds.len(),
                error: Box::new(error),
            }),
        }
    }

    /// Whether the firmware skips chained commands after a refusal, so that many may be in
    /// flight at once.
    fn chains(&self) -> bool {
        self.info().caps.contains(Caps::ADMIN_CHAIN)
    }
}

impl<'d> Batch<'d> {
    /// Commands queued.
    pub fn len(&self) -> usize {
        self.cmds.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    fn push<P: IntoBytes + Immutable>(
        &mut self,
        opcode: Opcode,
        params: &P,
        object: Object,
    ) -> &mut Self {
        self.cmds.push(AdminCmd::new(opcode, params));
        self.objects.push(object);
        self
    }

    /// Queues a raw command (no indirect buffer); an error names it by opcode only.
    pub fn raw(&mut self, cmd: AdminCmd) -> &mut Self {
        self.cmds.push(cmd);
        self.objects.push(Object::Raw);
        self
    }

    /// `VPC_ADD`; one with a domain name goes alone through the indirect buffer.
    pub fn add_vpc(&mut self, spec: &VpcSpec) -> Result<&mut Self> {
        let cmd = AdminCmd::new(Opcode::VpcAdd, &spec.to_entry()?);
        let object = match spec.domain_bytes()? {
            None => Object::Text(spec.describe()),
            Some(_) => Object::VpcWithDomain(Box::new(spec.clone())),
        };
        self.cmds.push(cmd);
        self.objects.push(object);
        Ok(self)
    }

    /// `VPC_DEL`.
    pub fn del_vpc(&mut self, id: u16) -> &mut Self {
        self.push(Opcode::VpcDel, &id_param(id), Object::Id("vpc", id))
    }

    /// `SUBNET_ADD`.
    pub fn add_subnet(&mut self, spec: &SubnetSpec) -> &mut Self {
        self.push(
            Opcode::SubnetAdd,
            &spec.to_entry(),
            Object::Text(spec.describe()),
        )
    }

    /// `SUBNET_DEL`.
    pub fn del_subnet(&mut self, id: u16) -> &mut Self {
        self.push(Opcode::SubnetDel, &id_param(id), Object::Id("subnet", id))
    }

    /// `ROUTE_TABLE_ADD`.
    pub fn add_route_table(&mut self, id: u16, vpc_id: u16) -> &mut Self {
        let entry = RouteTableEntry {
            id: Le16::new(id),
            vpc_id: Le16::new(vpc_id),
        };
        self.push(
            Opcode::RouteTableAdd,
            &entry,
            Object::RouteTable { id, vpc_id },
        )
    }

    /// `ROUTE_TABLE_DEL`.
    pub fn del_route_table(&mut self, id: u16) -> &mut Self {
        self.push(
            Opcode::RouteTableDel,
            &id_param(id),
            Object::Id("route table", id),
        )
    }

    /// `ROUTE_ADD`.
    pub fn add_route(&mut self, table: u16, dest: Cidr, target: RouteTarget) -> &mut Self {
        self.push(
            Opcode::RouteAdd,
            &route_entry(table, dest, target),
            Object::Route {
                table,
                dest,
                target: Some(target),
            },
        )
    }

    /// `ROUTE_DEL`.
    pub fn del_route(&mut self, table: u16, dest: Cidr) -> &mut Self {
        self.push(
            Opcode::RouteDel,
            &route_entry(table, dest, RouteTarget::Blackhole),
            Object::Route {
                table,
                dest,
                target: None,
            },
        )
    }

    /// `MAPPING_ADD`.
    pub fn add_mapping(
        &mut self,
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        loc: MappingLocationSpec,
    ) -> &mut Self {
        self.push(
            Opcode::MappingAdd,
            &mapping_entry(vni, ip, mac, loc),
            Object::Mapping {
                vni,
                ip,
                loc: Some(loc),
            },
        )
    }

    /// `MAPPING_DEL`.
    pub fn del_mapping(&mut self, vni: u32, ip: Ipv4Addr) -> &mut Self {
        let entry = MappingEntry {
            vni: Le32::new(vni),
            ip: ip.octets(),
            ..Default::default()
        };
        self.push(
            Opcode::MappingDel,
            &entry,
            Object::Mapping { vni, ip, loc: None },
        )
    }

    /// `VF_SET`.
    pub fn set_vf(&mut self, spec: &VfSpec) -> &mut Self {
        self.push(
            Opcode::VfSet,
            &spec.to_entry(),
            Object::Text(spec.describe()),
        )
    }

    /// `VF_CLEAR`.
    pub fn clear_vf(&mut self, vf: u16) -> &mut Self {
        self.push(Opcode::VfClear, &id_param(vf), Object::Id("vf", vf))
    }

    /// `VF_ADDR_ADD`.
    pub fn add_vf_addr(&mut self, vf: u16, ip: Ipv4Addr) -> &mut Self {
        self.push(
            Opcode::VfAddrAdd,
            &vf_addr_entry(vf, ip),
            Object::VfAddr { vf, ip },
        )
    }

    /// `VF_ADDR_DEL`.
    pub fn del_vf_addr(&mut self, vf: u16, ip: Ipv4Addr) -> &mut Self {
        self.push(
            Opcode::VfAddrDel,
            &vf_addr_entry(vf, ip),
            Object::VfAddr { vf, ip },
        )
    }

    /// `VF_FLAGS_SET`.
    pub fn set_vf_flags(&mut self, vf: u16, src_dst_check: bool) -> &mut Self {
        self.push(
            Opcode::VfFlagsSet,
            &vf_flags_entry(vf, src_dst_check),
            Object::VfFlags {
                vf,
                on: src_dst_check,
            },
        )
    }

    /// `GATEWAY_ADD`.
    pub fn add_gateway(&mut self, spec: &GatewaySpec) -> &mut Self {
        self.push(
            Opcode::GatewayAdd,
            &spec.to_entry(),
            Object::Text(spec.describe()),
        )
    }

    /// `GATEWAY_DEL`.
    pub fn del_gateway(&mut self, id: u16) -> &mut Self {
        self.push(Opcode::GatewayDel, &id_param(id), Object::Id("gateway", id))
    }

    /// `UPLINK_SET`.
    pub fn set_uplink(&mut self, spec: &UplinkSpec) -> &mut Self {
        self.push(
            Opcode::UplinkSet,
            &spec.to_entry(),
            Object::Text(spec.describe()),
        )
    }

    /// Queues `opcode` with `CmdFlags::REPLACE` (ABI 1.3): the existing entry with the key
    /// of `params` takes its values in place.
    fn push_replace<P: IntoBytes + Immutable>(
        &mut self,
        opcode: Opcode,
        params: &P,
        object: String,
    ) -> Result<&mut Self> {
        self.drv.require_replace(opcode)?;
        self.cmds
            .push(crate::nic::replacing(AdminCmd::new(opcode, params)));
        self.objects.push(Object::Text(format!("replace {object}")));
        Ok(self)
    }

    /// `ROUTE_ADD` with `REPLACE`: the existing route's target, in one step.
    pub fn replace_route(
        &mut self,
        table: u16,
        dest: Cidr,
        target: RouteTarget,
    ) -> Result<&mut Self> {
        self.push_replace(
            Opcode::RouteAdd,
            &route_entry(table, dest, target),
            format!("{} to {target}", route_text(table, dest)),
        )
    }

    /// `MAPPING_ADD` with `REPLACE`: the existing mapping's MAC and location, in one step.
    pub fn replace_mapping(
        &mut self,
        vni: u32,
        ip: Ipv4Addr,
        mac: Mac,
        loc: MappingLocationSpec,
    ) -> Result<&mut Self> {
        self.push_replace(
            Opcode::MappingAdd,
            &mapping_entry(vni, ip, mac, loc),
            format!("{} on {loc}", mapping_text(vni, ip)),
        )
    }

    /// `SUBNET_ADD` with `REPLACE`.
    pub fn replace_subnet(&mut self, spec: &SubnetSpec) -> Result<&mut Self> {
        self.push_replace(Opcode::SubnetAdd, &spec.to_entry(), spec.describe())
    }

    /// `VF_SET` with `REPLACE`.
    pub fn replace_vf(&mut self, spec: &VfSpec) -> Result<&mut Self> {
        self.push_replace(Opcode::VfSet, &spec.to_entry(), spec.describe())
    }

    /// `GATEWAY_ADD` with `REPLACE`.
    pub fn replace_gateway(&mut self, spec: &GatewaySpec) -> Result<&mut Self> {
        self.push_replace(Opcode::GatewayAdd, &spec.to_entry(), spec.describe())
    }

    /// `CLEAR_STATS`.
    pub fn clear_stats(&mut self, function: StatsFunction) -> &mut Self {
        let q = StatsQuery {
            function: Le16::new(function.index()),
        };
        self.push(Opcode::ClearStats, &q, Object::Stats(function))
    }

    /// Runs the batch; see [`Batch::run_with_progress`].
    pub fn run(self) -> Result<usize> {
        self.run_with_progress(|_, _| {})
    }

    /// Sends every queued command in order, many per doorbell, and returns how many were
    /// applied (all of them). `progress(applied, total)` is called as completions arrive
    /// (once per round of completions, not per command).
    ///
    /// The first refused command stops the batch: the error is [`DriverError::Batch`] with
    /// `applied` = the commands before it, all applied, none after it applied, around a
    /// [`DriverError::Command`] naming its object and status. A device error (timeout,
    /// fatal status) is reported the same way, but the commands after it that were already
    /// posted may or may not have been applied.
    pub fn run_with_progress(self, mut progress: impl FnMut(usize, usize)) -> Result<usize> {
        let Batch { drv, cmds, objects } = self;
        let total = cmds.len();
        let chain = drv.chains();
        let stop = |applied: usize, error: DriverError| DriverError::Batch {
            applied,
            total,
            error: Box::new(error),
        };
        let mut applied = 0;
        while applied < total {
            if let Some(Object::VpcWithDomain(spec)) = objects.get(applied) {
                drv.add_vpc(spec).map_err(|e| stop(applied, e))?;
                applied += 1;
                progress(applied, total);
                continue;
            }
            let end = objects[applied..]
                .iter()
                .position(|o| matches!(o, Object::VpcWithDomain(_)))
                .map_or(total, |n| applied + n);
            let base = applied;
            let out = drv.with_queue(|q, dev| {
                q.submit_batch(dev, &cmds[base..end], chain, &mut |n| {
                    progress(base + n, total)
                })
            });
            let ok = out
                .completed
                .iter()
                .take_while(|c| c.status.get() == Status::Ok as u16)
                .count();
            applied += ok;
            if let Some(refused) = out.completed.get(ok) {
                let opcode = refused.opcode.get();
                let error = match Opcode::from_u16(opcode) {
                    Some(opcode) => DriverError::Command {
                        opcode,
                        status: Status::from_u16(refused.status.get()),
                        what: objects[applied].text(),
                    },
                    None => DriverError::BadCompletion {
                        command: raw_opcode_label(opcode, &objects[applied].text()),
                        what: format!("refused: {}", Status::from_u16(refused.status.get())),
                    },
                };
                return Err(stop(applied, error));
            }
            if let Some(error) = out.error {
                return Err(stop(applied, error));
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
