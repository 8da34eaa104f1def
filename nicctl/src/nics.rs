//! [`Nics`]: the NICs a command talks to, whoever holds them.
//!
//! A command is written once against this trait. [`Local`] holds PF drivers opened in this
//! process (a device, fresh NICs programmed from a VPC file, or a running deployment's
//! NICs inside its control server); [`crate::control::Remote`] reaches a running
//! `nicctl up` through its control socket, whose server answers each request by calling
//! [`Local`]. So the socket carries only what the driver returns (counters, table rows,
//! port status, trace reports as the firmware wrote them), and every name resolution and
//! every line of text is made on the client's side, by the same code as for a local NIC.
use crate::config::{Config, Plan, PlanError};
use crate::error::{CliError, Result};
use host_driver::port::PortStatus;
use host_driver::table_read::NicTables;
use host_driver::tables::{Port, StatsFunction};
use host_driver::trace::TraceReport;
use host_driver::{DeviceInfo, DriverError, PfDriver};
use shared_regs::stats::Counters;
use std::sync::Arc;

/// One host's NIC as a command sees it.
#[derive(Clone, Debug)]
pub struct NicHost {
    /// The host's name in the VPC file, or the device's name.
    pub name: String,
    /// What the VPC file programs into it, when there is a file.
    pub plan: Option<Plan>,
}

/// The NICs a command talks to.
pub trait Nics {
    /// The VPC file they were programmed from, if any: it names hosts, instances and IDs.
    fn config(&self) -> Option<&Config>;

    /// The hosts, in file order (a device alone is one host named after it).
    fn hosts(&self) -> &[NicHost];

    /// Counters of `host`'s NIC: the VFs `vfs` and, with `uplink`, the uplink; with
    /// neither, every VF and the uplink.
    fn stats(
        &self,
        host: usize,
        vfs: &[u16],
        uplink: bool,
    ) -> Result<Vec<(StatsFunction, Counters)>>;

    /// `host`'s tables as its NIC holds them (`TABLE_READ`).
    fn tables(&self, host: usize) -> Result<NicTables>;

    /// `host`'s uplink port (`PORT_GET`).
    fn port(&self, host: usize) -> Result<PortStatus>;

    /// A dry-run `TRACE` of `frame` arriving on `port` of `host`'s NIC: the report as the
    /// firmware wrote it.
    fn trace_bytes(&self, host: usize, port: Port, frame: &[u8]) -> Result<Vec<u8>>;

    /// A dry-run `TRACE`, decoded.
    fn trace(&self, host: usize, port: Port, frame: &[u8]) -> Result<TraceReport> {
        let bytes = self.trace_bytes(host, port, frame)?;
        Ok(TraceReport::decode(&bytes)?)
    }

    /// The host named `host`, or the first. Names are the VPC file's hosts.
    fn resolve_host(&self, host: Option<&str>) -> Result<usize> {
        let Some(h) = host else { return Ok(0) };
        if self.config().is_none() {
            return Err(CliError::Usage(format!(
                "--host {h}: no `nicctl up` is running and no FILE is given, so there are no hosts"
            )));
        }
        self.hosts()
            .iter()
            .position(|n| n.name == h)
            .ok_or_else(|| {
                let known: Vec<&str> = self.hosts().iter().map(|h| h.name.as_str()).collect();
                CliError::Usage(format!(
                    "unknown host {h:?} (hosts of the file: {})",
                    known.join(", ")
                ))
            })
    }

    /// The hosts a command about "every NIC unless one is named" covers.
    fn named_hosts(&self, host: Option<&str>) -> Result<Vec<usize>> {
        match host {
            Some(_) => Ok(vec![self.resolve_host(host)?]),
            None => Ok((0..self.hosts().len()).collect()),
        }
    }

    /// A port named on the command line: `vfN` or `uplink` of `host` (default the first
    /// host), or an instance's name, which stands for its VF on its own host. Returns the
    /// host's index and the port.
    fn resolve_port(&self, host: Option<&str>, port: &str) -> Result<(usize, Port)> {
        if let Some((own, vf)) = self.instance_vf(port) {
            let h = self.resolve_host(host)?;
            if host.is_some() && h != own {
                let hosts = self.hosts();
                return Err(CliError::Usage(format!(
                    "instance {port} runs on host {}, not {}",
                    hosts[own].name, hosts[h].name
                )));
            }
            return Ok((own, Port::Vf(vf)));
        }
        let h = self.resolve_host(host)?;
        if port == "uplink" {
            return Ok((h, Port::Uplink));
        }
        let known = if self.config().is_some() {
            ", nor an instance of the file"
        } else {
            ""
        };
        port.strip_prefix("vf")
            .and_then(|n| n.parse().ok())
            .map(|n| (h, Port::Vf(n)))
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{port:?} is not a port: vf0, vf1, ... or uplink{known}"
                ))
            })
    }

    /// The host (index) and VF of instance `name`, as the hosts' plans place it.
    fn instance_vf(&self, name: &str) -> Option<(usize, u16)> {
        self.hosts().iter().enumerate().find_map(|(h, host)| {
            let plan = host.plan.as_ref()?;
            plan.vfs
                .iter()
                .find(|(n, _)| n == name)
                .map(|&(_, vf)| (h, vf))
        })
    }

    /// The instance on VF `vf` of `host`, if the file names one.
    fn instance_on(&self, host: usize, vf: u16) -> Option<&str> {
        let plan = self.hosts().get(host)?.plan.as_ref()?;
        plan.vfs
            .iter()
            .find(|(_, v)| *v == vf)
            .map(|(name, _)| name.as_str())
    }
}

/// PF drivers opened in this process.
pub struct Local {
    config: Option<Config>,
    hosts: Vec<NicHost>,
    /// Each host's driver; `None` for a host of the file whose NIC is not open here.
    drivers: Vec<Option<Arc<PfDriver>>>,
}

impl Local {
    /// One device, no VPC file.
    pub fn device(driver: PfDriver) -> Local {
        Local {
            config: None,
            hosts: vec![NicHost {
                name: driver.info().device.clone(),
                plan: None,
            }],
            drivers: vec![Some(Arc::new(driver))],
        }
    }

    /// A NIC opened here and shared, as host `name`, no VPC file yet.
    pub fn shared(name: &str, driver: Arc<PfDriver>) -> Local {
        Local {
            config: None,
            hosts: vec![NicHost {
                name: name.to_string(),
                plan: None,
            }],
            drivers: vec![Some(driver)],
        }
    }

    /// The hosts of `config` with their plans and no NIC open yet ([`Local::attach`] adds
    /// them).
    pub fn of_file(config: Config) -> std::result::Result<Local, PlanError> {
        let hosts = config
            .hosts
            .iter()
            .map(|h| {
                Ok(NicHost {
                    name: h.name.clone(),
                    plan: Some(crate::config::plan(&config, &h.name)?),
                })
            })
            .collect::<std::result::Result<Vec<_>, PlanError>>()?;
        Ok(Local {
            drivers: vec![None; hosts.len()],
            config: Some(config),
            hosts,
        })
    }

    /// Makes `driver` host `host`'s NIC, programmed with `plan`.
    pub fn attach(&mut self, host: usize, driver: Arc<PfDriver>, plan: Plan) {
        if let (Some(d), Some(h)) = (self.drivers.get_mut(host), self.hosts.get_mut(host)) {
            *d = Some(driver);
            h.plan = Some(plan);
        }
    }

    /// NICs of the hosts of `config`, each driven by the driver beside its plan (a
    /// deployment's, or fresh NICs programmed here).
    pub fn programmed(config: Config, hosts: Vec<(Plan, Arc<PfDriver>)>) -> Local {
        let (hosts, drivers) = hosts
            .into_iter()
            .map(|(plan, d)| {
                (
                    NicHost {
                        name: plan.host.clone(),
                        plan: Some(plan),
                    },
                    Some(d),
                )
            })
            .unzip();
        Local {
            config: Some(config),
            hosts,
            drivers,
        }
    }

    /// `host`'s driver.
    pub fn driver(&self, host: usize) -> Result<&PfDriver> {
        let name = self.hosts.get(host).map_or("?", |h| h.name.as_str());
        self.drivers
            .get(host)
            .and_then(|d| d.as_deref())
            .ok_or_else(|| CliError::Usage(format!("host {name} has no NIC open here")))
    }

    /// The device's identity and capacities.
    pub fn info(&self, host: usize) -> Result<&DeviceInfo> {
        Ok(self.driver(host)?.info())
    }
}

impl Nics for Local {
    fn config(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    fn hosts(&self) -> &[NicHost] {
        &self.hosts
    }

    fn stats(
        &self,
        host: usize,
        vfs: &[u16],
        uplink: bool,
    ) -> Result<Vec<(StatsFunction, Counters)>> {
        let driver = self.driver(host)?;
        let functions = stats_functions(driver.info(), vfs, uplink)?;
        Ok(functions
            .into_iter()
            .map(|f| Ok((f, driver.stats(f)?)))
            .collect::<std::result::Result<Vec<_>, DriverError>>()?)
    }

    fn tables(&self, host: usize) -> Result<NicTables> {
        Ok(self.driver(host)?.read_tables()?)
    }

    fn port(&self, host: usize) -> Result<PortStatus> {
        Ok(self.driver(host)?.port()?)
    }

    fn trace_bytes(&self, host: usize, port: Port, frame: &[u8]) -> Result<Vec<u8>> {
        Ok(self.driver(host)?.trace_bytes(port, frame)?)
    }
}

/// The functions `nicctl stats` reports: `vfs` (checked against the device) and the
/// uplink if asked; with neither, every VF and the uplink.
pub fn stats_functions(
    info: &DeviceInfo,
    vfs: &[u16],
    uplink: bool,
) -> std::result::Result<Vec<StatsFunction>, DriverError> {
    let mut out = Vec::new();
    if vfs.is_empty() && !uplink {
        out.extend((0..info.num_vfs.min(u32::from(u16::MAX))).map(|n| StatsFunction::Vf(n as u16)));
        out.push(StatsFunction::Uplink);
        return Ok(out);
    }
    for &vf in vfs {
        if u32::from(vf) >= info.num_vfs {
            return Err(DriverError::InvalidArgument(match info.num_vfs {
                0 => format!("there is no vf{vf}: {} has no VFs", info.device),
                n => format!(
                    "there is no vf{vf}: {} has {n} VFs (vf0..vf{})",
                    info.device,
                    n - 1
                ),
            }));
        }
        if !out.contains(&StatsFunction::Vf(vf)) {
            out.push(StatsFunction::Vf(vf));
        }
    }
    if uplink {
        out.push(StatsFunction::Uplink);
    }
    Ok(out)
}
