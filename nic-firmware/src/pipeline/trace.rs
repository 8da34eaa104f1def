//! Tracing hooks. The pipeline reports each decision to a [`Tracer`]; the forwarding path
//! passes [`NoTrace`], whose calls compile to nothing, and `TRACE` passes a [`Recorder`].
use shared_regs::trace::{StepKind, TraceStep, MAX_STEPS};
use shared_regs::{Le16, Le32};

/// One decision, before encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1 ..= 17 for F1 ..= F17.
    pub rule: u8,
    pub kind: StepKind,
    /// Table entry ID, or 0xFFFF.
    pub table_id: u16,
    pub args: [u32; 4],
}

impl Step {
    /// A step with no table entry.
    pub const fn new(rule: u8, kind: StepKind, args: [u32; 4]) -> Step {
        Step {
            rule,
            kind,
            table_id: 0xFFFF,
            args,
        }
    }

    /// The same step naming table entry `id`.
    pub const fn at(mut self, id: u16) -> Step {
        self.table_id = id;
        self
    }
}

/// Receives the pipeline's decisions.
pub trait Tracer {
    /// Records one decision.
    fn step(&mut self, step: Step);
}

/// The forwarding path's tracer: records nothing.
pub struct NoTrace;

impl Tracer for NoTrace {
    #[inline(always)]
    fn step(&mut self, _: Step) {}
}

/// Records up to [`MAX_STEPS`] decisions in report form.
pub struct Recorder {
    steps: [TraceStep; MAX_STEPS],
    count: usize,
    truncated: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            steps: [TraceStep::default(); MAX_STEPS],
            count: 0,
            truncated: false,
        }
    }
}

impl Recorder {
    /// The steps recorded, in order.
    pub fn steps(&self) -> &[TraceStep] {
        self.steps.get(..self.count).unwrap_or(&[])
    }

    /// True when steps were lost for lack of room.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl Tracer for Recorder {
    fn step(&mut self, s: Step) {
        let Some(slot) = self.steps.get_mut(self.count) else {
            self.truncated = true;
            return;
        };
        *slot = TraceStep {
            rule: s.rule,
            kind: s.kind as u8,
            table_id: Le16::new(s.table_id),
            a: Le32::new(s.args[0]),
            b: Le32::new(s.args[1]),
            c: Le32::new(s.args[2]),
            d: Le32::new(s.args[3]),
        };
        self.count = self.count.saturating_add(1);
    }
}

/// A MAC as two trace arguments: bytes 0-3 and 4-5.
pub fn mac_args(mac: [u8; 6]) -> (u32, u32) {
    shared_regs::vf::mac_to_regs(mac)
}
