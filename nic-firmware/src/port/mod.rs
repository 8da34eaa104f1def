//! The uplink port's peripherals, through embedded-hal 1.0 traits so the board (its I2C
//! controller and GPIOs) and hw-sim (a simulated I2C bus and LED pins) share one driver:
//! the SFP module's identity EEPROM ([`sfp`]) and the link LEDs ([`led`]).
pub mod led;
pub mod sfp;

pub use led::{LedState, LinkLeds};
pub use sfp::{eeprom_image, read_module, SfpError, SfpInfo};

use crate::platform::Platform;
use shared_regs::entry::{PortInfo, SfpState};

/// What the firmware last found in the SFP cage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// A module answered with this identity.
    Present(SfpInfo),
    /// Nothing answered at 0x50.
    Absent,
    /// The bus failed otherwise.
    BusError,
}

/// The uplink port as the firmware tracks it: the module it read and the LEDs it drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortState {
    pub module: Module,
    pub leds: LedState,
}

impl PortState {
    /// Before the first read: no module, LEDs unknown.
    pub const NEW: PortState = PortState {
        module: Module::Absent,
        leds: LedState::UNKNOWN,
    };

    /// Reads the module's identity from its EEPROM through the platform's I2C bus.
    pub fn read_module<P: Platform>(&mut self, p: &mut P) {
        self.module = match read_module(p.peripherals().i2c) {
            Ok(info) => Module::Present(info),
            Err(SfpError::Absent) => Module::Absent,
            Err(SfpError::Bus(_)) => Module::BusError,
        };
    }

    /// Drives the platform's LEDs: link from `link_up`, activity blinking while `busy`.
    /// A pin that fails to switch is tried again at the next call.
    pub fn drive_leds<P: Platform>(&mut self, p: &mut P, link_up: bool, busy: bool, now_us: u64) {
        let per = p.peripherals();
        let _ = self
            .leds
            .update(per.link_led, per.activity_led, link_up, busy, now_us);
    }

    /// The port as `PORT_GET` reports it.
    pub fn info(&self, link_up: bool) -> PortInfo {
        let mut out = PortInfo {
            link_up: u8::from(link_up),
            link_led: u8::from(self.leds.link_lit()),
            activity_led: u8::from(self.leds.activity_lit()),
            ..PortInfo::default()
        };
        match &self.module {
            Module::Present(m) => {
                out.sfp = SfpState::Present as u8;
                out.present = 1;
                out.identifier = m.identifier.0;
                out.checksum_ok = u8::from(m.checksum_ok);
                for (dst, src) in [
                    (&mut out.vendor, &m.vendor_name),
                    (&mut out.part, &m.part_number),
                    (&mut out.serial, &m.serial),
                ] {
                    for (d, &s) in dst.iter_mut().zip(src.as_bytes()) {
                        *d = s;
                    }
                }
            }
            Module::Absent => out.sfp = SfpState::Absent as u8,
            Module::BusError => out.sfp = SfpState::BusError as u8,
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeNic, Sizes};
    use crate::Function;
    use embedded_hal::i2c::ErrorKind;
    use shared_regs::admin::{AdminCmd, Opcode, Status};
    use shared_regs::entry::UplinkEntry;
    use shared_regs::pf;
    use zerocopy::FromBytes;

    const BUF_IOVA: u64 = 0x9000;

    fn port_get(nic: &mut FakeNic, buf_len: u32) -> Result<PortInfo, Status> {
        let mut cmd = AdminCmd::new(Opcode::PortGet, &[0u8; 0]);
        cmd.buf_addr.set(BUF_IOVA);
        cmd.buf_len.set(buf_len);
        let done = nic.submit(cmd);
        done.completion().unwrap()?;
        assert_eq!(done.result.get() as usize, core::mem::size_of::<PortInfo>());
        let mut raw = [0u8; 56];
        crate::Platform::dma_read(&mut nic.platform, Function::Pf, BUF_IOVA, &mut raw).unwrap();
        Ok(PortInfo::read_from_bytes(&raw).unwrap())
    }

    fn text(field: &[u8; 16]) -> &str {
        core::str::from_utf8(field).unwrap().trim_end_matches('\0')
    }

    #[test]
    fn the_module_is_read_at_reset_and_on_port_get() {
        let mut nic = FakeNic::new(Sizes::default());
        assert_eq!(
            nic.fw.port().module,
            Module::Absent,
            "empty cage at power-on"
        );
        let info = port_get(&mut nic, 56).unwrap();
        assert_eq!((info.sfp, info.present), (SfpState::Absent as u8, 0));

        // A module plugged in: PORT_GET reads it again.
        nic.platform.i2c.eeprom = Some(eeprom_image(0x03, "ACME OPTICS", "SFP-10G-LR", "A1"));
        let info = port_get(&mut nic, 4096).unwrap();
        assert_eq!((info.sfp, info.present), (SfpState::Present as u8, 1));
        assert_eq!(info.identifier, 0x03);
        assert_eq!(info.checksum_ok, 1);
        assert_eq!(text(&info.vendor), "ACME OPTICS");
        assert_eq!(text(&info.part), "SFP-10G-LR");
        assert_eq!(text(&info.serial), "A1");

        // Swapped while held in reset: the reset reads the new one.
        nic.platform.i2c.eeprom = Some(eeprom_image(0x03, "OTHER", "P2", "S2"));
        crate::Platform::write_reg(
            &mut nic.platform,
            Function::Pf,
            pf::CONTROL,
            pf::Control::RESET.bits(),
        );
        nic.fw.poll(&mut nic.platform);
        let Module::Present(m) = nic.fw.port().module else {
            panic!("no module after reset: {:?}", nic.fw.port().module);
        };
        assert_eq!(m.vendor_name.as_str(), "OTHER");
    }

    #[test]
    fn bus_errors_and_short_buffers_are_reported() {
        let mut nic = FakeNic::new(Sizes::default());
        assert_eq!(port_get(&mut nic, 55).err(), Some(Status::BufferTooSmall));
        nic.platform.i2c.eeprom = Some(eeprom_image(0x03, "V", "P", "S"));
        nic.platform.i2c.fail = Some(ErrorKind::ArbitrationLoss);
        let info = port_get(&mut nic, 56).unwrap();
        assert_eq!((info.sfp, info.present), (SfpState::BusError as u8, 0));
        assert_eq!(nic.fw.port().module, Module::BusError);
    }

    #[test]
    fn link_led_follows_uplink_set_and_activity_blinks_while_busy() {
        let mut nic = FakeNic::new(Sizes::default());
        assert!(!nic.platform.link_led.high && !nic.platform.activity_led.high);
        let info = port_get(&mut nic, 56).unwrap();
        assert_eq!((info.link_up, info.link_led, info.activity_led), (0, 0, 0));
        let up = UplinkEntry {
            mac: [0x02, 0xaa, 0, 0, 0, 1],
            next_hop_mac: [0x02, 0xbb, 0, 0, 0, 1],
            underlay_ip: [192, 168, 0, 1],
            ..Default::default()
        };
        nic.admin(Opcode::UplinkSet, &up).unwrap();
        assert!(nic.platform.link_led.high, "UPLINK_SET brings the link up");
        let info = port_get(&mut nic, 56).unwrap();
        assert_eq!((info.link_up, info.link_led), (1, 1));

        // Busy polls blink the activity LED once per period; an idle poll puts it out.
        let writes = nic.platform.link_led.writes;
        nic.platform.now_us += led::BLINK_US;
        nic.platform.uplink_in.push_back(vec![0u8; 60]);
        assert!(nic.fw.poll(&mut nic.platform));
        assert!(nic.platform.activity_led.high);
        assert!(!nic.fw.poll(&mut nic.platform));
        assert!(!nic.platform.activity_led.high);
        assert_eq!(
            nic.platform.link_led.writes, writes,
            "a steady LED is not rewritten"
        );

        // A reset forgets the uplink: link LED off.
        crate::Platform::write_reg(
            &mut nic.platform,
            Function::Pf,
            pf::CONTROL,
            pf::Control::RESET.bits(),
        );
        nic.poll();
        assert!(!nic.platform.link_led.high);
    }
}
