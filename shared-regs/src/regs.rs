//! Register descriptions shared by the PF and VF maps, and the compile-time checks that keep
//! a map honest (aligned, inside its BAR, no two registers at one offset).

/// Who may write a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Written by the device; host writes are ignored.
    ReadOnly,
    /// Written by the host; the device reads it (and may clear self-clearing bits).
    ReadWrite,
    /// Set by the device; the host clears a bit by writing 1 to it.
    WriteOneToClear,
}

/// One 32-bit register of a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reg {
    /// Byte offset from the start of the BAR.
    pub offset: u32,
    /// Datasheet name, as `nicctl` prints it.
    pub name: &'static str,
    /// Value after a function-level reset, before the firmware writes it.
    pub reset: u32,
    /// Who writes it.
    pub access: Access,
}

impl Reg {
    /// A register description; used by the maps in [`crate::pf`] and [`crate::vf`].
    pub const fn new(offset: u32, name: &'static str, reset: u32, access: Access) -> Self {
        Reg {
            offset,
            name,
            reset,
            access,
        }
    }
}

/// Checks a register map at compile time: every register 4-byte aligned, inside a BAR of
/// `bar_size` bytes, and no two registers at the same offset. Used in `const` assertions.
pub const fn map_is_valid(map: &[Reg], bar_size: u32) -> bool {
    let mut i = 0;
    while i < map.len() {
        let r = map[i];
        if !r.offset.is_multiple_of(4) || r.offset + 4 > bar_size {
            return false;
        }
        let mut j = i + 1;
        while j < map.len() {
            if map[j].offset == r.offset {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// The register of `map` at `offset`, if there is one.
pub fn lookup(map: &'static [Reg], offset: u32) -> Option<&'static Reg> {
    map.iter().find(|r| r.offset == offset)
}
