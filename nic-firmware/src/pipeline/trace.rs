//! Tracing hooks. The pipeline reports each decision to a [`Tracer`] as the contract's typed
//! [`Step`]; the forwarding path passes [`NoTrace`], whose calls compile to nothing, and
//! `TRACE` passes a [`Recorder`].
pub use shared_regs::trace::Step;
use shared_regs::trace::{TraceStep, MAX_STEPS};

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
        *slot = s.encode();
        self.count = self.count.saturating_add(1);
    }
}
