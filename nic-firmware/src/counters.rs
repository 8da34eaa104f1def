//! Per-function counters (F17): one block per VF and one for the uplink.
use shared_regs::stats::{Counter, COUNTER_COUNT};

/// One function's counters, in [`Counter`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CounterBlock {
    values: [u64; COUNTER_COUNT],
}

impl CounterBlock {
    /// All zero.
    pub const ZERO: CounterBlock = CounterBlock {
        values: [0; COUNTER_COUNT],
    };

    /// Adds `n` to one counter (wrapping, as hardware counters do).
    pub fn add(&mut self, c: Counter, n: u64) {
        if let Some(v) = self.values.get_mut(c as usize) {
            *v = v.wrapping_add(n);
        }
    }

    /// Adds one to a counter.
    pub fn bump(&mut self, c: Counter) {
        self.add(c, 1);
    }

    /// One counter's value.
    pub fn get(&self, c: Counter) -> u64 {
        self.values.get(c as usize).copied().unwrap_or(0)
    }

    /// The block as `GET_STATS` writes it.
    pub fn to_wire(&self) -> shared_regs::stats::Counters {
        shared_regs::stats::Counters {
            values: self.values.map(shared_regs::Le64::new),
        }
    }
}
