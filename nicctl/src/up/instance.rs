//! One simulated VM: its namespace, its `eth0`, and the bridge to its VF.
use super::bridge::{Bridge, FrameTap};
use super::netns::{self, ip, ip_in};
use super::tap::Tap;
use host_driver::tables::MacDisplay;
use std::net::Ipv4Addr;
use vf_driver::VfDriver;

/// How a VM's `eth0` is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmSpec {
    /// The namespace's name: the instance's name.
    pub name: String,
    /// `eth0`'s MAC: the VF's (F2 drops anything else).
    pub mac: [u8; 6],
    /// Address and prefix length, and the default gateway; `None` leaves `eth0` without an
    /// address (for a DHCP client).
    pub addr: Option<(Ipv4Addr, u8, Ipv4Addr)>,
    /// `eth0`'s MTU (9001 in a VPC).
    pub mtu: u32,
    /// Secondary addresses on `eth0` (with the primary's prefix length; only with `addr`).
    pub secondary: Vec<Ipv4Addr>,
}

/// Where a VM is plugged in: its host (as the VPC file names it) and the VF there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub host: String,
    pub vf: u16,
}

/// Why a VM could not be booted.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error("VM {vm}: {what}: {reason}")]
    Setup {
        vm: String,
        what: &'static str,
        reason: String,
    },
}

/// A running VM. Dropping it stops its bridge and deletes its namespace.
pub struct Vm {
    name: String,
    spec: VmSpec,
    placement: Placement,
    bridge: Option<Bridge>,
    dhcp: Option<super::dhcp::DhcpClient>,
}

impl Vm {
    /// Creates namespace `spec.name` (replacing a stale one), moves a fresh TAP into it as
    /// `eth0`, configures it and starts bridging it to `guest`'s VF.
    pub fn boot(
        spec: &VmSpec,
        placement: Placement,
        guest: VfDriver,
        capture: Option<Box<dyn FrameTap>>,
    ) -> Result<Vm, VmError> {
        let fail = |what: &'static str| {
            let vm = spec.name.clone();
            move |e: String| VmError::Setup {
                vm: vm.clone(),
                what,
                reason: e,
            }
        };
        // Never someone else's: what a dead deployment left was removed when this one
        // claimed its names.
        if netns::exists(&spec.name) {
            return Err(fail("creating its namespace")(
                "a network namespace of that name exists and is not this deployment's".into(),
            ));
        }
        netns::add(&spec.name).map_err(|e| fail("creating its namespace")(e.to_string()))?;
        let mut vm = Vm {
            name: spec.name.clone(),
            spec: spec.clone(),
            placement,
            bridge: None,
            dhcp: None,
        };
        let tap_name = super::tap::unique_name("vn");
        let tap = Tap::create_with_offloads(&tap_name)
            .map_err(|e| fail("creating its TAP")(e.to_string()))?;
        let ns = spec.name.as_str();
        ip(&["link", "set", &tap_name, "netns", ns])
            .map_err(|e| fail("moving its TAP into the namespace")(e.to_string()))?;
        let mtu = spec.mtu.to_string();
        let mac = MacDisplay(&spec.mac).to_string();
        let mut inside: Vec<(&'static str, Vec<&str>)> = vec![
            (
                "naming eth0",
                vec!["link", "set", &tap_name, "name", "eth0"],
            ),
            (
                "configuring eth0",
                vec!["link", "set", "eth0", "address", &mac, "mtu", &mtu, "up"],
            ),
        ];
        let (cidr, gw);
        if let Some((addr, len, gateway)) = spec.addr {
            cidr = format!("{addr}/{len}");
            gw = gateway.to_string();
            inside.push(("addressing eth0", vec!["addr", "add", &cidr, "dev", "eth0"]));
            inside.push((
                "adding the default route",
                vec!["route", "add", "default", "via", &gw, "dev", "eth0"],
            ));
        }
        for (what, args) in inside {
            ip_in(ns, &args).map_err(|e| fail(what)(e.to_string()))?;
        }
        vm.spec.secondary.clear();
        vm.set_secondary(&spec.secondary)?;
        let bridge = Bridge::spawn(tap, guest, capture)
            .map_err(|e| fail("starting its VF driver")(e.to_string()))?;
        vm.bridge = Some(bridge);
        Ok(vm)
    }

    /// Adds and removes secondary addresses on `eth0` until it holds `secondary` (a VM
    /// addressed by DHCP holds none).
    pub fn set_secondary(&mut self, secondary: &[Ipv4Addr]) -> Result<(), VmError> {
        let Some((_, len, _)) = self.spec.addr else {
            return Ok(());
        };
        let fail = |what: &'static str, e: netns::IpError| VmError::Setup {
            vm: self.name.clone(),
            what,
            reason: e.to_string(),
        };
        for ip in self.spec.secondary.clone() {
            if !secondary.contains(&ip) {
                let cidr = format!("{ip}/{len}");
                ip_in(&self.name, &["addr", "del", &cidr, "dev", "eth0"])
                    .map_err(|e| fail("removing a secondary address", e))?;
                self.spec.secondary.retain(|a| *a != ip);
            }
        }
        for &ip in secondary {
            if !self.spec.secondary.contains(&ip) {
                let cidr = format!("{ip}/{len}");
                ip_in(&self.name, &["addr", "add", &cidr, "dev", "eth0"])
                    .map_err(|e| fail("adding a secondary address", e))?;
                self.spec.secondary.push(ip);
            }
        }
        Ok(())
    }

    /// Re-plugs the VM into VF `placement` through `guest`: its `eth0` stays up, so its
    /// connections live on.
    pub fn replug(&mut self, placement: Placement, guest: VfDriver) -> Result<(), VmError> {
        let bridge = self.bridge.as_mut().ok_or_else(|| VmError::Setup {
            vm: self.name.clone(),
            what: "re-plugging it",
            reason: "it has no bridge".into(),
        })?;
        bridge.plug(guest).map_err(|e| VmError::Setup {
            vm: self.name.clone(),
            what: "re-plugging it",
            reason: e.to_string(),
        })?;
        self.placement = placement;
        Ok(())
    }

    /// Lets go of its VF (until [`Vm::replug`]): what it sends waits in its TAP.
    pub fn unplug(&mut self) {
        if let Some(b) = self.bridge.as_mut() {
            b.unplug();
        }
    }

    /// How `eth0` is set up.
    pub fn spec(&self) -> &VmSpec {
        &self.spec
    }

    /// Where the VM is plugged in.
    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    /// The instance's name (and its namespace's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs a command inside the VM, returning its output.
    pub fn exec(&self, program: &str, args: &[&str]) -> std::io::Result<std::process::Output> {
        std::process::Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
    }

    /// The VM's bridge, for its counters.
    pub fn bridge(&self) -> Option<&Bridge> {
        self.bridge.as_ref()
    }

    /// Hands the VM the DHCP client holding its lease, ended when the VM is dropped.
    pub fn set_dhcp(&mut self, client: super::dhcp::DhcpClient) {
        self.dhcp = Some(client);
    }

    /// The VM's DHCP client, with `--dhcp`.
    pub fn dhcp(&self) -> Option<&super::dhcp::DhcpClient> {
        self.dhcp.as_ref()
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.dhcp = None;
        self.bridge = None;
        netns::delete(&self.name);
    }
}
