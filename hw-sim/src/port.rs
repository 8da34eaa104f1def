//! The uplink port's peripherals around the firmware, the same the board has: the SFP cage
//! (a module's SFF-8472 EEPROM answering at I2C address 0x50) and the link and activity LED
//! pins. The firmware reaches them through embedded-hal traits ([`SimI2c`], [`SimPin`]);
//! tests read the LEDs with [`crate::Nic::leds`] and pull the module with
//! [`crate::FaultInjector::sfp_absent`].
use crate::nic::Shared;
use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};
use nic_firmware::port::sfp::{EEPROM_ADDR, PAGE_SIZE};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

/// Page A0h of an SFP module: what its EEPROM holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SfpEeprom(pub [u8; PAGE_SIZE]);

impl SfpEeprom {
    /// A module with this SFF-8024 identifier, vendor, part number and serial (fields cut
    /// at 16 bytes, space padded, checksum correct).
    pub fn new(identifier: u8, vendor: &str, part: &str, serial: &str) -> SfpEeprom {
        SfpEeprom(nic_firmware::port::eeprom_image(
            identifier, vendor, part, serial,
        ))
    }

    /// The simulator's module: a 10G short-reach SFP+ (`VPCNIC SIM`, `SFP-10G-SR`,
    /// serial `SIM0001`).
    pub fn default_module() -> SfpEeprom {
        SfpEeprom::new(0x03, "VPCNIC SIM", "SFP-10G-SR", "SIM0001")
    }
}

/// What the LEDs show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leds {
    pub link: bool,
    pub activity: bool,
}

/// The cage and the pins, shared by the host side and the device thread.
pub(crate) struct PortHw {
    eeprom: Option<SfpEeprom>,
    /// The EEPROM's address pointer.
    pointer: Mutex<u8>,
    /// Fault: the module is pulled (nothing answers).
    pub(crate) pulled: AtomicBool,
    /// I2C transactions seen on the bus.
    transactions: AtomicU32,
    link_led: AtomicBool,
    activity_led: AtomicBool,
}

impl PortHw {
    pub(crate) fn new(eeprom: Option<SfpEeprom>) -> PortHw {
        PortHw {
            eeprom,
            pointer: Mutex::new(0),
            pulled: AtomicBool::new(false),
            transactions: AtomicU32::new(0),
            link_led: AtomicBool::new(false),
            activity_led: AtomicBool::new(false),
        }
    }

    pub(crate) fn leds(&self) -> Leds {
        Leds {
            link: self.link_led.load(Ordering::Acquire),
            activity: self.activity_led.load(Ordering::Acquire),
        }
    }

    pub(crate) fn transactions(&self) -> u32 {
        self.transactions.load(Ordering::Relaxed)
    }

    fn transaction(&self, addr: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let page = match &self.eeprom {
            Some(e) if addr == EEPROM_ADDR && !self.pulled.load(Ordering::Acquire) => e,
            _ => return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)),
        };
        let mut pointer = self.pointer.lock().unwrap_or_else(|p| p.into_inner());
        for op in ops {
            match op {
                // The first byte written sets the address; page A0h is read-only, so
                // further bytes are acknowledged and ignored.
                Operation::Write(w) => {
                    if let Some(&at) = w.first() {
                        *pointer = at;
                    }
                }
                Operation::Read(r) => {
                    for b in r.iter_mut() {
                        *b = page.0[usize::from(*pointer)];
                        *pointer = pointer.wrapping_add(1);
                    }
                }
            }
        }
        Ok(())
    }
}

/// The SFP cage's I2C bus as the firmware sees it.
pub(crate) struct SimI2c {
    pub(crate) shared: Arc<Shared>,
}

impl ErrorType for SimI2c {
    type Error = ErrorKind;
}

impl I2c for SimI2c {
    fn transaction(&mut self, addr: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
        self.shared.port.transaction(addr, ops)
    }
}

/// Which LED a [`SimPin`] drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Led {
    Link,
    Activity,
}

/// One LED's GPIO pin.
pub(crate) struct SimPin {
    pub(crate) shared: Arc<Shared>,
    pub(crate) led: Led,
}

impl SimPin {
    fn set(&mut self, high: bool) {
        let port = &self.shared.port;
        match self.led {
            Led::Link => &port.link_led,
            Led::Activity => &port.activity_led,
        }
        .store(high, Ordering::Release);
    }
}

impl embedded_hal::digital::ErrorType for SimPin {
    type Error = core::convert::Infallible;
}

impl embedded_hal::digital::OutputPin for SimPin {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.set(false);
        Ok(())
    }

    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.set(true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nic_firmware::port::{read_module, SfpError};

    fn bus(eeprom: Option<SfpEeprom>) -> PortHw {
        PortHw::new(eeprom)
    }

    struct Bus<'a>(&'a PortHw);
    impl ErrorType for Bus<'_> {
        type Error = ErrorKind;
    }
    impl I2c for Bus<'_> {
        fn transaction(&mut self, a: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
            self.0.transaction(a, ops)
        }
    }

    #[test]
    fn the_default_module_reads_back_through_the_firmware_driver() {
        let hw = bus(Some(SfpEeprom::default_module()));
        let m = read_module(&mut Bus(&hw)).unwrap();
        assert_eq!(m.identifier.0, 0x03);
        assert_eq!(m.vendor_name.as_str(), "VPCNIC SIM");
        assert_eq!(m.part_number.as_str(), "SFP-10G-SR");
        assert_eq!(m.serial.as_str(), "SIM0001");
        assert!(m.checksum_ok);
        assert_eq!(hw.transactions(), 1);
    }

    #[test]
    fn the_eeprom_keeps_its_pointer_and_wraps_at_the_page_end() {
        let mut img = [0u8; PAGE_SIZE];
        for (i, b) in img.iter_mut().enumerate() {
            *b = i as u8;
        }
        let hw = bus(Some(SfpEeprom(img)));
        let mut b = Bus(&hw);
        let mut two = [0u8; 2];
        b.write_read(EEPROM_ADDR, &[0xfe], &mut two).unwrap();
        assert_eq!(two, [0xfe, 0xff]);
        b.read(EEPROM_ADDR, &mut two).unwrap();
        assert_eq!(
            two,
            [0x00, 0x01],
            "a current-address read goes on, wrapping"
        );
        b.write(EEPROM_ADDR, &[0x10, 0xaa]).unwrap();
        b.read(EEPROM_ADDR, &mut two).unwrap();
        assert_eq!(two, [0x10, 0x11], "the page is read-only");
    }

    #[test]
    fn an_empty_cage_a_pulled_module_and_other_addresses_nack() {
        let nack = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);
        let empty = bus(None);
        assert_eq!(read_module(&mut Bus(&empty)), Err(SfpError::Absent));
        let hw = bus(Some(SfpEeprom::default_module()));
        let mut one = [0u8; 1];
        assert_eq!(Bus(&hw).read(0x51, &mut one), Err(nack));
        hw.pulled.store(true, Ordering::Release);
        assert_eq!(read_module(&mut Bus(&hw)), Err(SfpError::Absent));
        hw.pulled.store(false, Ordering::Release);
        assert!(read_module(&mut Bus(&hw)).is_ok());
    }

    #[test]
    fn the_firmware_reads_the_cage_at_power_on_and_leaves_the_leds_dark() {
        use crate::{Nic, SimConfig};
        use std::time::{Duration, Instant};
        for sfp in [Some(SfpEeprom::default_module()), None] {
            let nic = Nic::start(SimConfig {
                num_vfs: 1,
                sfp,
                ..SimConfig::default()
            })
            .unwrap();
            let t = Instant::now();
            while nic.sfp_reads() == 0 {
                assert!(
                    t.elapsed() < Duration::from_secs(5),
                    "the cage was never read"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(nic.leds(), Leds::default());
        }
    }
}
