//! The uplink port as the firmware reports it (`PORT_GET`): the SFP module it read from the
//! module's EEPROM over I2C, the link state and the LEDs; decoded and printed for
//! `nicctl port`.
use serde::{Deserialize, Serialize};
use shared_regs::entry::{PortInfo, SfpState};

/// The SFP cage's content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ModuleStatus {
    /// A module answered with this identity (SFF-8472 page A0h).
    Present {
        /// SFF-8024 identifier byte.
        identifier: u8,
        /// What the identifier names (`SFP/SFP+/SFP28`, ...).
        kind: String,
        vendor: String,
        part: String,
        serial: String,
        /// The EEPROM's `CC_BASE` checksum matched.
        checksum_ok: bool,
    },
    /// Nothing answered at I2C address 0x50.
    Absent,
    /// The I2C bus failed.
    BusError,
}

/// The uplink port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub module: ModuleStatus,
    /// The uplink is configured (`UPLINK_SET`).
    pub link_up: bool,
    pub link_led: bool,
    pub activity_led: bool,
}

fn text(field: &[u8; 16]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

impl PortStatus {
    /// Decodes a `PORT_GET` report.
    pub fn decode(info: &PortInfo) -> crate::Result<PortStatus> {
        let module = match SfpState::from_u8(info.sfp) {
            Some(SfpState::Present) => ModuleStatus::Present {
                identifier: info.identifier,
                kind: shared_regs::entry::sff8024_identifier_name(info.identifier).to_string(),
                vendor: text(&info.vendor),
                part: text(&info.part),
                serial: text(&info.serial),
                checksum_ok: info.checksum_ok != 0,
            },
            Some(SfpState::Absent) => ModuleStatus::Absent,
            Some(SfpState::BusError) => ModuleStatus::BusError,
            None => {
                return Err(crate::DriverError::UnknownValue {
                    field: "SFP state",
                    value: u32::from(info.sfp),
                })
            }
        };
        Ok(PortStatus {
            module,
            link_up: info.link_up != 0,
            link_led: info.link_led != 0,
            activity_led: info.activity_led != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> PortInfo {
        let mut i = PortInfo {
            sfp: SfpState::Present as u8,
            present: 1,
            identifier: 3,
            checksum_ok: 1,
            link_up: 1,
            link_led: 1,
            ..PortInfo::default()
        };
        i.vendor[..3].copy_from_slice(b"ACM");
        i.part[..2].copy_from_slice(b"P1");
        i.serial[..16].copy_from_slice(b"0123456789ABCDEF");
        i
    }

    #[test]
    fn a_report_decodes_and_prints() {
        let p = PortStatus::decode(&info()).unwrap();
        assert_eq!(
            p.module,
            ModuleStatus::Present {
                identifier: 3,
                kind: "SFP/SFP+/SFP28".into(),
                vendor: "ACM".into(),
                part: "P1".into(),
                serial: "0123456789ABCDEF".into(),
                checksum_ok: true,
            }
        );
        assert!(p.link_up && p.link_led && !p.activity_led);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["module"]["state"], "present");
        assert_eq!(json["module"]["vendor"], "ACM");
        assert_eq!(json["link_led"], true);
        let back: PortStatus = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn absent_and_unknown_states() {
        let mut i = info();
        i.sfp = SfpState::Absent as u8;
        let p = PortStatus::decode(&i).unwrap();
        assert_eq!(p.module, ModuleStatus::Absent);
        i.sfp = 9;
        assert!(PortStatus::decode(&i).is_err());
    }
}
