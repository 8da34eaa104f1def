//! `TRACE` reports decoded into Rust types (format: `shared_regs::trace`).
//!
//! The firmware writes a header, the steps the pipeline took and the frame as it would
//! leave. [`TraceReport::decode`] turns those bytes into a [`TraceReport`] whose steps carry
//! their arguments already interpreted ([`Detail`]): addresses as [`Ipv4Addr`], MACs as
//! [`Mac`], route targets and mapping locations as enums. Printing is
//! [`crate::report::trace_text`]'s job.
use crate::tables::{Cidr, Mac, Port};
use shared_regs::entry::{RouteTarget, UPLINK_FUNCTION};
use shared_regs::stats::Counter;
use shared_regs::trace::{StepKind, TraceHeader, TraceStep, TraceVerdict};
use std::net::Ipv4Addr;
use zerocopy::FromBytes;

const HEADER_BYTES: usize = std::mem::size_of::<TraceHeader>();
const STEP_BYTES: usize = std::mem::size_of::<TraceStep>();
/// `table_id` of a step that names no table entry.
const NO_TABLE: u16 = 0xFFFF;

/// What happened to a traced frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Dropped; `counter` would have moved on `port`.
    Drop { counter: Counter, port: Port },
    /// Delivered to a VF.
    ToVf(u16),
    /// Answered by the firmware itself (ARP, DHCP, gateway ping) to a VF.
    Reply(u16),
    /// Sent out of the uplink.
    ToUplink,
}

/// The class of a destination MAC (F7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DstMacClass {
    Gateway,
    SameSubnetInstance,
    Other(u32),
}

/// Where a route sent the packet (F8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteHop {
    /// The VPC CIDR: a mapping lookup follows.
    Local,
    Blackhole,
    Gateway(u16),
    /// Peering to the VPC with this ID.
    Peering(u16),
    /// A middlebox instance by its primary address.
    Instance(Ipv4Addr),
    /// A target kind this driver does not know (raw kind, raw argument).
    Unknown(u8, u32),
}

/// What a mapping lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingHit {
    LocalVf(u16),
    Remote(Ipv4Addr),
    /// A gateway of the VPC; the argument is the one the firmware gave (its underlay IP).
    Gateway(u32),
    /// No mapping.
    None,
    /// A location code this driver does not know (raw code, raw argument).
    Unknown(u32, u32),
}

/// The MTU decision (F13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MtuDecision {
    Fits,
    FragNeeded,
    Fragment,
    Unknown(u32),
}

/// One step's arguments, interpreted by its [`StepKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    Received {
        port: Port,
        ethertype: u16,
        len: u32,
    },
    Ethertype {
        ethertype: u16,
    },
    SrcMac,
    ArpRequest {
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    /// `sub_rule` is F3's letter ('a', 'b', 'd', or '?' for a code this driver does not know).
    ArpAnswer {
        target: Ipv4Addr,
        mac: Mac,
        sub_rule: char,
    },
    Ipv4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        total_len: u32,
    },
    SrcIp {
        check: bool,
        src: Ipv4Addr,
    },
    DstMac {
        class: DstMacClass,
    },
    /// `prefix` is `None` when nothing matched.
    Route {
        dst: Ipv4Addr,
        prefix: Option<Cidr>,
        hop: Option<RouteHop>,
    },
    Mapping {
        vni: u32,
        ip: Ipv4Addr,
        hit: MappingHit,
    },
    DstIp {
        check: bool,
        dst: Ipv4Addr,
    },
    Rewrite {
        src_is_sender: bool,
    },
    Gateway {
        ip: Ipv4Addr,
        own_subnet: bool,
        echo: bool,
    },
    Encap {
        underlay: Ipv4Addr,
        vni: u32,
        sport: u16,
    },
    Decap {
        outer_src: Ipv4Addr,
        vni: u32,
        inner_src: Ipv4Addr,
        inner_dst: Ipv4Addr,
    },
    Mtu {
        len: u32,
        mtu: u32,
        decision: MtuDecision,
    },
    Dhcp {
        msg_type: u8,
        offered: Ipv4Addr,
    },
    BcastMcast {
        dst: Ipv4Addr,
    },
    /// A step kind this driver does not know.
    Unknown {
        kind: u8,
        args: [u32; 4],
    },
}

/// One decision of the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1 ..= 17 for F1 ..= F17; 0 for a step that belongs to no rule.
    pub rule: u8,
    /// The kind, when this driver knows it.
    pub kind: Option<StepKind>,
    /// The table entry the step names (route table, subnet, VF).
    pub table_id: Option<u16>,
    pub detail: Detail,
}

impl Step {
    /// "F8", or "--" for a step outside the numbered rules.
    pub fn rule_name(&self) -> String {
        match self.rule {
            1..=17 => format!("F{}", self.rule),
            _ => "--".to_string(),
        }
    }

    /// The kind's name ("route lookup"), or "step kind 42".
    pub fn kind_name(&self) -> String {
        match (self.kind, self.detail) {
            (Some(k), _) => k.name().to_string(),
            (None, Detail::Unknown { kind, .. }) => format!("step kind {kind}"),
            (None, _) => "step".to_string(),
        }
    }
}

/// A decoded `TRACE` report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceReport {
    pub verdict: Verdict,
    pub steps: Vec<Step>,
    /// More steps happened than the report holds.
    pub truncated: bool,
    /// The frame as it would leave (empty for a drop).
    pub frame: Vec<u8>,
}

fn ip(v: u32) -> Ipv4Addr {
    Ipv4Addr::from(v)
}

fn port(index: u16) -> Port {
    if index == UPLINK_FUNCTION {
        Port::Uplink
    } else {
        Port::Vf(index)
    }
}

fn decode_detail(kind: Option<StepKind>, raw: u8, table_id: u16, [a, b, c, d]: [u32; 4]) -> Detail {
    let Some(kind) = kind else {
        return Detail::Unknown {
            kind: raw,
            args: [a, b, c, d],
        };
    };
    match kind {
        StepKind::Received => Detail::Received {
            port: port(table_id),
            ethertype: a as u16,
            len: b,
        },
        StepKind::Ethertype => Detail::Ethertype {
            ethertype: a as u16,
        },
        StepKind::SrcMac => Detail::SrcMac,
        StepKind::ArpRequest => Detail::ArpRequest {
            sender: ip(a),
            target: ip(b),
        },
        StepKind::ArpAnswer => Detail::ArpAnswer {
            target: ip(a),
            mac: shared_regs::vf::mac_from_regs(b, c),
            sub_rule: match d {
                0 => 'a',
                1 => 'b',
                3 => 'd',
                _ => '?',
            },
        },
        StepKind::Ipv4 => Detail::Ipv4 {
            src: ip(a),
            dst: ip(b),
            protocol: c as u8,
            total_len: d,
        },
        StepKind::SrcIp => Detail::SrcIp {
            check: a != 0,
            src: ip(b),
        },
        StepKind::DstMac => Detail::DstMac {
            class: match a {
                0 => DstMacClass::Gateway,
                1 => DstMacClass::SameSubnetInstance,
                n => DstMacClass::Other(n),
            },
        },
        StepKind::Route => decode_route(a, b, c, d),
        StepKind::Mapping => Detail::Mapping {
            vni: a,
            ip: ip(b),
            hit: match c {
                0 => MappingHit::LocalVf(d as u16),
                1 => MappingHit::Remote(ip(d)),
                2 => MappingHit::Gateway(d),
                0xFF => MappingHit::None,
                n => MappingHit::Unknown(n, d),
            },
        },
        StepKind::DstIp => Detail::DstIp {
            check: a != 0,
            dst: ip(b),
        },
        StepKind::Rewrite => Detail::Rewrite {
            src_is_sender: a != 0,
        },
        StepKind::Gateway => Detail::Gateway {
            ip: ip(a),
            own_subnet: b != 0,
            echo: c != 0,
        },
        StepKind::Encap => Detail::Encap {
            underlay: ip(a),
            vni: b,
            sport: c as u16,
        },
        StepKind::Decap => Detail::Decap {
            outer_src: ip(a),
            vni: b,
            inner_src: ip(c),
            inner_dst: ip(d),
        },
        StepKind::Mtu => Detail::Mtu {
            len: a,
            mtu: b,
            decision: match c {
                0 => MtuDecision::Fits,
                1 => MtuDecision::FragNeeded,
                2 => MtuDecision::Fragment,
                n => MtuDecision::Unknown(n),
            },
        },
        StepKind::Dhcp => Detail::Dhcp {
            msg_type: a as u8,
            offered: ip(b),
        },
        StepKind::BcastMcast => Detail::BcastMcast { dst: ip(a) },
    }
}

/// F8: a = destination, b = matched prefix, c = length | target kind << 8, d = argument.
/// A length above 32 means nothing matched.
fn decode_route(a: u32, b: u32, c: u32, d: u32) -> Detail {
    let len = (c & 0xFF) as u8;
    if len > 32 {
        return Detail::Route {
            dst: ip(a),
            prefix: None,
            hop: None,
        };
    }
    let kind = ((c >> 8) & 0xFF) as u8;
    let hop = match RouteTarget::from_u8(kind) {
        Some(RouteTarget::Local) => RouteHop::Local,
        Some(RouteTarget::Blackhole) => RouteHop::Blackhole,
        Some(RouteTarget::Gateway) => RouteHop::Gateway(d as u16),
        Some(RouteTarget::Peering) => RouteHop::Peering(d as u16),
        Some(RouteTarget::Instance) => RouteHop::Instance(ip(d)),
        None => RouteHop::Unknown(kind, d),
    };
    Detail::Route {
        dst: ip(a),
        prefix: Some((ip(b), len)),
        hop: Some(hop),
    }
}

impl TraceReport {
    /// Decodes the `len` report bytes the firmware wrote. The error says what is
    /// inconsistent (the caller names the command).
    pub fn decode(bytes: &[u8]) -> Result<TraceReport, String> {
        let (head, rest) = TraceHeader::read_from_prefix(bytes).map_err(|_| {
            format!(
                "the report is {} bytes, shorter than its {HEADER_BYTES}-byte header",
                bytes.len()
            )
        })?;
        let steps_len = usize::from(head.step_count) * STEP_BYTES;
        let frame_len = usize::from(head.frame_len.get());
        if rest.len() < steps_len + frame_len {
            return Err(format!(
                "the report is {} bytes but its header announces {} steps and a {frame_len}-byte \
                 frame ({} bytes in all)",
                bytes.len(),
                head.step_count,
                HEADER_BYTES + steps_len + frame_len
            ));
        }
        let steps = rest[..steps_len]
            .chunks_exact(STEP_BYTES)
            .map(|raw| {
                let s = TraceStep::read_from_bytes(raw).expect("chunk is one step");
                let kind = StepKind::from_u8(s.kind);
                let table_id = s.table_id.get();
                let args = [s.a.get(), s.b.get(), s.c.get(), s.d.get()];
                Step {
                    rule: s.rule,
                    kind,
                    table_id: (table_id != NO_TABLE).then_some(table_id),
                    detail: decode_detail(kind, s.kind, table_id, args),
                }
            })
            .collect();
        let frame = rest[steps_len..steps_len + frame_len].to_vec();
        let port_index = head.port.get();
        let verdict = match TraceVerdict::from_u8(head.verdict) {
            Some(TraceVerdict::Drop) => {
                let counter = Counter::ALL
                    .get(usize::from(head.drop_counter))
                    .copied()
                    .ok_or_else(|| {
                        format!(
                            "the report's drop counter {} is not a counter this driver knows",
                            head.drop_counter
                        )
                    })?;
                Verdict::Drop {
                    counter,
                    port: port(port_index),
                }
            }
            Some(TraceVerdict::ToVf) => Verdict::ToVf(port_index),
            Some(TraceVerdict::Reply) => Verdict::Reply(port_index),
            Some(TraceVerdict::ToUplink) => Verdict::ToUplink,
            None => return Err(format!("unknown verdict {} in the report", head.verdict)),
        };
        Ok(TraceReport {
            verdict,
            steps,
            truncated: head.truncated != 0,
            frame,
        })
    }
}

/// Builds report bytes as the firmware lays them out (for tests of the decoder, the
/// printer and the driver; nothing in a driver sends these).
pub fn encode_report(
    verdict: TraceVerdict,
    drop_counter: u8,
    port: u16,
    steps: &[(u8, StepKind, u16, [u32; 4])],
    frame: &[u8],
) -> Vec<u8> {
    use shared_regs::{Le16, Le32};
    use zerocopy::IntoBytes;
    let head = TraceHeader {
        verdict: verdict as u8,
        drop_counter,
        port: Le16::new(port),
        step_count: steps.len() as u8,
        truncated: 0,
        frame_len: Le16::new(frame.len() as u16),
    };
    let mut out = head.as_bytes().to_vec();
    for &(rule, kind, table_id, [a, b, c, d]) in steps {
        let s = TraceStep {
            rule,
            kind: kind as u8,
            table_id: Le16::new(table_id),
            a: Le32::new(a),
            b: Le32::new(b),
            c: Le32::new(c),
            d: Le32::new(d),
        };
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(frame);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
        u32::from(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn steps_verdict_and_frame_are_decoded() {
        let bytes = encode_report(
            TraceVerdict::ToVf,
            0xFF,
            2,
            &[
                (0, StepKind::Received, 0, [0x0800, 98, 0, 0]),
                (
                    8,
                    StepKind::Route,
                    1,
                    [v4(10, 0, 2, 20), v4(10, 0, 0, 0), 16, 0],
                ),
                (
                    8,
                    StepKind::Route,
                    1,
                    [v4(8, 8, 8, 8), 0, (RouteTarget::Gateway as u32) << 8, 3],
                ),
                (
                    3,
                    StepKind::ArpAnswer,
                    NO_TABLE,
                    [v4(10, 0, 1, 1), 0x0000_0002, 0xfe01, 0],
                ),
                (8, StepKind::Mapping, 0xFFFF, [100, v4(10, 0, 2, 20), 0, 2]),
                (
                    8,
                    StepKind::Mapping,
                    0xFFFF,
                    [100, v4(10, 0, 2, 21), 1, v4(192, 0, 2, 2)],
                ),
                (
                    9,
                    StepKind::Mapping,
                    0xFFFF,
                    [100, v4(10, 0, 2, 22), 0xFF, 0],
                ),
                (99, StepKind::Received, 0xFFFF, [0, 0, 0, 0]),
            ],
            &[0xaa; 60],
        );
        let r = TraceReport::decode(&bytes).unwrap();
        assert_eq!(r.verdict, Verdict::ToVf(2));
        assert!(!r.truncated);
        assert_eq!(r.frame, vec![0xaa; 60]);
        assert_eq!(r.steps.len(), 8);
        assert_eq!(
            r.steps[0].detail,
            Detail::Received {
                port: Port::Vf(0),
                ethertype: 0x0800,
                len: 98
            }
        );
        assert_eq!(r.steps[0].rule_name(), "--");
        assert_eq!(r.steps[1].rule_name(), "F8");
        assert_eq!(r.steps[1].kind_name(), "route lookup");
        assert_eq!(r.steps[1].table_id, Some(1));
        assert_eq!(
            r.steps[1].detail,
            Detail::Route {
                dst: Ipv4Addr::new(10, 0, 2, 20),
                prefix: Some((Ipv4Addr::new(10, 0, 0, 0), 16)),
                hop: Some(RouteHop::Local)
            }
        );
        assert!(matches!(
            r.steps[2].detail,
            Detail::Route {
                prefix: Some((Ipv4Addr::UNSPECIFIED, 0)),
                hop: Some(RouteHop::Gateway(3)),
                ..
            }
        ));
        assert_eq!(
            r.steps[3].detail,
            Detail::ArpAnswer {
                target: Ipv4Addr::new(10, 0, 1, 1),
                mac: [2, 0, 0, 0, 1, 0xfe],
                sub_rule: 'a'
            }
        );
        assert_eq!(r.steps[3].table_id, None);
        assert!(matches!(
            r.steps[4].detail,
            Detail::Mapping {
                vni: 100,
                hit: MappingHit::LocalVf(2),
                ..
            }
        ));
        assert!(matches!(
            r.steps[5].detail,
            Detail::Mapping { hit: MappingHit::Remote(ip), .. } if ip == Ipv4Addr::new(192, 0, 2, 2)
        ));
        assert!(matches!(
            r.steps[6].detail,
            Detail::Mapping {
                hit: MappingHit::None,
                ..
            }
        ));
        assert_eq!(
            r.steps[7].detail,
            Detail::Received {
                port: Port::Uplink,
                ethertype: 0,
                len: 0
            }
        );
    }

    #[test]
    fn drops_name_counter_and_port() {
        let bytes = encode_report(
            TraceVerdict::Drop,
            Counter::DropNoRoute as u8,
            UPLINK_FUNCTION,
            &[],
            &[],
        );
        let r = TraceReport::decode(&bytes).unwrap();
        assert_eq!(
            r.verdict,
            Verdict::Drop {
                counter: Counter::DropNoRoute,
                port: Port::Uplink
            }
        );
        assert!(r.frame.is_empty() && r.steps.is_empty());
    }

    #[test]
    fn unknown_kinds_are_kept_raw() {
        let mut bytes = encode_report(
            TraceVerdict::ToUplink,
            0xFF,
            0,
            &[(5, StepKind::Ipv4, 0xFFFF, [1, 2, 3, 4])],
            &[],
        );
        bytes[HEADER_BYTES + 1] = 200;
        let r = TraceReport::decode(&bytes).unwrap();
        assert_eq!(r.steps[0].kind, None);
        assert_eq!(r.steps[0].kind_name(), "step kind 200");
        assert_eq!(
            r.steps[0].detail,
            Detail::Unknown {
                kind: 200,
                args: [1, 2, 3, 4]
            }
        );
    }

    #[test]
    fn inconsistent_reports_are_refused_with_the_reason() {
        assert_eq!(
            TraceReport::decode(&[0; 5]).unwrap_err(),
            "the report is 5 bytes, shorter than its 8-byte header"
        );
        let bytes = encode_report(
            TraceVerdict::ToUplink,
            0xFF,
            0,
            &[(1, StepKind::Ethertype, 0, [0; 4])],
            &[1, 2, 3],
        );
        assert_eq!(
            TraceReport::decode(&bytes[..bytes.len() - 1]).unwrap_err(),
            "the report is 30 bytes but its header announces 1 steps and a 3-byte frame (31 \
             bytes in all)"
        );
        let mut bad = encode_report(TraceVerdict::ToUplink, 0xFF, 0, &[], &[]);
        bad[0] = 9;
        assert_eq!(
            TraceReport::decode(&bad).unwrap_err(),
            "unknown verdict 9 in the report"
        );
        let bad = encode_report(TraceVerdict::Drop, 200, 0, &[], &[]);
        assert!(TraceReport::decode(&bad)
            .unwrap_err()
            .contains("drop counter 200"));
    }
}
