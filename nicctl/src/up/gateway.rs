//! A gateway's namespace: the edge a route's `igw`, `vgw` or `natgw` target leads to. A
//! Linux vxlan device per VPC terminates the NIC's tunnel, and the addresses of the file's
//! `hosts` live on its loopback, so VMs have something real to reach.
use super::netns::{self, ip_in, IpError};
use super::underlay::Underlay;
use host_driver::tables::MacDisplay;
use std::net::Ipv4Addr;

/// A running gateway namespace; dropping it deletes the namespace.
pub struct GatewayNs {
    name: String,
    underlay_ip: Ipv4Addr,
}

/// An instance a gateway must be able to answer: its address, MAC and host.
#[derive(Clone, Copy, Debug)]
pub struct Neighbour {
    pub ip: Ipv4Addr,
    pub mac: [u8; 6],
    /// Underlay address of the host the instance runs on.
    pub host: Ipv4Addr,
}

impl GatewayNs {
    /// Creates namespace `name` on the underlay at `underlay` with the `hosts` addresses.
    pub fn create(
        name: &str,
        underlay: &mut Underlay,
        underlay_addr: (Ipv4Addr, u8),
        hosts: &[(Ipv4Addr, u8)],
    ) -> Result<GatewayNs, IpError> {
        netns::delete(name);
        netns::add(name)?;
        let gw = GatewayNs {
            name: name.to_string(),
            underlay_ip: underlay_addr.0,
        };
        underlay.attach_gateway(name, underlay_addr)?;
        // On loopback: the addresses are the gateway's own, beyond it is nowhere to go.
        for (addr, len) in hosts {
            let cidr = format!("{addr}/{len}");
            ip_in(name, &["addr", "add", &cidr, "dev", "lo"])?;
        }
        Ok(gw)
    }

    /// Terminates VPC `vni` here: a vxlan device with the gateway's inner MAC, a route to
    /// the VPC CIDR through it, and a permanent neighbour and forwarding entry per
    /// instance, so no ARP needs to cross the tunnel (the NIC answers no ARP from it).
    pub fn add_vpc(
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
                    &dev,
                    "nud",
                    "permanent",
                ],
            )?;
            bridge_in(ns, &["fdb", "append", &lladdr, "dev", &dev, "dst", &host])?;
        }
        Ok(())
    }
}

fn bridge_in(ns: &str, args: &[&str]) -> Result<(), IpError> {
    let out = std::process::Command::new("bridge")
        .args(["-n", ns])
        .args(args)
        .output()
        .map_err(|e| IpError {
            args: format!("bridge {}", args.join(" ")),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(IpError {
            args: format!("bridge -n {ns} {}", args.join(" ")),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

impl Drop for GatewayNs {
    fn drop(&mut self) {
        netns::delete(&self.name);
    }
}
