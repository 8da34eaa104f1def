//! The uplink port's peripherals, through embedded-hal 1.0 traits so the board (its I2C
//! controller and GPIOs) and hw-sim (a simulated I2C bus and LED pins) share one driver:
//! the SFP module's identity EEPROM ([`sfp`]) and the link LEDs ([`led`]).
pub mod led;
pub mod sfp;

pub use led::LinkLeds;
pub use sfp::{read_module, SfpError, SfpInfo};
