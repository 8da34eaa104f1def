//! `nicctl port`: the uplink port as text.
use host_driver::port::{ModuleStatus, PortStatus};

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// `nicctl port`'s text.
pub fn port_text(p: &PortStatus) -> String {
    let mut out = String::new();
    match &p.module {
        ModuleStatus::Present {
            identifier,
            kind,
            vendor,
            part,
            serial,
            checksum_ok,
        } => {
            out.push_str(&format!(
                "module:      {kind} (identifier {identifier:#04x})\n"
            ));
            out.push_str(&format!("vendor:      {vendor}\n"));
            out.push_str(&format!("part:        {part}\n"));
            out.push_str(&format!("serial:      {serial}\n"));
            out.push_str(&format!(
                "checksum:    {}\n",
                if *checksum_ok { "ok" } else { "BAD" }
            ));
        }
        ModuleStatus::Absent => out.push_str("module:      absent (the SFP cage is empty)\n"),
        ModuleStatus::BusError => out.push_str("module:      unreadable (I2C bus error)\n"),
    }
    out.push_str(&format!(
        "link:        {}\n",
        if p.link_up { "up" } else { "down" }
    ));
    out.push_str(&format!(
        "LEDs:        link {}, activity {}\n",
        on_off(p.link_led),
        on_off(p.activity_led)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_present_module_prints_every_field() {
        let p = PortStatus {
            module: ModuleStatus::Present {
                identifier: 3,
                kind: "SFP/SFP+/SFP28".into(),
                vendor: "ACM".into(),
                part: "P1".into(),
                serial: "0123456789ABCDEF".into(),
                checksum_ok: true,
            },
            link_up: true,
            link_led: true,
            activity_led: false,
        };
        assert_eq!(
            port_text(&p),
            "module:      SFP/SFP+/SFP28 (identifier 0x03)\n\
             vendor:      ACM\n\
             part:        P1\n\
             serial:      0123456789ABCDEF\n\
             checksum:    ok\n\
             link:        up\n\
             LEDs:        link on, activity off\n"
        );
        let absent = PortStatus {
            module: ModuleStatus::Absent,
            ..p
        };
        assert!(port_text(&absent).starts_with("module:      absent"));
    }
}
