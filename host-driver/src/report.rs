//! What `nicctl` prints: device information, counter tables and counter JSON. Kept apart
//! from the binary so that the formats are tested.
use crate::bringup::DeviceInfo;
use crate::error::{DriverError, Result};
use crate::tables::StatsFunction;
use shared_regs::stats::{Counter, Counters};
use std::fmt::Write;

/// `nicctl info`.
pub fn info_text(info: &DeviceInfo, heartbeat: u32) -> String {
    let caps = info.cap_names();
    let caps = if caps.is_empty() {
        "none".to_string()
    } else {
        caps.join(" ")
    };
    let rows: [(&str, String); 11] = [
        ("device", info.device.clone()),
        (
            "ABI version",
            format!(
                "{}.{} (driver {}.{})",
                info.abi_major,
                info.abi_minor,
                shared_regs::ABI_VERSION_MAJOR,
                shared_regs::ABI_VERSION_MINOR
            ),
        ),
        ("capabilities", caps),
        ("VFs", info.num_vfs.to_string()),
        ("VPCs", info.vpcs.to_string()),
        ("subnets", info.subnets.to_string()),
        ("route tables", info.route_tables.to_string()),
        ("routes per table", info.routes_per_table.to_string()),
        ("mappings", info.mappings.to_string()),
        ("admin queue entries", info.adminq_entries.to_string()),
        ("heartbeat", heartbeat.to_string()),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "{:<width$} {value}", format!("{name}:"), width = width);
    }
    out
}

/// The functions `nicctl stats` reports: the VFs asked for and/or the uplink, or every VF
/// and the uplink when nothing was asked. A VF the device does not have is an error.
pub fn stats_functions(info: &DeviceInfo, vfs: &[u16], uplink: bool) -> Result<Vec<StatsFunction>> {
    let mut out = Vec::new();
    if vfs.is_empty() && !uplink {
        out.extend((0..info.num_vfs.min(u32::from(u16::MAX))).map(|n| StatsFunction::Vf(n as u16)));
        out.push(StatsFunction::Uplink);
        return Ok(out);
    }
    for &vf in vfs {
        if u32::from(vf) >= info.num_vfs {
            return Err(DriverError::InvalidArgument(match info.num_vfs {
                0 => format!("there is no vf{vf}: {} has no VFs", info.device),
                n => format!(
                    "there is no vf{vf}: {} has {n} VFs (vf0..vf{})",
                    info.device,
                    n - 1
                ),
            }));
        }
        if !out.contains(&StatsFunction::Vf(vf)) {
            out.push(StatsFunction::Vf(vf));
        }
    }
    if uplink {
        out.push(StatsFunction::Uplink);
    }
    Ok(out)
}

/// Every counter, one row each, one right-aligned column per function.
pub fn stats_table(columns: &[(StatsFunction, Counters)]) -> String {
    let name_width = Counter::ALL
        .iter()
        .map(|c| c.name().len())
        .max()
        .unwrap_or(0)
        .max("counter".len());
    let headers: Vec<String> = columns.iter().map(|(f, _)| f.to_string()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .zip(&headers)
        .map(|((_, c), h)| {
            Counter::ALL
                .iter()
                .map(|&k| c.get(k).to_string().len())
                .max()
                .unwrap_or(1)
                .max(h.len())
        })
        .collect();
    let mut out = format!("{:<name_width$}", "counter");
    for (h, w) in headers.iter().zip(&widths) {
        let _ = write!(out, "  {h:>w$}");
    }
    out.push('\n');
    for &k in Counter::ALL {
        let _ = write!(out, "{:<name_width$}", k.name());
        for ((_, c), w) in columns.iter().zip(&widths) {
            let _ = write!(out, "  {:>w$}", c.get(k));
        }
        out.push('\n');
    }
    out
}

/// `{"vf0": {"tx_packets": 1, ...}, "uplink": {...}}`.
pub fn stats_json(columns: &[(StatsFunction, Counters)]) -> serde_json::Value {
    let mut obj = serde_json::Map::new();
    for (f, c) in columns {
        let counters: serde_json::Map<String, serde_json::Value> = Counter::ALL
            .iter()
            .map(|&k| (k.name().to_string(), c.get(k).into()))
            .collect();
        obj.insert(f.to_string(), counters.into());
    }
    obj.into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_regs::pf::Caps;
    use shared_regs::stats::COUNTER_COUNT;
    use shared_regs::Le64;
    use zerocopy::FromZeros;

    fn info() -> DeviceInfo {
        DeviceInfo {
            device: "fake NIC".into(),
            abi_major: 1,
            abi_minor: 0,
            caps: Caps::ARP_PROXY | Caps::TRACE,
            num_vfs: 3,
            vpcs: 16,
            subnets: 64,
            route_tables: 32,
            routes_per_table: 50,
            mappings: 4096,
            adminq_entries: 256,
        }
    }

    fn counters(base: u64) -> Counters {
        let mut c = Counters::new_zeroed();
        c.values[Counter::TxPackets as usize] = Le64::new(base);
        c.values[Counter::DropNoRoute as usize] = Le64::new(base * 100_000);
        c
    }

    #[test]
    fn info_lists_every_capacity_aligned() {
        let text = info_text(&info(), 77);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "device:              fake NIC");
        assert!(
            text.contains("ABI version:         1.0 (driver 1.0)"),
            "{text}"
        );
        assert!(
            text.contains("capabilities:        ARP_PROXY TRACE"),
            "{text}"
        );
        assert!(text.contains("mappings:            4096"), "{text}");
        assert!(text.contains("heartbeat:           77"), "{text}");
        let col = lines[0].find("fake").unwrap();
        assert!(lines
            .iter()
            .all(|l| l.len() > col && &l[col - 1..col] == " "));
    }

    #[test]
    fn functions_default_to_all_and_reject_missing_vfs() {
        let i = info();
        assert_eq!(
            stats_functions(&i, &[], false).unwrap(),
            [
                StatsFunction::Vf(0),
                StatsFunction::Vf(1),
                StatsFunction::Vf(2),
                StatsFunction::Uplink
            ]
        );
        assert_eq!(
            stats_functions(&i, &[], true).unwrap(),
            [StatsFunction::Uplink]
        );
        assert_eq!(
            stats_functions(&i, &[2, 2], false).unwrap(),
            [StatsFunction::Vf(2)]
        );
        let err = stats_functions(&i, &[3], false).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid argument: there is no vf3: fake NIC has 3 VFs (vf0..vf2)"
        );
    }

    #[test]
    fn table_has_every_counter_and_aligned_columns() {
        let t = stats_table(&[
            (StatsFunction::Vf(0), counters(1)),
            (StatsFunction::Uplink, counters(12)),
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), COUNTER_COUNT + 1);
        assert!(
            lines[0].starts_with("counter") && lines[0].ends_with("uplink"),
            "{t}"
        );
        assert!(lines.iter().all(|l| l.len() == lines[0].len()), "{t}");
        let row = lines
            .iter()
            .find(|l| l.starts_with("drop_no_route"))
            .unwrap();
        let fields: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(fields, ["drop_no_route", "100000", "1200000"]);
        assert!(lines.iter().any(|l| l.starts_with("drop_unsupported")));
    }

    #[test]
    fn json_is_function_then_counter() {
        let v = stats_json(&[
            (StatsFunction::Vf(1), counters(5)),
            (StatsFunction::Uplink, counters(0)),
        ]);
        assert_eq!(v["vf1"]["tx_packets"], 5);
        assert_eq!(v["vf1"]["drop_no_route"], 500_000);
        assert_eq!(v["uplink"]["rx_bytes"], 0);
        assert_eq!(v["vf1"].as_object().unwrap().len(), COUNTER_COUNT);
    }
}
