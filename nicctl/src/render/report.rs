//! What `nicctl` prints: device information, counter tables and counter JSON. Kept apart
//! from the binary so that the formats are tested.
use crate::config::{Config, Plan};
use host_driver::bringup::DeviceInfo;
use host_driver::tables::{MacDisplay, Port, RouteTarget, StatsFunction};
use host_driver::trace::{Step, StepError, TraceReport, Undecoded, Verdict};
use shared_regs::regs::Reg;
use shared_regs::stats::{Counter, Counters};
use shared_regs::trace::{DstMacClass, MappedTo, MtuAction, Step as TraceStep, NO_TABLE};
use std::fmt::Write;

/// `nicctl info`.
pub fn info_text(info: &DeviceInfo, heartbeat: u32, registers: &[(Reg, u32)]) -> String {
    let caps = info.cap_names();
    let caps = if caps.is_empty() {
        "none".to_string()
    } else {
        caps.join(" ")
    };
    let rows: [(&str, String); 13] = [
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
        ("remote hosts", info.underlays.to_string()),
        ("gateways", info.gateways.to_string()),
        ("admin queue entries", info.adminq_entries.to_string()),
        ("heartbeat", heartbeat.to_string()),
    ];
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0) + 1;
    let mut out = String::new();
    for (name, value) in rows {
        let _ = writeln!(out, "{:<width$} {value}", format!("{name}:"), width = width);
    }
    out.push_str(&registers_text(registers));
    out
}

/// The PF's registers as `ethtool -d` shows a NIC's: offset, datasheet name, value.
fn registers_text(registers: &[(Reg, u32)]) -> String {
    let width = registers
        .iter()
        .map(|(r, _)| r.name.len())
        .max()
        .unwrap_or(0);
    let mut out = String::from("PF registers:\n");
    for (r, value) in registers {
        let _ = writeln!(
            out,
            "  {:#05x}  {:<width$}  {value:#010x}",
            r.offset, r.name
        );
    }
    out
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

/// "0x0800 (IPv4)".
fn ethertype_text(t: u16) -> String {
    let name = match t {
        0x0800 => " (IPv4)",
        0x0806 => " (ARP)",
        0x86dd => " (IPv6)",
        0x8100 => " (802.1Q)",
        0x88cc => " (LLDP)",
        _ => "",
    };
    format!("{t:#06x}{name}")
}

fn protocol_text(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        n => format!("protocol {n}"),
    }
}

fn on_off(check: bool) -> &'static str {
    if check {
        "check on"
    } else {
        "check off"
    }
}

fn mapped_text(to: MappedTo) -> String {
    match to {
        MappedTo::LocalVf { vf } => format!("vf {vf}"),
        MappedTo::Remote { underlay } => format!("remote host {underlay}"),
        MappedTo::Gateway { underlay } if underlay.is_unspecified() => "gateway".into(),
        MappedTo::Gateway { underlay } => format!("gateway (this host, {underlay})"),
        MappedTo::VniAnchor { vpc } => format!("VNI anchor of vpc {vpc}"),
        MappedTo::Broadcast => "subnet broadcast".into(),
    }
}

/// The name of a DHCP message type (RFC 2132 option 53).
fn dhcp_text(message_type: u8) -> &'static str {
    match message_type {
        1 => "DISCOVER",
        2 => "OFFER",
        3 => "REQUEST",
        4 => "DECLINE",
        5 => "ACK",
        6 => "NAK",
        7 => "RELEASE",
        8 => "INFORM",
        _ => "message",
    }
}

/// The decoded arguments of one step: "10.0.2.20 matches 10.0.0.0/16 -> local".
fn detail_text(detail: &Result<TraceStep, Undecoded>) -> String {
    let step = match detail {
        Ok(step) => *step,
        Err(u) => {
            let [a, b, c, d] = u.args;
            return match u.error {
                StepError::UnknownKind(_) => format!("{a:#x} {b:#x} {c:#x} {d:#x}"),
                StepError::BadArgument(_) => {
                    format!("arguments out of range: {a:#x} {b:#x} {c:#x} {d:#x}")
                }
            };
        }
    };
    match step {
        TraceStep::Received {
            function,
            ethertype,
            len,
        } => format!(
            "on {}: ethertype {}, {len} bytes",
            Port::from_index(function),
            ethertype_text(ethertype)
        ),
        TraceStep::Ethertype { ethertype } => format!("{} accepted", ethertype_text(ethertype)),
        TraceStep::SrcMac { .. } => "is the VF's MAC".into(),
        TraceStep::ArpRequest { sender, target } => format!("who has {target}? tell {sender}"),
        TraceStep::ArpAnswer { target, mac, case } => {
            format!("{target} is at {} (F3{})", MacDisplay(&mac), case.name())
        }
        TraceStep::Ipv4 {
            src,
            dst,
            protocol,
            total_len,
        } => format!(
            "{src} -> {dst}, {}, {total_len} bytes",
            protocol_text(protocol)
        ),
        TraceStep::SrcIp { check, src, .. } => format!("{src} ({})", on_off(check)),
        TraceStep::DstMac { class, .. } => match class {
            DstMacClass::Gateway => "the subnet gateway: route".into(),
            DstMacClass::Instance => "an instance of the same subnet: deliver".into(),
        },
        TraceStep::RouteHit {
            dst,
            prefix,
            len,
            target,
            ..
        } => format!(
            "{dst} matches {prefix}/{len} -> {}",
            RouteTarget::from(target)
        ),
        TraceStep::RouteMiss { dst, .. } => format!("{dst}: no route"),
        TraceStep::MappingHit { vni, ip, to } => format!("vni {vni} {ip} -> {}", mapped_text(to)),
        TraceStep::MappingMiss { vni, ip } => format!("vni {vni} {ip} -> no mapping"),
        TraceStep::DstIp { check, dst, .. } => format!("{dst} ({})", on_off(check)),
        TraceStep::Rewrite { same_subnet, .. } => format!(
            "source MAC = {}",
            if same_subnet {
                "the sender's (same subnet)"
            } else {
                "the receiving subnet's gateway"
            }
        ),
        TraceStep::Gateway {
            ip,
            own_subnet,
            echo,
        } => format!(
            "{ip}, {} gateway, {}",
            if own_subnet {
                "own subnet's"
            } else {
                "another subnet's"
            },
            if echo {
                "echo request"
            } else {
                "not an echo request"
            }
        ),
        TraceStep::Encap {
            underlay,
            vni,
            src_port,
        } => format!("to {underlay}, vni {vni}, UDP source port {src_port}"),
        TraceStep::Decap {
            outer_src,
            vni,
            inner_src,
            inner_dst,
        } => format!("from {outer_src}, vni {vni}: {inner_src} -> {inner_dst}"),
        TraceStep::Mtu { len, mtu, action } => format!(
            "{len} bytes, MTU {mtu}: {}",
            match action {
                MtuAction::Fits => "fits",
                MtuAction::FragNeeded => "too big with DF: ICMP fragmentation needed",
                MtuAction::Fragment => "too big: fragmented",
            }
        ),
        TraceStep::Dhcp {
            request,
            offered,
            reply,
        } => format!(
            "{} (type {request}), address {offered}, answered with {}",
            dhcp_text(request),
            dhcp_text(reply)
        ),
        TraceStep::BcastMcast { dst } => format!("to {dst}"),
    }
}

/// "[route table 1] " or "[vf 2] ": the table entry a step names, if any.
fn table_text(step: &Step) -> String {
    match step.detail {
        Ok(TraceStep::RouteHit { table, .. } | TraceStep::RouteMiss { table, .. }) => {
            format!("[route table {table}] ")
        }
        Ok(
            TraceStep::SrcMac { vf }
            | TraceStep::SrcIp { vf, .. }
            | TraceStep::DstMac { vf: Some(vf), .. }
            | TraceStep::DstIp { vf, .. }
            | TraceStep::Rewrite { vf, .. },
        ) => format!("[vf {vf}] "),
        Err(Undecoded { table_id, .. }) if table_id != NO_TABLE => {
            format!("[entry {table_id}] ")
        }
        _ => String::new(),
    }
}

/// "deliver to vf2", "drop: drop_no_route (counted on vf0)".
pub fn verdict_text(verdict: Verdict) -> String {
    match verdict {
        Verdict::Drop { counter, port } => {
            format!("drop: {} (counted on {port})", counter.name())
        }
        Verdict::ToVf(vf) => format!("deliver to vf{vf}"),
        Verdict::Reply(vf) => format!("reply to vf{vf}"),
        Verdict::ToUplink => "output to uplink".into(),
    }
}

/// A trace as `ovs-appctl ofproto/trace` prints one: a line per step (number, rule, kind,
/// table, decoded arguments), then the datapath action and the frame that would leave.
pub fn trace_text(report: &TraceReport) -> String {
    let kind_width = report
        .steps
        .iter()
        .map(|s| s.kind_name().len())
        .max()
        .unwrap_or(0);
    let num_width = report.steps.len().to_string().len();
    let mut out = String::new();
    for (i, step) in report.steps.iter().enumerate() {
        let line = format!(
            "{:>num_width$}. {:<3} {:<kind_width$}  {}{}",
            i + 1,
            step.rule_name(),
            step.kind_name(),
            table_text(step),
            detail_text(&step.detail),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    if report.truncated {
        let _ = writeln!(
            out,
            "... more steps than the report holds ({})",
            report.steps.len()
        );
    }
    let _ = writeln!(out, "Datapath action: {}", verdict_text(report.verdict));
    let f = &report.frame;
    match f.len() {
        0 => {}
        n if n < 14 => {
            let _ = writeln!(
                out,
                "Output frame: {n} bytes (shorter than an Ethernet header)"
            );
        }
        n => {
            let mac = |at: usize| {
                let mut m = [0u8; 6];
                m.copy_from_slice(&f[at..at + 6]);
                MacDisplay(&m).to_string()
            };
            let _ = writeln!(
                out,
                "Output frame: {} -> {}, ethertype {}, {n} bytes",
                mac(6),
                mac(0),
                ethertype_text(u16::from_be_bytes([f[12], f[13]]))
            );
        }
    }
    out
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `nicctl check`: what a valid file holds.
pub fn check_summary(file: &str, config: &Config) -> String {
    format!(
        "{file}: valid: {}, {}, {}, {}, {} on {}\n",
        plural(config.vpcs.len(), "VPC", "VPCs"),
        plural(config.gateways.len(), "gateway", "gateways"),
        plural(config.route_tables.len(), "route table", "route tables"),
        plural(config.subnets.len(), "subnet", "subnets"),
        plural(config.instances.len(), "instance", "instances"),
        plural(config.hosts.len(), "host", "hosts"),
    )
}

/// `nicctl apply`: the commands made, by opcode, and the VFs assigned.
pub fn apply_summary(device: &str, config: &Config, plan: &Plan) -> String {
    let mut out = format!(
        "Programmed {device} as host {} (underlay {}): {}\n",
        plan.host,
        plan.underlay_ip,
        plural(plan.commands.len(), "command", "commands")
    );
    for (name, n) in plan.counts() {
        let _ = writeln!(out, "  {n:>5} {name}");
    }
    let rows: Vec<[String; 5]> = plan
        .vfs
        .iter()
        .filter_map(|(name, vf)| {
            let inst = &config.instances[config.instance_index(name)?];
            let addrs: Vec<String> = std::iter::once(&inst.ip)
                .chain(&inst.secondary_ips)
                .map(|ip| ip.to_string())
                .collect();
            Some([
                format!("vf{vf}"),
                name.clone(),
                config.subnets[inst.subnet].name.clone(),
                addrs.join(","),
                MacDisplay(&inst.mac).to_string(),
            ])
        })
        .collect();
    if rows.is_empty() {
        out.push_str("No instance of this host: no VF assigned.\n");
        return out;
    }
    let header = ["VF", "instance", "subnet", "addresses", "MAC"].map(String::from);
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// Changes as `diff` and `apply` print them: each host's NIC changes under a "host h1: 3
/// changes" line (left out for a lone host without changes), then the namespaces'.
pub fn changes_text(
    hosts: &[crate::control::HostChanges],
    namespaces: &[crate::control::ChangeLine],
) -> String {
    let count = |n: usize| match n {
        0 => "no change".to_string(),
        1 => "1 change".to_string(),
        n => format!("{n} changes"),
    };
    let mut out = String::new();
    for h in hosts {
        if hosts.len() > 1 || !h.changes.is_empty() {
            out.push_str(&format!("host {}: {}\n", h.host, count(h.changes.len())));
        }
        for c in &h.changes {
            out.push_str(&format!("  {} {}\n", c.op, c.change));
        }
    }
    if !namespaces.is_empty() {
        out.push_str(&format!("namespaces: {}\n", count(namespaces.len())));
        for c in namespaces {
            out.push_str(&format!("  {} {}\n", c.op, c.change));
        }
    }
    out
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
            gateways: 16,
            underlays: 64,
        }
    }

    fn counters(base: u64) -> Counters {
        let mut c = Counters::new_zeroed();
        c.values[Counter::TxPackets as usize] = Le64::new(base);
        c.values[Counter::DropNoRoute as usize] = Le64::new(base * 100_000);
        c
    }

    #[test]
    fn info_names_every_pf_register() {
        let registers: Vec<(Reg, u32)> = shared_regs::pf::REGISTERS
            .iter()
            .map(|r| (*r, r.offset))
            .collect();
        let text = info_text(&info(), 0, &registers);
        for r in shared_regs::pf::REGISTERS {
            let row = format!("  {:#05x}  {}", r.offset, r.name);
            assert!(text.contains(&row), "{} is not named:\n{text}", r.name);
        }
        assert!(text.contains("0x028  CAP_GATEWAYS"), "{text}");
        assert!(!text.contains("unnamed"), "{text}");
    }

    #[test]
    fn info_lists_every_capacity_aligned() {
        let text = info_text(&info(), 77, &[]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 14, "13 rows and the (empty) register heading");
        assert_eq!(lines[0], "device:              fake NIC");
        let abi = format!(
            "ABI version:         1.0 (driver {}.{})",
            shared_regs::ABI_VERSION_MAJOR,
            shared_regs::ABI_VERSION_MINOR
        );
        assert!(text.contains(&abi), "{text}");
        assert!(text.contains("gateways:            16"), "{text}");
        assert!(text.contains("remote hosts:        64"), "{text}");
        assert!(
            text.contains("capabilities:        ARP_PROXY TRACE"),
            "{text}"
        );
        assert!(text.contains("mappings:            4096"), "{text}");
        assert!(text.contains("heartbeat:           77"), "{text}");
        let col = lines[0].find("fake").unwrap();
        assert!(lines[..12]
            .iter()
            .all(|l| l.len() > col && &l[col - 1..col] == " "));
    }

    #[test]
    fn functions_default_to_all_and_reject_missing_vfs() {
        let i = info();
        assert_eq!(
            crate::nics::stats_functions(&i, &[], false).unwrap(),
            [
                StatsFunction::Vf(0),
                StatsFunction::Vf(1),
                StatsFunction::Vf(2),
                StatsFunction::Uplink
            ]
        );
        assert_eq!(
            crate::nics::stats_functions(&i, &[], true).unwrap(),
            [StatsFunction::Uplink]
        );
        assert_eq!(
            crate::nics::stats_functions(&i, &[2, 2], false).unwrap(),
            [StatsFunction::Vf(2)]
        );
        let err = crate::nics::stats_functions(&i, &[3], false)
            .unwrap_err()
            .to_string();
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

    #[test]
    fn trace_reads_like_ofproto_trace() {
        use host_driver::trace::encode_report;
        use shared_regs::entry::RouteTarget;
        use shared_regs::trace::{ArpAnswerCase, TraceVerdict};
        use std::net::Ipv4Addr;
        let ip = Ipv4Addr::new;
        let mut frame = vec![2, 0, 0, 0, 2, 0x14, 2, 0, 0, 0, 0xfe, 1, 8, 0];
        frame.resize(98, 0);
        let bytes = encode_report(
            TraceVerdict::ToVf,
            0xFF,
            2,
            &[
                TraceStep::Received {
                    function: 0,
                    ethertype: 0x0800,
                    len: 98,
                },
                TraceStep::Ethertype { ethertype: 0x0800 },
                TraceStep::SrcMac { vf: 0 },
                TraceStep::Ipv4 {
                    src: ip(10, 0, 1, 10),
                    dst: ip(10, 0, 2, 20),
                    protocol: 1,
                    total_len: 84,
                },
                TraceStep::SrcIp {
                    vf: 0,
                    check: true,
                    src: ip(10, 0, 1, 10),
                },
                TraceStep::DstMac {
                    vf: None,
                    class: DstMacClass::Gateway,
                },
                TraceStep::RouteHit {
                    table: 1,
                    dst: ip(10, 0, 2, 20),
                    prefix: ip(10, 0, 0, 0),
                    len: 16,
                    target: RouteTarget::Local,
                },
                TraceStep::MappingHit {
                    vni: 100,
                    ip: ip(10, 0, 2, 20),
                    to: MappedTo::LocalVf { vf: 2 },
                },
                TraceStep::DstIp {
                    vf: 2,
                    check: true,
                    dst: ip(10, 0, 2, 20),
                },
                TraceStep::Rewrite {
                    vf: 2,
                    same_subnet: false,
                },
            ],
            &frame,
        );
        let report = TraceReport::decode(&bytes).unwrap();
        let text = trace_text(&report);
        let expected = " 1. F1  received              on vf0: ethertype 0x0800 (IPv4), 98 bytes
 2. F1  ethertype             0x0800 (IPv4) accepted
 3. F2  source MAC            [vf 0] is the VF's MAC
 4. F4  IPv4 header           10.0.1.10 -> 10.0.2.20, icmp, 84 bytes
 5. F5  source IP check       [vf 0] 10.0.1.10 (check on)
 6. F7  destination MAC       the subnet gateway: route
 7. F8  route lookup          [route table 1] 10.0.2.20 matches 10.0.0.0/16 -> local
 8. F8  mapping lookup        vni 100 10.0.2.20 -> vf 2
 9. F5  destination IP check  [vf 2] 10.0.2.20 (check on)
10. F12 L2 rewrite            [vf 2] source MAC = the receiving subnet's gateway
Datapath action: deliver to vf2
Output frame: 02:00:00:00:fe:01 -> 02:00:00:00:02:14, ethertype 0x0800 (IPv4), 98 bytes
";
        assert_eq!(text, expected, "\n{text}");

        let bytes = encode_report(
            TraceVerdict::Drop,
            Counter::DropNoRoute as u8,
            0,
            &[
                TraceStep::RouteMiss {
                    table: 3,
                    dst: ip(8, 8, 8, 8),
                },
                TraceStep::RouteHit {
                    table: 3,
                    dst: ip(8, 8, 8, 8),
                    prefix: Ipv4Addr::UNSPECIFIED,
                    len: 0,
                    target: RouteTarget::Gateway(1),
                },
                TraceStep::MappingHit {
                    vni: 7,
                    ip: ip(10, 1, 0, 5),
                    to: MappedTo::Remote {
                        underlay: ip(192, 0, 2, 2),
                    },
                },
                TraceStep::Encap {
                    underlay: ip(192, 0, 2, 2),
                    vni: 7,
                    src_port: 50000,
                },
            ],
            &[],
        );
        let text = trace_text(&TraceReport::decode(&bytes).unwrap());
        let expected = "\
1. F8  route lookup         [route table 3] 8.8.8.8: no route
2. F8  route lookup         [route table 3] 8.8.8.8 matches 0.0.0.0/0 -> gateway 1
3. F8  mapping lookup       vni 7 10.1.0.5 -> remote host 192.0.2.2
4. F14 VXLAN encapsulation  to 192.0.2.2, vni 7, UDP source port 50000
Datapath action: drop: drop_no_route (counted on vf0)
";
        assert_eq!(text, expected, "\n{text}");

        // The places a mapping lookup can end, and steps the driver could not decode.
        let mapped = |ip, to| TraceStep::MappingHit { vni: 100, ip, to };
        let mut bytes = encode_report(
            TraceVerdict::Drop,
            Counter::DropNoMapping as u8,
            0,
            &[
                mapped(
                    ip(10, 0, 2, 1),
                    MappedTo::Gateway {
                        underlay: ip(192, 0, 2, 1),
                    },
                ),
                mapped(
                    ip(10, 0, 2, 1),
                    MappedTo::Gateway {
                        underlay: Ipv4Addr::UNSPECIFIED,
                    },
                ),
                mapped(Ipv4Addr::UNSPECIFIED, MappedTo::VniAnchor { vpc: 0 }),
                mapped(ip(10, 0, 2, 255), MappedTo::Broadcast),
                TraceStep::MappingMiss {
                    vni: 100,
                    ip: ip(10, 0, 2, 99),
                },
                TraceStep::ArpAnswer {
                    target: ip(8, 8, 8, 8),
                    mac: [2, 0, 0, 0, 0xfe, 1],
                    case: ArpAnswerCase::OutsideSubnet,
                },
                TraceStep::Dhcp {
                    request: 1,
                    offered: ip(10, 0, 1, 10),
                    reply: 2,
                },
                TraceStep::Ethertype { ethertype: 0x0800 },
                TraceStep::SrcIp {
                    vf: 0,
                    check: true,
                    src: ip(10, 0, 1, 10),
                },
            ],
            &[],
        );
        let step = |i: usize| 8 + i * 20;
        bytes[step(7) + 1] = 99;
        bytes[step(8) + 4] = 7;
        let text = trace_text(&TraceReport::decode(&bytes).unwrap());
        let expected = "\
1. F8  mapping lookup   vni 100 10.0.2.1 -> gateway (this host, 192.0.2.1)
2. F8  mapping lookup   vni 100 10.0.2.1 -> gateway
3. F8  mapping lookup   vni 100 0.0.0.0 -> VNI anchor of vpc 0
4. F8  mapping lookup   vni 100 10.0.2.255 -> subnet broadcast
5. F8  mapping lookup   vni 100 10.0.2.99 -> no mapping
6. F3  ARP answer       8.8.8.8 is at 02:00:00:00:fe:01 (F3d)
7. F9  DHCP             DISCOVER (type 1), address 10.0.1.10, answered with OFFER
8. F1  step kind 99     0x800 0x0 0x0 0x0
9. F5  source IP check  [entry 0] arguments out of range: 0x7 0xa00010a 0x0 0x0
Datapath action: drop: drop_no_mapping (counted on vf0)
";
        assert_eq!(text, expected, "\n{text}");

        let reply = TraceReport {
            verdict: Verdict::Reply(0),
            steps: vec![],
            truncated: true,
            frame: vec![1; 5],
        };
        assert_eq!(
            trace_text(&reply),
            "... more steps than the report holds (0)\nDatapath action: reply to vf0\n\
             Output frame: 5 bytes (shorter than an Ethernet header)\n"
        );
        assert_eq!(verdict_text(Verdict::ToUplink), "output to uplink");
    }

    #[test]
    fn check_and_apply_summaries() {
        let text = include_str!("../../tests/data/three-tier.toml");
        let config = crate::config::parse(text, &crate::config::Limits::default()).unwrap();
        assert_eq!(
            check_summary("x.toml", &config),
            "x.toml: valid: 2 VPCs, 2 gateways, 3 route tables, 4 subnets, 6 instances on 2 hosts\n"
        );
        let plan = crate::config::plan(&config, "h1").unwrap();
        let out = apply_summary("fake NIC", &config, &plan);
        let expected = "\
Programmed fake NIC as host h1 (underlay 192.0.2.1): 32 commands
      1 UPLINK_SET
      2 VPC_ADD
      2 GATEWAY_ADD
      5 ROUTE_TABLE_ADD
      7 ROUTE_ADD
      4 SUBNET_ADD
      3 VF_SET
      1 VF_ADDR_ADD
      7 MAPPING_ADD
VF   instance  subnet  addresses            MAC
vf0  web1      web     10.0.1.10            02:64:0a:00:01:0a
vf1  app1      app     10.0.2.20,10.0.2.21  02:64:0a:00:02:14
vf2  fw1       app     10.0.2.5             02:00:0a:00:02:05
";
        assert_eq!(out, expected, "\n{out}");
    }
}
