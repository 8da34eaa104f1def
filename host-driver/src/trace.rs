//! `TRACE` reports decoded into Rust types (format: `shared_regs::trace`).
//!
//! The firmware writes a header, the steps the pipeline took and the frame as it would
//! leave. [`TraceReport::decode`] turns those bytes into a [`TraceReport`] whose steps are
//! the contract's typed [`shared_regs::trace::Step`]s, decoded by the code the firmware
//! encodes them with. Printing is [`crate::report::trace_text`]'s job.
use crate::tables::Port;
use shared_regs::stats::Counter;
pub use shared_regs::trace::StepError;
use shared_regs::trace::{StepKind, TraceHeader, TraceStep, TraceVerdict};
use zerocopy::FromBytes;

const HEADER_BYTES: usize = std::mem::size_of::<TraceHeader>();
const STEP_BYTES: usize = std::mem::size_of::<TraceStep>();

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

/// One decision of the pipeline, as the report gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The rule the firmware named: 1 ..= 17 for F1 ..= F17.
    pub rule: u8,
    /// The step typed by the contract, or what this driver could not decode.
    pub detail: Result<shared_regs::trace::Step, Undecoded>,
}

/// A step record this driver cannot decode: a kind it does not know (a newer firmware) or
/// arguments out of their range, kept raw so that a trace still shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Undecoded {
    pub error: StepError,
    pub kind: u8,
    pub table_id: u16,
    pub args: [u32; 4],
}

impl Step {
    /// The step of a record.
    pub fn decode(raw: &TraceStep) -> Step {
        Step {
            rule: raw.rule,
            detail: shared_regs::trace::Step::decode(raw).map_err(|error| Undecoded {
                error,
                kind: raw.kind,
                table_id: raw.table_id.get(),
                args: [raw.a.get(), raw.b.get(), raw.c.get(), raw.d.get()],
            }),
        }
    }

    /// "F8", or "--" for a rule number outside F1 ..= F17.
    pub fn rule_name(&self) -> String {
        match self.rule {
            1..=17 => format!("F{}", self.rule),
            _ => "--".to_string(),
        }
    }

    /// The kind's name ("route lookup"), or "step kind 42" for a kind this driver does not
    /// know.
    pub fn kind_name(&self) -> String {
        match &self.detail {
            Ok(step) => step.kind().name().to_string(),
            Err(u) => StepKind::from_u8(u.kind)
                .map(|k| k.name().to_string())
                .unwrap_or_else(|| format!("step kind {}", u.kind)),
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
        let steps = <[TraceStep]>::ref_from_bytes(&rest[..steps_len])
            .map_err(|_| "the steps do not fill whole records".to_string())?
            .iter()
            .map(Step::decode)
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
                    port: Port::from_index(port_index),
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
    steps: &[shared_regs::trace::Step],
    frame: &[u8],
) -> Vec<u8> {
    use shared_regs::Le16;
    use zerocopy::IntoBytes;
    let head = TraceHeader {
        verdict: verdict.as_u8(),
        drop_counter,
        port: Le16::new(port),
        step_count: steps.len() as u8,
        truncated: 0,
        frame_len: Le16::new(frame.len() as u16),
    };
    let mut out = head.as_bytes().to_vec();
    for s in steps {
        out.extend_from_slice(s.encode().as_bytes());
    }
    out.extend_from_slice(frame);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared_regs::entry::RouteTarget;
    use shared_regs::entry::UPLINK_FUNCTION;
    use shared_regs::trace::{MappedTo, MtuAction, Step as S};
    use shared_regs::Le32;
    use std::net::Ipv4Addr;

    #[test]
    fn steps_verdict_and_frame_are_decoded() {
        let steps = [
            S::Received {
                function: 0,
                ethertype: 0x0800,
                len: 98,
            },
            S::RouteHit {
                table: 1,
                dst: Ipv4Addr::new(8, 8, 8, 8),
                prefix: Ipv4Addr::UNSPECIFIED,
                len: 0,
                target: RouteTarget::Gateway(3),
            },
            S::MappingHit {
                vni: 100,
                ip: Ipv4Addr::UNSPECIFIED,
                to: MappedTo::VniAnchor { vpc: 2 },
            },
            S::MappingHit {
                vni: 100,
                ip: Ipv4Addr::new(10, 0, 2, 255),
                to: MappedTo::Broadcast,
            },
            S::MappingMiss {
                vni: 100,
                ip: Ipv4Addr::new(10, 0, 2, 22),
            },
            S::Received {
                function: UPLINK_FUNCTION,
                ethertype: 0,
                len: 0,
            },
        ];
        let bytes = encode_report(TraceVerdict::ToVf, 0xFF, 2, &steps, &[0xaa; 60]);
        let r = TraceReport::decode(&bytes).unwrap();
        assert_eq!(r.verdict, Verdict::ToVf(2));
        assert!(!r.truncated);
        assert_eq!(r.frame, vec![0xaa; 60]);
        let decoded: Vec<_> = r.steps.iter().map(|s| s.detail).collect();
        assert_eq!(decoded, steps.map(Ok));
        assert_eq!(r.steps[0].rule_name(), "F1");
        assert_eq!(r.steps[1].rule_name(), "F8");
        assert_eq!(r.steps[1].kind_name(), "route lookup");
        assert_eq!(r.steps[5].rule_name(), "F15");
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
    fn steps_this_driver_cannot_decode_are_kept_raw() {
        let ipv4 = S::Ipv4 {
            src: Ipv4Addr::from(1),
            dst: Ipv4Addr::from(2),
            protocol: 3,
            total_len: 4,
        };
        let mut bytes = encode_report(TraceVerdict::ToUplink, 0xFF, 0, &[ipv4], &[]);
        bytes[HEADER_BYTES + 1] = 200;
        let r = TraceReport::decode(&bytes).unwrap();
        assert_eq!(r.steps[0].kind_name(), "step kind 200");
        assert_eq!(
            r.steps[0].detail,
            Err(Undecoded {
                error: StepError::UnknownKind(200),
                kind: 200,
                table_id: shared_regs::trace::NO_TABLE,
                args: [1, 2, 3, 4]
            })
        );

        let mtu = S::Mtu {
            len: 1600,
            mtu: 1500,
            action: MtuAction::Fragment,
        };
        let mut raw = mtu.encode();
        raw.c = Le32::new(9);
        let step = Step::decode(&raw);
        assert_eq!(step.kind_name(), "MTU");
        assert_eq!(
            step.detail.map_err(|u| u.error),
            Err(StepError::BadArgument(StepKind::Mtu))
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
            &[S::Ethertype { ethertype: 0 }],
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
