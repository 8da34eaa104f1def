//! Device backends: the ways the driver can reach a vpcnic PF.
use crate::device::Device;
use crate::error::{DriverError, Result};

#[cfg(feature = "sim")]
pub mod sim;
pub mod vfio;
#[cfg(feature = "vfio-user")]
pub mod vfio_user;

/// Device names `nicctl --device` accepts.
pub const KNOWN_DEVICES: &[&str] = &[
    #[cfg(feature = "sim")]
    "sim",
    #[cfg(feature = "sim")]
    "sim-small",
    "vfio:<PCI address>",
    #[cfg(feature = "vfio-user")]
    "vfio-user:<socket path>",
];

/// Opens a backend by name: `sim` is the built-in in-process simulator with `num_vfs` VFs
/// and a cloud NIC's tables, `sim-small` the same with the simulator's small tables;
/// `vfio:0000:03:00.0` the PF at that PCI address, bound to vfio-pci;
/// `vfio-user:PATH` the PF served at that socket (`nic-sim --socket PATH`).
pub fn open_by_name(name: &str, num_vfs: u16) -> Result<Box<dyn Device>> {
    #[cfg(feature = "vfio-user")]
    if let Some(path) = name.strip_prefix("vfio-user:") {
        return Ok(Box::new(vfio_user::VfioUserBackend::open(path.as_ref())?));
    }
    if let Some(bdf) = name.strip_prefix("vfio:") {
        return Ok(Box::new(vfio::VfioBackend::open(bdf)?));
    }
    match name {
        #[cfg(feature = "sim")]
        "sim" => {
            // The product's simulated NIC has a cloud NIC's table capacities.
            let cfg = hw_sim::SimConfig::cloud_scale(num_vfs);
            Ok(Box::new(sim::SimBackend::start(cfg)?))
        }
        // The simulator's small default tables: many NICs on one machine (the cluster's
        // benchmark runs fifty).
        #[cfg(feature = "sim")]
        "sim-small" => Ok(Box::new(sim::SimBackend::start(hw_sim::SimConfig {
            num_vfs,
            ..hw_sim::SimConfig::default()
        })?)),
        _ => {
            let _ = num_vfs;
            Err(DriverError::UnknownDevice {
                name: name.to_string(),
                known: KNOWN_DEVICES.join(", "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_device_lists_the_known_ones() {
        let Err(err) = open_by_name("pci:0000:3b:00.0", 8) else {
            panic!("an unknown device name opened");
        };
        let msg = err.to_string();
        assert!(
            msg.starts_with("unknown device \"pci:0000:3b:00.0\""),
            "{msg}"
        );
        #[cfg(all(feature = "sim", feature = "vfio-user"))]
        assert!(
            msg.ends_with(
                "known devices: sim, sim-small, vfio:<PCI address>, vfio-user:<socket path>"
            ),
            "{msg}"
        );
    }
}
