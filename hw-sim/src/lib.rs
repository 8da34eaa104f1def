//! # hw-sim: the vpcnic SmartNIC as silicon
//!
//! A register-level model of the chip around the firmware, and nothing more: register files
//! with their host-side access rules (`regs.rs`), a DMA engine over memory the host mapped for
//! each function (`dma.rs`), interrupts delivered through eventfds (`irq.rs`), the uplink port
//! (`uplink.rs`), the SFP cage's I2C bus and the LED pins (`port.rs`) and fault injection
//! (`faults.rs`). It runs the real [`nic_firmware::Firmware`] on a device thread
//! (`device.rs`); every forwarding decision is the firmware's.
//!
//! The host side sees the device only as PCI functions ([`FunctionPort`]): 32-bit BAR0
//! accesses, DMA mappings (as VFIO would program the IOMMU) and interrupt eventfds (as
//! `VFIO_DEVICE_SET_IRQS` would); [`guest::GuestPort`] is a function as a VM's driver reaches it
//! (the `vf-driver` crate is that driver). [`Nic::vf`] and [`Nic::uplink`] are the board's
//! ports for whatever plays the VMs and the wire (`nicctl up`, the tests).
//!
//! ```no_run
//! use hw_sim::{Nic, SimConfig};
//! let nic = Nic::start(SimConfig::default()).unwrap();
//! let id = nic.pf().bar_read32(u64::from(shared_regs::pf::ID)).unwrap();
//! assert_eq!(id, shared_regs::DEVICE_ID_MAGIC);
//! ```

mod device;
#[cfg(feature = "testing")]
mod device_side;
mod dma;
mod error;
mod faults;
mod firmware_ram;
pub mod guest;
mod irq;
pub mod memfd;
mod nic;
mod polls;
mod port;
mod regs;
mod uplink;
pub mod vfio_user;

#[cfg(feature = "testing")]
pub use device_side::DeviceSide;
pub use error::{FunctionName, SimError};
pub use faults::FaultInjector;
pub use nic::{FunctionPort, Nic, SimConfig, MAX_VFS};
pub use nic_firmware::Function;
pub use port::{Leds, SfpEeprom};
pub use uplink::{UplinkPort, Wire, MAX_WIRE_FRAME};
