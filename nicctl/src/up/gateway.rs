//! A gateway's namespace: the edge a route's `igw`, `vgw` or `natgw` target leads to. A
//! Linux vxlan device per VPC terminates the NIC's tunnel, and the addresses of the file's
//! `hosts` live on its loopback, so VMs have something real to reach.
use super::netns::{self, ip_in, IpError};
use super::underlay::Underlay;
use host_driver::tables::MacDisplay;
use std::net::Ipv4Addr;

/// Why a gateway namespace could not be made or brought to its plan.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Its name is someone else's namespace: never taken over.
    #[error("a network namespace of that name exists and is not this deployment's")]
    NamespaceTaken,
    /// Added by `apply` to a deployment that runs without an underlay.
    #[error("the deployment has no underlay to attach it to")]
    NoUnderlay,
    #[error(transparent)]
    Ip(#[from] IpError),
}

/// A running gateway namespace; dropping it deletes the namespace.
pub struct GatewayNs {
    name: String,
    underlay_ip: Ipv4Addr,
    /// What it was made from (and the neighbours since updated).
    plan: GatewayPlan,
}

/// Everything a gateway namespace is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayPlan {
    pub name: String,
    /// Its address on the underlay's gateway network, and the prefix length.
    pub underlay: (Ipv4Addr, u8),
    /// The file's `hosts` addresses, on its loopback.
    pub hosts: Vec<(Ipv4Addr, u8)>,
    /// The VPCs it terminates.
    pub vpcs: Vec<GatewayVpc>,
}

/// A VPC a gateway terminates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayVpc {
    pub vni: u32,
    /// The gateway's inner MAC.
    pub mac: [u8; 6],
    pub cidr: (Ipv4Addr, u8),
    pub neighbours: Vec<Neighbour>,
}

impl GatewayPlan {
    /// The same gateway but for its neighbours: only those change in place.
    fn same_but_neighbours(&self, other: &GatewayPlan) -> bool {
        let key = |p: &GatewayPlan| {
            (
                p.name.clone(),
                p.underlay,
                p.hosts.clone(),
                p.vpcs
                    .iter()
                    .map(|v| (v.vni, v.mac, v.cidr))
                    .collect::<Vec<_>>(),
            )
        };
        key(self) == key(other)
    }
}

/// An instance a gateway must be able to answer: its address, MAC and host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// Underlay address of the host the instance runs on.
    pub host: Ipv4Addr,
}

impl GatewayNs {
    /// Creates the namespace of `plan` on the underlay, with its `hosts` addresses and its
    /// VPCs.
    pub fn create(plan: &GatewayPlan, underlay: &mut Underlay) -> Result<GatewayNs, GatewayError> {
        let name = plan.name.as_str();
        if netns::exists(name) {
            return Err(GatewayError::NamespaceTaken);
        }
        netns::add(name)?;
        let mut gw = GatewayNs {
            name: name.to_string(),
            underlay_ip: plan.underlay.0,
            plan: GatewayPlan {
                vpcs: Vec::new(),
                ..plan.clone()
            },
        };
        underlay.attach_gateway(name, plan.underlay)?;
        // On loopback: the addresses are the gateway's own, beyond it is nowhere to go.
        for (addr, len) in &plan.hosts {
            let cidr = format!("{addr}/{len}");
            ip_in(name, &["addr", "add", &cidr, "dev", "lo"])?;
        }
        for v in &plan.vpcs {
            gw.add_vpc(v.vni, v.mac, v.cidr, &v.neighbours)?;
            gw.plan.vpcs.push(v.clone());
        }
        Ok(gw)
    }

    /// What the namespace was made from.
    pub fn plan(&self) -> &GatewayPlan {
        &self.plan
    }

    /// Whether `plan` can be reached from this one by changing neighbours alone.
    pub fn can_become(&self, plan: &GatewayPlan) -> bool {
        self.plan.same_but_neighbours(plan)
    }

    /// Brings the neighbours of each VPC to `plan`'s: entries of instances that went, or
    /// moved to another host, are removed and the new ones added (the rest stay, so
    /// traffic to them is never disturbed). `plan` must pass [`GatewayNs::can_become`].
    /// Returns how many neighbours were added and removed.
    pub fn update_neighbours(&mut self, plan: &GatewayPlan) -> Result<(usize, usize), IpError> {
        let (mut added, mut removed) = (0, 0);
        for (i, new) in plan.vpcs.iter().enumerate() {
            let Some(old) = self.plan.vpcs.get(i).cloned() else {
                continue;
            };
            let dev = format!("vx{}", new.vni);
            for n in old
                .neighbours
                .iter()
                .filter(|n| !new.neighbours.contains(n))
            {
                let (lladdr, host) = (MacDisplay(&n.mac).to_string(), n.host.to_string());
                if !new.neighbours.iter().any(|m| m.ip == n.ip) {
                    ip_in(
                        &self.name,
                        &["neigh", "del", &n.ip.to_string(), "dev", &dev],
                    )?;
                }
                let fdb_kept = new
                    .neighbours
                    .iter()
                    .any(|m| m.mac == n.mac && m.host == n.host);
                if !fdb_kept {
                    // Already gone with another address of the same instance: not an error.
                    let _ = bridge_in(
                        &self.name,
                        &["fdb", "del", &lladdr, "dev", &dev, "dst", &host],
                    );
                }
                removed += 1;
            }
            let fresh: Vec<Neighbour> = new
                .neighbours
                .iter()
                .filter(|n| !old.neighbours.contains(n))
                .copied()
                .collect();
            self.neighbours(&dev, &fresh)?;
            added += fresh.len();
            if let Some(v) = self.plan.vpcs.get_mut(i) {
                v.neighbours = new.neighbours.clone();
            }
        }
        Ok((added, removed))
    }

    /// Terminates VPC `vni` here: a vxlan device with the gateway's inner MAC, a route to
    /// the VPC CIDR through it, and a permanent neighbour and forwarding entry per
    /// instance, so no ARP needs to cross the tunnel (the NIC answers no ARP from it).
    fn add_vpc(
        &self,
        vni: u32,
        mac: [u8; 6],
        vpc_cidr: (Ipv4Addr, u8),
        instances: &[Neighbour],
    ) -> Result<(), IpError> {
        let dev = format!("vx{vni}");
        let (ns, id, local, mac) = (
            self.name.as_str(),
            vni.to_string(),
            self.underlay_ip.to_string(),
            MacDisplay(&mac).to_string(),
        );
        ip_in(
            ns,
            &[
                "link",
                "add",
                &dev,
                "type",
                "vxlan",
                "id",
                &id,
                "local",
                &local,
                "dstport",
                "4789",
                "nolearning",
            ],
        )?;
        ip_in(
            ns,
            &["link", "set", &dev, "address", &mac, "mtu", "1500", "up"],
        )?;
        let cidr = format!("{}/{}", vpc_cidr.0, vpc_cidr.1);
        ip_in(ns, &["route", "add", &cidr, "dev", &dev])?;
        self.neighbours(&dev, instances)
    }

    /// A permanent neighbour and a forwarding entry on `dev` for each of `instances`.
    fn neighbours(&self, dev: &str, instances: &[Neighbour]) -> Result<(), IpError> {
        let ns = self.name.as_str();
        for n in instances {
            let (addr, lladdr, host) = (
                n.ip.to_string(),
                MacDisplay(&n.mac).to_string(),
                n.host.to_string(),
            );
            ip_in(
                ns,
                &[
                    "neigh",
                    "replace",
                    &addr,
                    "lladdr",
                    &lladdr,
                    "dev",
                    dev,
                    "nud",
                    "permanent",
                ],
            )?;
            bridge_in(ns, &["fdb", "append", &lladdr, "dev", dev, "dst", &host])?;
        }
        Ok(())
    }
}

fn bridge_in(ns: &str, args: &[&str]) -> Result<(), IpError> {
    netns::iproute2_in("bridge", ns, args).map(drop)
}

impl Drop for GatewayNs {
    fn drop(&mut self) {
        netns::delete(&self.name);
    }
}
