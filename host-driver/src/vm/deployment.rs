//! `nicctl up`: a VPC file brought to life. One simulated NIC per host, programmed through
//! its PF driver; the underlay router with every NIC's uplink; a namespace per gateway
//! terminating VXLAN; a namespace per instance whose `eth0` is bridged to its VF.
use super::bridge::FrameTap;
use super::gateway::{GatewayNs, Neighbour};
use super::instance::{Vm, VmSpec};
use super::underlay::{RouterAddrs, Underlay};
use crate::backend::sim::SimBackend;
use crate::config::model::{self, Config, Target};
use crate::config::plan::{self, Plan};
use crate::nic::PfDriver;
use hw_sim::guest::VfGuest;
use hw_sim::SimConfig;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Descriptors per VF ring of a simulated VM.
const VM_RING: u16 = 256;

/// Why `up` failed; everything it had built is removed before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("host {host}: {reason}")]
    Host { host: String, reason: String },
    #[error("{0}")]
    Underlay(#[from] super::netns::IpError),
    #[error(transparent)]
    Vm(#[from] super::instance::VmError),
}

/// Options of `nicctl up`.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    /// Leave `eth0` unaddressed and run a DHCP client in each VM instead.
    pub dhcp: bool,
}

/// One host: its NIC and PF driver.
pub struct HostNic {
    pub name: String,
    pub plan: Plan,
    pub driver: Arc<PfDriver>,
}

/// Everything `up` built. Dropping it removes all of it: VMs first, then gateways, then the
/// underlay, then the NICs.
pub struct Deployment {
    pub vms: Vec<Vm>,
    pub gateways: Vec<GatewayNs>,
    pub underlay: Option<Underlay>,
    pub hosts: Vec<HostNic>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.vms.clear();
        self.gateways.clear();
        self.underlay = None;
        self.hosts.clear();
    }
}

/// A sink for frames crossing an instance's VF, by instance name (for capture).
pub type CaptureFor<'a> = &'a mut dyn FnMut(&str) -> Option<Box<dyn FrameTap>>;

impl Deployment {
    /// Builds the whole deployment for `config`, reporting each step to `progress`.
    pub fn up(
        config: &Config,
        opts: &UpOptions,
        progress: &mut dyn FnMut(&str),
        capture: CaptureFor<'_>,
    ) -> Result<Deployment, UpError> {
        let mut d = Deployment {
            vms: Vec::new(),
            gateways: Vec::new(),
            underlay: None,
            hosts: Vec::new(),
        };
        let mut underlay = Underlay::create(RouterAddrs {
            hosts: (model::underlay_router(), 24),
            hosts_mac: model::UNDERLAY_NEXT_HOP_MAC,
            gateways: (model::gateway_router(), 24),
        })?;
        let mut vf_ports = HashMap::new();
        for (index, host) in config.hosts.iter().enumerate() {
            let fail = |reason: String| UpError::Host {
                host: host.name.clone(),
                reason,
            };
            let plan = plan::plan(config, &host.name).map_err(fail)?;
            let num_vfs = u16::try_from(plan.vfs.len().max(1)).unwrap_or(u16::MAX);
            let backend = SimBackend::start(SimConfig {
                num_vfs,
                ..SimConfig::default()
            })
            .map_err(|e| fail(e.to_string()))?;
            for (name, vf) in &plan.vfs {
                if let Some(port) = backend.nic().vf(*vf) {
                    vf_ports.insert(name.clone(), port);
                }
            }
            underlay.attach_nic(&format!("ul{index}"), backend.nic().uplink())?;
            let driver = PfDriver::open(Box::new(backend)).map_err(|e| fail(e.to_string()))?;
            progress(&format!(
                "host {}: programming {} commands",
                host.name,
                plan.commands.len()
            ));
            for cmd in &plan.commands {
                cmd.apply(&driver)
                    .map_err(|e| fail(format!("{cmd}: {e}")))?;
            }
            d.hosts.push(HostNic {
                name: host.name.clone(),
                plan,
                driver: Arc::new(driver),
            });
        }
        for (g, gw) in config.gateways.iter().enumerate() {
            progress(&format!("gateway {}", gw.name));
            let ns = GatewayNs::create(
                &gw.name,
                &mut underlay,
                (model::gateway_underlay(g), 24),
                &gw.hosts,
            )?;
            for (v, vpc) in config.vpcs.iter().enumerate() {
                if !routes_to_gateway(config, v, g) {
                    continue;
                }
                let neighbours: Vec<Neighbour> = config
                    .instances
                    .iter()
                    .filter(|i| config.subnets[i.subnet].vpc == v)
                    .flat_map(|i| {
                        let host = model::host_underlay(i.host);
                        std::iter::once(i.ip)
                            .chain(i.secondary_ips.iter().copied())
                            .map(move |ip| Neighbour {
                                ip,
                                mac: i.mac,
                                host,
                            })
                    })
                    .collect();
                ns.add_vpc(vpc.vni, model::gateway_mac(g), vpc.cidr, &neighbours)?;
            }
            d.gateways.push(ns);
        }
        d.underlay = Some(underlay);
        for inst in &config.instances {
            progress(&format!("instance {}", inst.name));
            let port = vf_ports
                .get(&inst.name)
                .cloned()
                .ok_or_else(|| UpError::Host {
                    host: config.hosts[inst.host].name.clone(),
                    reason: format!("instance {} has no VF", inst.name),
                })?;
            let guest = VfGuest::attach(port, VM_RING).map_err(|e| UpError::Host {
                host: config.hosts[inst.host].name.clone(),
                reason: format!("attaching instance {} to its VF: {e}", inst.name),
            })?;
            let subnet = &config.subnets[inst.subnet];
            let gateway = Ipv4Addr::from(u32::from(subnet.cidr.0) + 1);
            let spec = VmSpec {
                name: inst.name.clone(),
                mac: inst.mac,
                addr: (!opts.dhcp).then_some((inst.ip, subnet.cidr.1, gateway)),
                mtu: shared_regs::VF_MTU,
            };
            let vm = Vm::boot(&spec, guest, capture(&inst.name))?;
            if !opts.dhcp {
                for ip in &inst.secondary_ips {
                    let cidr = format!("{ip}/{}", subnet.cidr.1);
                    super::netns::ip_in(&inst.name, &["addr", "add", &cidr, "dev", "eth0"])?;
                }
            }
            d.vms.push(vm);
        }
        Ok(d)
    }

    /// The NIC of host `name`.
    pub fn host(&self, name: &str) -> Option<&HostNic> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The VM of instance `name`.
    pub fn vm(&self, name: &str) -> Option<&Vm> {
        self.vms.iter().find(|v| v.name() == name)
    }
}

/// True when a route table of VPC `vpc` sends something to gateway `gw`.
fn routes_to_gateway(config: &Config, vpc: usize, gw: usize) -> bool {
    config
        .route_tables
        .iter()
        .filter(|t| t.vpc == vpc)
        .flat_map(|t| t.routes.iter())
        .any(|r| r.target == Target::Gateway(gw))
}
