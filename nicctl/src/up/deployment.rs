//! `nicctl up`: a VPC file brought to life. One simulated NIC per host, programmed through
//! its PF driver; the underlay router with every NIC's uplink; a namespace per gateway
//! terminating VXLAN; a namespace per instance whose `eth0` is bridged to its VF.
//!
//! Before anything is made, the deployment is recorded in the state directory
//! ([`super::state`]): what a killed deployment left behind is removed then, and a name a
//! running deployment holds is refused.
use super::bridge::FrameTap;
use super::dhcp::{self, DhcpClient};
use super::gateway::{GatewayNs, GatewayPlan, GatewayVpc, Neighbour};
use super::instance::{Placement, Vm, VmSpec};
use super::state::{Claim, Reaped, Record, Registry, StateError};
use super::underlay::{self, RouterAddrs, Underlay};
use crate::config::model::{self, Config, Target};
use crate::config::plan::{self, Plan};
use host_driver::backend::sim::SimBackend;
use host_driver::PfDriver;
use hw_sim::{FunctionPort, SimConfig};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use vf_driver::VfDriver;

/// Descriptors per VF ring of a simulated VM.
const VM_RING: u16 = 256;
/// A VM's VF takes and hands over TCP super-frames and leaves checksums to the device, as
/// its TAP does with the VM's kernel (64 KiB buffers: 32 MiB of rings a VM).
pub(super) const VM_ATTACH: vf_driver::AttachOptions = vf_driver::AttachOptions { offloads: true };
/// VFs of each simulated NIC (more if a host has more instances): room to add and move
/// instances while `up` runs.
pub const SIM_VFS: u16 = 64;
/// `eth0`'s MTU before a DHCP lease sets the VPC's (9001): Linux's default for Ethernet.
const DHCP_START_MTU: u32 = 1500;

/// Why `up` failed; everything it had built is removed before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("host {host}: {reason}")]
    Host { host: String, reason: String },
    #[error("{0}")]
    Underlay(#[from] super::netns::IpError),
    #[error("gateway {name}: {error}")]
    Gateway {
        name: String,
        error: super::gateway::GatewayError,
    },
    #[error(transparent)]
    Vm(#[from] super::instance::VmError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Dhcp(#[from] dhcp::DhcpError),
}

/// Options of `nicctl up`.
#[derive(Clone, Debug, Default)]
pub struct UpOptions {
    /// Leave `eth0` unaddressed and run a DHCP client in each VM instead.
    pub dhcp: bool,
    /// The state directory; `None` for [`super::state::STATE_DIR`].
    pub state_dir: Option<PathBuf>,
    /// The VPC file, as the state file and messages name it.
    pub source: String,
}

/// What [`Deployment::up`] reports as it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A step begins: "gateway igw".
    Step(&'a str),
    /// `done` of the `total` commands of host `host` are programmed (after every one).
    Programming {
        host: &'a str,
        done: usize,
        total: usize,
    },
    /// A dead deployment's leftovers were removed.
    Reaped(&'a Reaped),
}

/// One host: its NIC and PF driver.
pub struct HostNic {
    pub name: String,
    /// What its NIC was last brought to.
    pub plan: Plan,
    pub driver: Arc<PfDriver>,
    /// Every VF of the NIC, as a VM plugs into it.
    pub ports: Vec<FunctionPort>,
    /// The simulated board's fault injector.
    pub faults: hw_sim::FaultInjector,
}

/// Everything `up` built. Dropping it removes all of it: VMs first, then gateways, then the
/// underlay, then the NICs, and last its state file.
pub struct Deployment {
    pub vms: Vec<Vm>,
    pub gateways: Vec<GatewayNs>,
    pub underlay: Option<Underlay>,
    pub hosts: Vec<HostNic>,
    /// The file it runs: the one it was built from, or the last one applied.
    pub config: Config,
    /// VMs get their addresses by DHCP.
    pub(super) dhcp: bool,
    /// Where DHCP clients keep their files.
    pub(super) run_dir: PathBuf,
    pub(super) claim: Option<Claim>,
    /// Every device reset the watchdog made.
    pub resets: Vec<crate::control::ResetLine>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        self.vms.clear();
        self.gateways.clear();
        self.underlay = None;
        self.hosts.clear();
        self.claim = None;
    }
}

/// A sink for frames crossing an instance's VF, by instance name (for capture).
pub type CaptureFor<'a> = &'a mut dyn FnMut(&str) -> Option<Box<dyn FrameTap>>;

impl Deployment {
    /// Builds the whole deployment for `config`, reporting each step to `progress`.
    pub fn up(
        config: &Config,
        opts: &UpOptions,
        progress: &mut dyn FnMut(Progress<'_>),
        capture: CaptureFor<'_>,
    ) -> Result<Deployment, UpError> {
        let Claimed {
            claim,
            underlay_ns,
            run_dir,
        } = claim(config, opts, progress)?;
        let mut d = Deployment {
            vms: Vec::new(),
            gateways: Vec::new(),
            underlay: None,
            hosts: Vec::new(),
            config: config.clone(),
            dhcp: opts.dhcp,
            run_dir: run_dir.clone(),
            claim: Some(claim),
            resets: Vec::new(),
        };
        let mut underlay = make_underlay(&underlay_ns, progress)?;
        for (index, host) in config.hosts.iter().enumerate() {
            let fail = |reason: String| UpError::Host {
                host: host.name.clone(),
                reason,
            };
            let plan = plan::plan(config, &host.name).map_err(|e| fail(e.to_string()))?;
            // Spare VFs, so that instances can be added and moved while it runs.
            let num_vfs = u16::try_from(plan.vfs.len())
                .unwrap_or(u16::MAX)
                .clamp(SIM_VFS, hw_sim::MAX_VFS);
            let board = hw_sim::Nic::start(SimConfig::cloud_scale(num_vfs))
                .map_err(|e| fail(format!("could not start the simulated NIC: {e}")))?;
            // The VFs belong to the VMs and the uplink to the underlay: taken from the board
            // before the driver owns it.
            let ports = (0..num_vfs).filter_map(|v| board.vf(v)).collect();
            let faults = board.faults();
            underlay.attach_nic(&format!("ul{index}"), Arc::new(board.uplink()))?;
            let driver =
                PfDriver::open(Box::new(SimBackend::on(board))).map_err(|e| fail(e.to_string()))?;
            let total = plan.commands.len();
            progress(Progress::Step(&format!(
                "host {}: programming {total} commands",
                host.name
            )));
            plan::apply(&driver, &plan, |done, total| {
                progress(Progress::Programming {
                    host: &host.name,
                    done,
                    total,
                })
            })
            .map_err(|e| fail(e.to_string()))?;
            d.hosts.push(HostNic {
                name: host.name.clone(),
                plan,
                driver: Arc::new(driver),
                ports,
                faults,
            });
        }
        for plan in gateway_plans(config) {
            progress(Progress::Step(&format!("gateway {}", plan.name)));
            d.gateways.push(start_gateway(&plan, &mut underlay)?);
        }
        d.underlay = Some(underlay);
        for i in 0..config.instances.len() {
            progress(Progress::Step(&format!(
                "instance {}",
                config.instances[i].name
            )));
            let vm = d.boot_vm(i, capture(&config.instances[i].name))?;
            d.vms.push(vm);
        }
        if opts.dhcp {
            progress(Progress::Step(&format!(
                "DHCP: a client in each of {} VMs",
                d.vms.len()
            )));
            let all: Vec<String> = d.vms.iter().map(|v| v.name().to_string()).collect();
            d.lease(&all)?;
        }
        Ok(d)
    }

    /// Boots the VM of instance `i` of the deployment's file, plugged into its VF (the
    /// host's plan must have given it one).
    pub(super) fn boot_vm(
        &self,
        i: usize,
        capture: Option<Box<dyn FrameTap>>,
    ) -> Result<Vm, UpError> {
        let inst = &self.config.instances[i];
        let host = &self.config.hosts[inst.host].name;
        let fail = |reason: String| UpError::Host {
            host: host.clone(),
            reason,
        };
        let nic = self
            .host(host)
            .ok_or_else(|| fail("no NIC runs for it".into()))?;
        let (guest, vf) = nic.attach_vf(&inst.name).map_err(fail)?;
        let spec = vm_spec(&self.config, i, self.dhcp);
        let placement = Placement {
            host: host.clone(),
            vf,
        };
        Ok(Vm::boot(&spec, placement, guest, capture)?)
    }

    /// Starts a DHCP client in each of the VMs `names`, then waits for every lease and
    /// checks it.
    pub(super) fn lease(&mut self, names: &[String]) -> Result<(), UpError> {
        let mut pending = Vec::new();
        for name in names {
            pending.push((name.clone(), DhcpClient::start(name, &self.run_dir)?));
        }
        let mut first_error = None;
        for (name, p) in pending {
            let Some(i) = self.config.instance_index(&name) else {
                continue;
            };
            let inst = &self.config.instances[i];
            let subnet = &self.config.subnets[inst.subnet];
            let expected = dhcp::Expected {
                ip: inst.ip,
                prefix_len: subnet.cidr.1,
                router: Ipv4Addr::from(u32::from(subnet.cidr.0) + 1),
                mtu: shared_regs::VF_MTU,
            };
            // Every client is waited for, so that none is left unowned on failure.
            match p.wait(&expected) {
                Ok(client) => {
                    if let Some(vm) = self.vms.iter_mut().find(|v| v.name() == name) {
                        vm.set_dhcp(client);
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// The state file recording the deployment.
    pub fn state_file(&self) -> Option<&std::path::Path> {
        self.claim.as_ref().map(|c| c.path())
    }

    /// The recorded state.
    pub fn record(&self) -> Option<&Record> {
        self.claim.as_ref().map(|c| c.record())
    }

    /// Records the control socket in the state file, so that clients find it.
    pub fn record_socket(&mut self, socket: Option<PathBuf>) -> std::io::Result<()> {
        match self.claim.as_mut() {
            Some(c) => c.set_socket(socket),
            None => Ok(()),
        }
    }

    /// The underlay router's namespace.
    pub fn underlay_namespace(&self) -> Option<&str> {
        self.underlay.as_ref().map(|u| u.namespace())
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

/// What [`claim`] records.
pub(super) struct Claimed {
    pub claim: Claim,
    /// The underlay router's namespace.
    pub underlay_ns: String,
    /// Where the deployment's processes keep their files.
    pub run_dir: PathBuf,
}

/// Records a deployment of `config` in the state directory before anything is made,
/// removing what a dead one left behind and refusing names a live one holds.
pub(super) fn claim(
    config: &Config,
    opts: &UpOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Claimed, UpError> {
    let registry = opts
        .state_dir
        .clone()
        .map(Registry::new)
        .unwrap_or_default();
    let tag = super::state::unique_tag();
    let underlay_ns = format!("{}{tag}", underlay::NAMESPACE_PREFIX);
    let mut namespaces: Vec<String> = config
        .instances
        .iter()
        .map(|i| i.name.clone())
        .chain(config.gateways.iter().map(|g| g.name.clone()))
        .collect();
    namespaces.push(underlay_ns.clone());
    let run_dir = registry.dir().join(format!("up-{tag}"));
    let (claim, reaped) = registry.claim(
        Record {
            file: opts.source.clone(),
            namespaces,
            underlay: underlay_ns.clone(),
            etc_netns: if opts.dhcp {
                config.instances.iter().map(|i| i.name.clone()).collect()
            } else {
                Vec::new()
            },
            run_dir: run_dir.clone(),
            ..Record::default()
        },
        &tag,
    )?;
    for r in &reaped {
        progress(Progress::Reaped(r));
    }
    Ok(Claimed {
        claim,
        underlay_ns,
        run_dir,
    })
}

/// The underlay router's namespace `name`.
pub(super) fn make_underlay(
    name: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Underlay, UpError> {
    progress(Progress::Step(&format!("underlay namespace {name}")));
    Ok(Underlay::create(
        name,
        RouterAddrs {
            hosts: (model::underlay_router(), 24),
            hosts_mac: model::UNDERLAY_NEXT_HOP_MAC,
            gateways: (model::gateway_router(), 24),
        },
    )?)
}

impl HostNic {
    /// A VF driver on the VF the host's plan gives instance `name`, and the VF.
    pub(super) fn attach_vf(&self, name: &str) -> Result<(VfDriver, u16), String> {
        let vf = self
            .plan
            .vfs
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, vf)| vf)
            .ok_or_else(|| format!("instance {name} has no VF"))?;
        let port = self.ports.get(usize::from(vf)).cloned().ok_or_else(|| {
            format!(
                "instance {name}: VF {vf} is beyond the NIC's {} VFs",
                self.ports.len()
            )
        })?;
        let guest = VfDriver::attach_with(port, VM_RING, VM_ATTACH)
            .map_err(|e| format!("attaching instance {name} to VF {vf}: {e}"))?;
        Ok((guest, vf))
    }
}

/// How instance `i`'s VM sets up `eth0`.
pub(super) fn vm_spec(config: &Config, i: usize, dhcp: bool) -> VmSpec {
    let inst = &config.instances[i];
    let subnet = &config.subnets[inst.subnet];
    let gateway = Ipv4Addr::from(u32::from(subnet.cidr.0) + 1);
    VmSpec {
        name: inst.name.clone(),
        mac: inst.mac,
        addr: (!dhcp).then_some((inst.ip, subnet.cidr.1, gateway)),
        // With DHCP, eth0 starts at Linux's default and the lease sets the VPC's.
        mtu: if dhcp {
            DHCP_START_MTU
        } else {
            shared_regs::VF_MTU
        },
        secondary: if dhcp {
            Vec::new()
        } else {
            inst.secondary_ips.clone()
        },
    }
}

/// Makes the namespace of gateway `plan` on `underlay` as `up` starts; a failure names the
/// gateway.
pub(super) fn start_gateway(
    plan: &GatewayPlan,
    underlay: &mut Underlay,
) -> Result<GatewayNs, UpError> {
    GatewayNs::create(plan, underlay).map_err(|error| UpError::Gateway {
        name: plan.name.clone(),
        error,
    })
}

/// The gateway namespaces `config` asks for: each terminates every VPC with a route to it,
/// and knows every instance of those VPCs as a neighbour.
pub(super) fn gateway_plans(config: &Config) -> Vec<GatewayPlan> {
    config
        .gateways
        .iter()
        .enumerate()
        .map(|(g, gw)| GatewayPlan {
            name: gw.name.clone(),
            underlay: (gw.underlay, 24),
            hosts: gw.hosts.clone(),
            vpcs: config
                .vpcs
                .iter()
                .enumerate()
                .filter(|&(v, _)| routes_to_gateway(config, v, g))
                .map(|(v, vpc)| GatewayVpc {
                    vni: vpc.vni,
                    mac: gw.mac(),
                    cidr: vpc.cidr,
                    neighbours: config
                        .instances
                        .iter()
                        .filter(|i| config.subnets[i.subnet].vpc == v)
                        .flat_map(|i| {
                            let host = config.hosts[i.host].underlay;
                            std::iter::once(i.ip)
                                .chain(i.secondary_ips.iter().copied())
                                .map(move |ip| Neighbour {
                                    ip,
                                    mac: i.mac,
                                    host,
                                })
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect()
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
