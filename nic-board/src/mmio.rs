//! Bounds-checked volatile access to an MMIO block.
use core::ptr::NonNull;
use volatile::VolatilePtr;

/// A block of 32-bit registers and buffers at a fixed address. Every access is volatile
/// and checked against the block's size; an access outside it reads 0 and writes nothing.
pub struct Mmio {
    base: NonNull<u32>,
    size: usize,
}

impl Mmio {
    /// The block of `size` bytes at `base`.
    ///
    /// # Safety
    /// `base .. base + size` must be device registers or memory, `base` 4-byte aligned,
    /// valid for as long as this `Mmio` lives. Several `Mmio` may cover one block when
    /// each touches only its own registers (the board's drivers split it that way).
    pub const unsafe fn new(base: NonNull<u32>, size: usize) -> Mmio {
        Mmio { base, size }
    }

    fn reg(&self, offset: usize) -> Option<VolatilePtr<'_, u32>> {
        let end = offset.checked_add(4)?;
        if end > self.size || offset & 3 != 0 {
            return None;
        }
        // SAFETY: `offset` is word-aligned and inside the block that `new` was promised.
        unsafe {
            let p = self.base.as_ptr().byte_add(offset);
            Some(VolatilePtr::new(NonNull::new_unchecked(p)))
        }
    }

    /// Reads the register at `offset` (0 outside the block).
    pub fn read(&self, offset: usize) -> u32 {
        self.reg(offset).map_or(0, |r| r.read())
    }

    /// Writes the register at `offset` (nothing outside the block).
    pub fn write(&mut self, offset: usize, value: u32) {
        if let Some(r) = self.reg(offset) {
            r.write(value);
        }
    }

    /// Copies `buf.len()` bytes out of the buffer at `offset`, word by word.
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        let mut at = offset;
        for chunk in buf.chunks_mut(4) {
            let word = self.read(at).to_le_bytes();
            for (dst, src) in chunk.iter_mut().zip(word) {
                *dst = src;
            }
            at = at.saturating_add(4);
        }
    }

    /// Copies `data` into the buffer at `offset`, word by word (the last word's spare bytes
    /// are written as 0).
    pub fn write_bytes(&mut self, offset: usize, data: &[u8]) {
        let mut at = offset;
        for chunk in data.chunks(4) {
            let mut word = [0u8; 4];
            for (dst, src) in word.iter_mut().zip(chunk) {
                *dst = *src;
            }
            self.write(at, u32::from_le_bytes(word));
            at = at.saturating_add(4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_through_words_and_stay_in_bounds() {
        let mut mem = [0u32; 4];
        // SAFETY: `mem` is 16 bytes of word-aligned memory that outlives `m` and is reached
        // only through it.
        let mut m = unsafe { Mmio::new(NonNull::new(mem.as_mut_ptr()).unwrap(), 16) };
        m.write_bytes(2 * 4, &[1, 2, 3, 4, 5]);
        let mut back = [0u8; 5];
        m.read_bytes(8, &mut back);
        assert_eq!(back, [1, 2, 3, 4, 5]);
        m.write(16, 7);
        m.write(3, 7);
        assert_eq!(m.read(16), 0);
        assert_eq!(mem, [0, 0, u32::from_le_bytes([1, 2, 3, 4]), 5]);
    }
}
