//! A running deployment brought to another VPC file (`nicctl apply FILE` through the
//! control socket): every host's NIC is reconciled against what it holds, VMs and gateway
//! namespaces come and go with their instances and gateways, and an instance whose `host`
//! changed is re-plugged into the new host's NIC.
//!
//! The order is make-before-break across hosts as [`host_driver::reconcile::diff`] makes
//! it within one NIC:
//! 1. gateways that are new get their namespace before any route leads to them;
//! 2. VMs of instances that go are stopped before their VF is cleared (and so before the
//!    VF can be given to another instance);
//! 3. hosts that instances move to are reconciled first: the new VF and mapping exist
//!    before the VM is re-plugged into them, and only then is the old host reconciled,
//!    which clears the old VF and points the old host's mapping at the new one. A VM whose
//!    old host comes first is unplugged before that host's VF is cleared, so no VM is ever
//!    plugged into a VF that holds another instance;
//! 4. new VMs boot on their VFs, and secondary addresses follow the file;
//! 5. gateways that went, or changed beyond their neighbours, are removed (and made again),
//!    and the neighbours of the others follow the instances.
use super::deployment::{gateway_plans, vm_spec, Deployment, UpError};
use super::gateway::{GatewayError, GatewayNs, GatewayPlan};
use super::instance::{Placement, VmSpec};
use crate::config::model::Config;
use crate::config::plan::{self, ApplyError, Plan};
use host_driver::reconcile::{Change, Kind};
use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// What happened to a namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NsChange {
    InstanceAdded {
        name: String,
        at: Placement,
    },
    InstanceRemoved {
        name: String,
        at: Placement,
    },
    /// Its `eth0` (addresses, MAC) changed: it was booted again.
    InstanceReplaced {
        name: String,
        at: Placement,
    },
    /// Re-plugged into another host's NIC; `unplugged` is how long it had no VF.
    InstanceMoved {
        name: String,
        from: Placement,
        to: Placement,
        unplugged: Duration,
    },
    InstanceReaddressed {
        name: String,
        secondary: Vec<Ipv4Addr>,
    },
    GatewayAdded {
        name: String,
    },
    GatewayRemoved {
        name: String,
    },
    GatewayNeighbours {
        name: String,
        added: usize,
        removed: usize,
    },
}

impl NsChange {
    /// Added, changed or removed.
    pub fn kind(&self) -> Kind {
        match self {
            NsChange::InstanceAdded { .. } | NsChange::GatewayAdded { .. } => Kind::Add,
            NsChange::InstanceRemoved { .. } | NsChange::GatewayRemoved { .. } => Kind::Delete,
            _ => Kind::Modify,
        }
    }

    /// "instance" or "gateway".
    pub fn object(&self) -> &'static str {
        match self {
            NsChange::GatewayAdded { .. }
            | NsChange::GatewayRemoved { .. }
            | NsChange::GatewayNeighbours { .. } => "gateway",
            _ => "instance",
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "host {} vf{}", self.host, self.vf)
    }
}

impl fmt::Display for NsChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsChange::InstanceAdded { name, at } => write!(f, "instance {name}: VM on {at}"),
            NsChange::InstanceRemoved { name, at } => {
                write!(f, "instance {name}: VM on {at}")
            }
            NsChange::InstanceReplaced { name, at } => {
                write!(f, "instance {name}: VM booted again on {at} (eth0 changed)")
            }
            NsChange::InstanceMoved {
                name,
                from,
                to,
                unplugged,
            } => write!(
                f,
                "instance {name}: moved from {from} to {to} (unplugged {:.1} ms)",
                unplugged.as_secs_f64() * 1000.0
            ),
            NsChange::InstanceReaddressed { name, secondary } => {
                let list: Vec<String> = secondary.iter().map(|a| a.to_string()).collect();
                write!(
                    f,
                    "instance {name}: secondary addresses [{}]",
                    list.join(", ")
                )
            }
            NsChange::GatewayAdded { name } | NsChange::GatewayRemoved { name } => {
                write!(f, "gateway {name}: namespace")
            }
            NsChange::GatewayNeighbours {
                name,
                added,
                removed,
            } => write!(f, "gateway {name}: neighbours +{added} -{removed}"),
        }
    }
}

/// What [`Deployment::apply`] did.
#[derive(Debug, Default)]
pub struct LiveReport {
    /// Each host's NIC changes, in the order made.
    pub hosts: Vec<(String, Vec<Change>)>,
    /// Namespaces made, removed, moved or changed, in the order done.
    pub namespaces: Vec<NsChange>,
}

/// Why a running deployment could not be brought to a file. What was done before stays
/// done; applying the file again goes on from there (NICs are read back, VMs and gateways
/// compared with what runs).
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "the hosts cannot change while `nicctl up` runs (it runs {running}; the file has \
         {file}): start it again with the file"
    )]
    Hosts { running: String, file: String },
    #[error("host {host}: {error}")]
    Nic { host: String, error: ApplyError },
    #[error(transparent)]
    Up(#[from] UpError),
    #[error(transparent)]
    Vm(#[from] super::instance::VmError),
    #[error("gateway {name}: {error}")]
    Gateway { name: String, error: GatewayError },
    #[error("recording the deployment in its state file: {0}")]
    Record(std::io::Error),
}

/// What becomes of a running VM.
enum Fate {
    Stays,
    Goes,
    /// Booted again: its `eth0` differs.
    Replaced,
    /// To host `to` (index).
    Moves {
        to: usize,
    },
}

/// `eth0` as it is set up, its secondary addresses aside (those change in place).
fn eth0(spec: &VmSpec) -> VmSpec {
    VmSpec {
        secondary: Vec::new(),
        ..spec.clone()
    }
}

impl Deployment {
    /// Brings the running deployment to `config` (validated): see the module's text for
    /// the order. Stops at the first failure.
    /// `source` names the file in the state file. Returns what was done, and the failure
    /// that stopped it, if any.
    pub fn apply(&mut self, config: &Config, source: &str) -> (LiveReport, Option<LiveError>) {
        let mut report = LiveReport::default();
        let error = self.apply_into(config, source, &mut report).err();
        if error.is_some() {
            self.replan();
        }
        (report, error)
    }

    /// After a failure: each host's plan made again against what its NIC holds, so that
    /// the plans (which name VFs and IDs) match the file now run, as far as the NIC got.
    fn replan(&mut self) {
        for host in &mut self.hosts {
            if let Ok((p, _)) = plan::plan_nic(&host.driver, &self.config, &host.name) {
                host.plan = p;
            }
        }
    }

    fn apply_into(
        &mut self,
        config: &Config,
        source: &str,
        report: &mut LiveReport,
    ) -> Result<(), LiveError> {
        let running: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        let wanted: Vec<&str> = config.hosts.iter().map(|h| h.name.as_str()).collect();
        if running != wanted {
            return Err(LiveError::Hosts {
                running: running.join(", "),
                file: wanted.join(", "),
            });
        }
        let fates: Vec<Fate> = self
            .vms
            .iter()
            .map(|vm| match config.instance_index(vm.name()) {
                None => Fate::Goes,
                Some(i) => {
                    let to = config.instances[i].host;
                    if eth0(&vm_spec(config, i, self.dhcp)) != eth0(vm.spec()) {
                        Fate::Replaced
                    } else if config.hosts[to].name != vm.placement().host {
                        Fate::Moves { to }
                    } else {
                        Fate::Stays
                    }
                }
            })
            .collect();
        let gateways = gateway_plans(config);
        // Every NIC is read back and planned before anything changes: a NIC that cannot be
        // read changes nothing, and no read-back stands between a moving instance's new
        // VF and the clearing of its old one.
        let planned = (0..self.hosts.len())
            .map(|h| self.plan_host(h, config))
            .collect::<Result<Vec<_>, _>>()?;
        self.record_namespaces(config)?;

        // 1. New gateways first, where their address is free.
        for plan in &gateways {
            let known = self.gateways.iter().any(|g| g.plan().name == plan.name);
            let address_taken = self
                .gateways
                .iter()
                .any(|g| g.plan().underlay.0 == plan.underlay.0);
            if !known && !address_taken {
                self.add_gateway(plan)?;
                report.namespaces.push(NsChange::GatewayAdded {
                    name: plan.name.clone(),
                });
            }
        }

        // 2. VMs that go, or are booted again, stop before their VFs are cleared.
        let mut moving: Vec<(String, usize)> = Vec::new();
        let mut going = BTreeSet::new();
        for (vm, fate) in self.vms.iter().zip(&fates) {
            match fate {
                Fate::Goes | Fate::Replaced => {
                    going.insert(vm.name().to_string());
                }
                Fate::Moves { to } => moving.push((vm.name().to_string(), *to)),
                Fate::Stays => {}
            }
        }
        let mut i = 0;
        while i < self.vms.len() {
            if going.contains(self.vms[i].name()) {
                let vm = self.vms.remove(i);
                let (name, at) = (vm.name().to_string(), vm.placement().clone());
                drop(vm);
                report
                    .namespaces
                    .push(NsChange::InstanceRemoved { name, at });
            } else {
                i += 1;
            }
        }
        self.config = config.clone();

        // 3. Hosts, those instances move to first.
        let mut order: Vec<usize> = (0..self.hosts.len()).collect();
        order.sort_by_key(|h| !moving.iter().any(|(_, to)| to == h));
        let mut unplugged_at: Vec<(String, Instant)> = Vec::new();
        for h in order {
            let name = self.hosts[h].name.clone();
            for (vm_name, _) in &moving {
                let leaves_here = self
                    .vm(vm_name)
                    .is_some_and(|vm| vm.placement().host == name);
                let unplugged = unplugged_at.iter().any(|(n, _)| n == vm_name);
                if leaves_here && !unplugged {
                    if let Some(vm) = self.vms.iter_mut().find(|v| v.name() == vm_name) {
                        vm.unplug();
                    }
                    unplugged_at.push((vm_name.clone(), Instant::now()));
                }
            }
            let (plan, changes) = planned[h].clone();
            self.reconcile_host(h, plan, &changes)?;
            report.hosts.push((name.clone(), changes));
            for (vm_name, to) in &moving {
                if *to != h {
                    continue;
                }
                let (guest, vf) =
                    self.hosts[h]
                        .attach_vf(vm_name)
                        .map_err(|reason| UpError::Host {
                            host: name.clone(),
                            reason,
                        })?;
                let started = unplugged_at
                    .iter()
                    .find(|(n, _)| n == vm_name)
                    .map(|&(_, t)| t)
                    .unwrap_or_else(Instant::now);
                let to = Placement {
                    host: name.clone(),
                    vf,
                };
                let Some(vm) = self.vms.iter_mut().find(|v| v.name() == vm_name) else {
                    continue;
                };
                let from = vm.placement().clone();
                vm.replug(to.clone(), guest)?;
                report.namespaces.push(NsChange::InstanceMoved {
                    name: vm_name.clone(),
                    from,
                    to,
                    unplugged: started.elapsed(),
                });
            }
        }

        // 4. New VMs, and secondary addresses.
        let mut booted = Vec::new();
        for i in 0..config.instances.len() {
            let name = &config.instances[i].name;
            if self.vm(name).is_some() {
                continue;
            }
            let vm = self.boot_vm(i, None)?;
            let (name, at) = (vm.name().to_string(), vm.placement().clone());
            self.vms.push(vm);
            booted.push(name.clone());
            report.namespaces.push(if going.contains(&name) {
                NsChange::InstanceReplaced { name, at }
            } else {
                NsChange::InstanceAdded { name, at }
            });
        }
        let dhcp = self.dhcp;
        for vm in &mut self.vms {
            let Some(i) = config.instance_index(vm.name()) else {
                continue;
            };
            let secondary = vm_spec(config, i, dhcp).secondary;
            if secondary != vm.spec().secondary {
                vm.set_secondary(&secondary)?;
                report.namespaces.push(NsChange::InstanceReaddressed {
                    name: vm.name().to_string(),
                    secondary,
                });
            }
        }

        // 5. Gateways that went or changed, and everyone's neighbours.
        if let Some(underlay) = self.underlay.as_mut() {
            follow_gateways(
                &mut self.gateways,
                underlay,
                &gateways,
                &mut report.namespaces,
            )?;
        }

        // What runs now, and nothing more.
        let now = Config {
            instances: Vec::new(),
            gateways: Vec::new(),
            ..config.clone()
        };
        self.record_namespaces(&now)?;
        if let Some(claim) = self.claim.as_mut() {
            claim
                .update(|r| r.file = source.to_string())
                .map_err(LiveError::Record)?;
        }
        if self.dhcp && !booted.is_empty() {
            self.lease(&booted)?;
        }
        Ok(())
    }

    /// Host `h`'s plan for `config` and its changes: what its NIC holds is read back, and
    /// what it has keeps its ID.
    fn plan_host(&self, h: usize, config: &Config) -> Result<(Plan, Vec<Change>), LiveError> {
        let host = &self.hosts[h];
        plan::plan_nic(&host.driver, config, &host.name).map_err(|error| LiveError::Nic {
            host: host.name.clone(),
            error,
        })
    }

    /// Makes host `h`'s `changes`, then holds `plan` as its plan.
    fn reconcile_host(
        &mut self,
        h: usize,
        plan: Plan,
        changes: &[Change],
    ) -> Result<(), LiveError> {
        let host = &mut self.hosts[h];
        plan::make(&host.driver, changes, |_, _| {}).map_err(|error| LiveError::Nic {
            host: host.name.clone(),
            error,
        })?;
        host.plan = plan;
        Ok(())
    }

    fn add_gateway(&mut self, plan: &GatewayPlan) -> Result<(), LiveError> {
        let fail = |error| LiveError::Gateway {
            name: plan.name.clone(),
            error,
        };
        let underlay = self
            .underlay
            .as_mut()
            .ok_or_else(|| fail(GatewayError::NoUnderlay))?;
        let ns = GatewayNs::create(plan, underlay).map_err(fail)?;
        self.gateways.push(ns);
        Ok(())
    }

    /// Records the namespaces that run now and those `to_come` (the instances and gateways
    /// about to be made), so that a killed `up` leaves none behind.
    fn record_namespaces(&mut self, to_come: &Config) -> Result<(), LiveError> {
        let mut vms: Vec<String> = self.vms.iter().map(|v| v.name().to_string()).collect();
        for i in &to_come.instances {
            if !vms.contains(&i.name) {
                vms.push(i.name.clone());
            }
        }
        let mut namespaces = vms.clone();
        for name in self
            .gateways
            .iter()
            .map(|g| g.plan().name.as_str())
            .chain(to_come.gateways.iter().map(|g| g.name.as_str()))
        {
            if !namespaces.iter().any(|n| n == name) {
                namespaces.push(name.to_string());
            }
        }
        let dhcp = self.dhcp;
        let etc_netns = if dhcp { vms } else { Vec::new() };
        if let Some(u) = self.underlay_namespace() {
            namespaces.push(u.to_string());
        }
        let Some(claim) = self.claim.as_mut() else {
            return Ok(());
        };
        claim
            .update(|r| {
                r.namespaces = namespaces;
                if dhcp {
                    // A VM that went keeps its entry until `up` ends: its resolv.conf is
                    // removed with its DHCP client, and an entry for nothing is harmless.
                    for n in etc_netns {
                        if !r.etc_netns.contains(&n) {
                            r.etc_netns.push(n);
                        }
                    }
                }
            })
            .map_err(LiveError::Record)
    }
}

/// Brings the gateway namespaces to `plans`: those that went, or changed beyond their
/// neighbours, are removed (and made again), new ones made, and the neighbours of the
/// others follow the instances.
pub(super) fn follow_gateways(
    gateways: &mut Vec<GatewayNs>,
    underlay: &mut super::underlay::Underlay,
    plans: &[GatewayPlan],
    done: &mut Vec<NsChange>,
) -> Result<(), LiveError> {
    let mut i = 0;
    while i < gateways.len() {
        if plans.iter().any(|p| gateways[i].can_become(p)) {
            i += 1;
            continue;
        }
        let name = gateways[i].plan().name.clone();
        gateways.remove(i);
        done.push(NsChange::GatewayRemoved { name });
    }
    for plan in plans {
        let fail = |error| LiveError::Gateway {
            name: plan.name.clone(),
            error,
        };
        match gateways.iter_mut().find(|g| g.plan().name == plan.name) {
            Some(g) if g.plan() == plan => {}
            Some(g) => {
                let (added, removed) = g.update_neighbours(plan).map_err(|e| fail(e.into()))?;
                done.push(NsChange::GatewayNeighbours {
                    name: plan.name.clone(),
                    added,
                    removed,
                });
            }
            None => {
                gateways.push(GatewayNs::create(plan, underlay).map_err(fail)?);
                done.push(NsChange::GatewayAdded {
                    name: plan.name.clone(),
                });
            }
        }
    }
    Ok(())
}
