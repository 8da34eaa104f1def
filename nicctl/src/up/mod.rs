//! Simulated VMs: a network namespace per instance whose `eth0` is a TAP device, bridged
//! to the instance's VF rings by a guest VF driver, so every frame a real Linux stack sends
//! crosses the rings and the firmware.
pub mod bridge;
pub mod cluster;
pub mod console;
pub mod deployment;
pub mod dhcp;
pub mod gateway;
pub mod instance;
pub mod live;
pub mod netns;
pub mod state;
pub mod tap;
pub mod underlay;
pub mod vnet;
pub mod watchdog;

pub use bridge::{Bridge, CaptureSlot, FrameTap};
pub use deployment::{Deployment, Progress, UpError, UpOptions};
pub use instance::{Placement, Vm, VmSpec};
pub use live::{LiveError, LiveReport, NsChange};
