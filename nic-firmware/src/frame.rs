//! Frame buffers of the pipeline batch. Each keeps headroom in front of the frame so that
//! encapsulation prepends its headers in place.

/// Bytes kept free in front of a received frame.
pub const HEADROOM: usize = 64;
/// Largest frame a buffer holds after its headroom: a VF frame plus VXLAN overhead fits,
/// and so does a full-MTU uplink frame.
pub const MAX_FRAME: usize = 9280;
/// Size of one buffer.
pub const BUF_SIZE: usize = HEADROOM + MAX_FRAME;

/// One frame of a batch.
#[derive(Clone, Debug)]
pub struct FrameBuf {
    buf: [u8; BUF_SIZE],
    start: usize,
    len: usize,
    /// The device computed the frame's TCP or UDP checksum for its sender (VF offloads).
    checksummed: bool,
}

impl FrameBuf {
    /// An empty buffer, to fill storage with.
    pub const EMPTY: FrameBuf = FrameBuf {
        buf: [0; BUF_SIZE],
        start: HEADROOM,
        len: 0,
        checksummed: false,
    };

    /// Resets the buffer to hold `len` bytes after the headroom, and returns them to be
    /// filled; `None` when `len` exceeds [`MAX_FRAME`].
    pub fn reset(&mut self, len: usize) -> Option<&mut [u8]> {
        if len > MAX_FRAME {
            return None;
        }
        self.start = HEADROOM;
        self.len = len;
        self.checksummed = false;
        self.buf.get_mut(HEADROOM..HEADROOM.checked_add(len)?)
    }

    /// Loads a copy of `data`; false when it does not fit.
    pub fn load(&mut self, data: &[u8]) -> bool {
        match self.reset(data.len()) {
            Some(dst) => {
                dst.copy_from_slice(data);
                true
            }
            None => false,
        }
    }

    /// The frame.
    pub fn data(&self) -> &[u8] {
        let end = self.start.saturating_add(self.len);
        self.buf.get(self.start..end).unwrap_or(&[])
    }

    /// The frame, to change in place.
    pub fn data_mut(&mut self) -> &mut [u8] {
        let end = self.start.saturating_add(self.len);
        self.buf.get_mut(self.start..end).unwrap_or(&mut [])
    }

    /// True when the device computed the frame's TCP or UDP checksum itself (the sender
    /// asked for it), so a receiving VF may be told it is right.
    pub fn checksummed(&self) -> bool {
        self.checksummed
    }

    /// Records that the device computed the frame's TCP or UDP checksum.
    pub fn set_checksummed(&mut self, done: bool) {
        self.checksummed = done;
    }

    /// Frame length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Shortens the frame to `len` bytes (no-op if longer than now).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Grows the frame to `len` bytes, zero-filling; false if it would not fit.
    pub fn extend_to(&mut self, len: usize) -> bool {
        let Some(end) = self.start.checked_add(len) else {
            return false;
        };
        if end > BUF_SIZE {
            return false;
        }
        let old_end = self.start.saturating_add(self.len);
        if let Some(tail) = self.buf.get_mut(old_end..end) {
            tail.fill(0);
        }
        self.len = self.len.max(len);
        true
    }

    /// Drops the first `n` bytes of the frame (decapsulation); false if it is shorter.
    pub fn pop_front(&mut self, n: usize) -> bool {
        match (self.start.checked_add(n), self.len.checked_sub(n)) {
            (Some(start), Some(len)) => {
                self.start = start;
                self.len = len;
                true
            }
            _ => false,
        }
    }

    /// Opens `n` bytes in front of the frame (from the headroom) and returns them.
    pub fn push_front(&mut self, n: usize) -> Option<&mut [u8]> {
        let start = self.start.checked_sub(n)?;
        self.start = start;
        self.len = self.len.checked_add(n)?;
        self.buf.get_mut(start..start.checked_add(n)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Rng;

    /// Every method against a plain vector with the headroom left counted beside it.
    #[test]
    fn a_frame_buffer_behaves_as_a_vector_with_headroom() {
        let mut rng = Rng(11);
        let mut frame = FrameBuf::EMPTY;
        let mut model: std::vec::Vec<u8> = std::vec::Vec::new();
        let mut headroom = HEADROOM;
        for step in 0..200_000 {
            let n = match rng.below(3) {
                0 => rng.below(8) as usize,
                1 => rng.below(100) as usize,
                _ => rng.below(BUF_SIZE as u64 + 10) as usize,
            };
            match rng.below(6) {
                0 => {
                    let data: std::vec::Vec<u8> = (0..n).map(|_| rng.next_u32() as u8).collect();
                    let fits = n <= MAX_FRAME;
                    assert_eq!(frame.load(&data), fits, "{step}");
                    if fits {
                        model = data;
                        headroom = HEADROOM;
                    }
                }
                1 => {
                    frame.truncate(n);
                    model.truncate(n);
                }
                2 => {
                    let fits = headroom + n <= BUF_SIZE;
                    assert_eq!(frame.extend_to(n), fits, "{step}");
                    if fits && n > model.len() {
                        model.resize(n, 0);
                    }
                }
                3 => {
                    let ok = n <= model.len();
                    assert_eq!(frame.pop_front(n), ok, "{step}");
                    if ok {
                        model.drain(..n);
                        headroom += n;
                    }
                }
                4 => match frame.push_front(n) {
                    Some(front) => {
                        assert!(n <= headroom, "{step}");
                        assert_eq!(front.len(), n);
                        let fill = rng.next_u32() as u8;
                        front.fill(fill);
                        model.splice(..0, std::iter::repeat_n(fill, n));
                        headroom -= n;
                    }
                    None => assert!(n > headroom, "{step}"),
                },
                _ => {
                    if let Some(b) = frame.data_mut().first_mut() {
                        *b = step as u8;
                    }
                    if let Some(b) = model.first_mut() {
                        *b = step as u8;
                    }
                }
            }
            assert_eq!(frame.data(), &model[..], "{step}");
            assert_eq!(frame.len(), model.len(), "{step}");
            assert_eq!(frame.is_empty(), model.is_empty(), "{step}");
        }
    }
}
