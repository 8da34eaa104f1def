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
    /// What it holds, as the datasheet says.
    pub doc: &'static str,
}

/// Declares a register map once: an offset constant per register (documented with the
/// register's text) and the `&[Reg]` list of them all, checked at compile time by
/// [`map_is_valid`]. A register is only written here, so none can be left out of the list.
/// The list's documentation is the datasheet table.
///
/// ```text
/// register_map! {
///     /// Every register of the map.
///     pub REGISTERS, BAR BAR0_SIZE {
///         0x000 ID: RO = crate::DEVICE_ID_MAGIC, "the device ID";
///     }
/// }
/// ```
/// Access is `RO`, `RW` or `RW1C` (see [`Access`]); after `=` comes the reset value.
macro_rules! register_map {
    (
        $(#[$meta:meta])*
        $vis:vis $list:ident, BAR $bar:expr => {
            $($offset:literal $name:ident: $access:ident = $reset:expr, $doc:literal;)+
        }
    ) => {
        $(
            #[doc = $doc]
            pub const $name: u32 = $offset;
        )+

        $(#[$meta])*
        ///
        /// | offset | name | access | reset | meaning |
        /// | --- | --- | --- | --- | --- |
        #[doc = concat!($(
            "| ", stringify!($offset), " | `", stringify!($name), "` | ", stringify!($access),
            " | `", stringify!($reset), "` | ", $doc, " |\n",
        )+)]
        $vis const $list: &[$crate::regs::Reg] = &[$(
            $crate::regs::Reg {
                offset: $name,
                name: stringify!($name),
                reset: $reset,
                access: $crate::regs::register_map!(@access $access),
                doc: $doc,
            },
        )+];

        const _: () = assert!($crate::regs::map_is_valid($list, $bar));
    };
    (@access RO) => { $crate::regs::Access::ReadOnly };
    (@access RW) => { $crate::regs::Access::ReadWrite };
    (@access RW1C) => { $crate::regs::Access::WriteOneToClear };
}

pub(crate) use register_map;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{pf, vf};

    /// The `pub const NAME: u32` names a module's source declares outside its register map.
    fn u32_consts_outside_the_map(src: &str) -> impl Iterator<Item = &str> {
        src.lines().filter_map(|l| {
            let rest = l.trim().strip_prefix("pub const ")?;
            let (name, ty) = rest.split_once(':')?;
            let constant = name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            (constant && ty.trim_start().starts_with("u32")).then_some(name)
        })
    }

    #[test]
    fn every_offset_of_a_module_is_in_its_register_list() {
        let maps: [(&str, &[Reg], &[&str]); 2] = [
            (
                include_str!("pf.rs"),
                pf::REGISTERS,
                &["BAR0_SIZE", "IRQ_VECTOR"],
            ),
            (
                include_str!("vf.rs"),
                vf::REGISTERS,
                &["BAR0_SIZE", "MAX_RING_SIZE", "IRQ_VECTOR"],
            ),
        ];
        for (src, map, not_registers) in maps {
            for name in u32_consts_outside_the_map(src) {
                assert!(
                    not_registers.contains(&name),
                    "{name} is declared outside register_map!, so no register list names it"
                );
            }
            for r in map {
                assert_eq!(lookup(map, r.offset).map(|l| l.name), Some(r.name));
                assert!(!r.doc.is_empty(), "{} has no text", r.name);
            }
        }
    }

    #[test]
    fn every_pf_register_is_named() {
        let named = |offset| lookup(pf::REGISTERS, offset).map(|r| r.name);
        assert_eq!(named(pf::CAP_GATEWAYS), Some("CAP_GATEWAYS"));
        assert_eq!(named(pf::CAP_UNDERLAYS), Some("CAP_UNDERLAYS"));
        assert_eq!(named(pf::ID), Some("ID"));
        assert_eq!(named(pf::INTR_MASK), Some("INTR_MASK"));
        assert_eq!(pf::REGISTERS.len(), 22);
        assert_eq!(vf::REGISTERS.len(), 20);
        assert_eq!(
            lookup(vf::REGISTERS, vf::OFFLOADS).map(|r| r.name),
            Some("OFFLOADS")
        );
        assert_eq!(
            lookup(vf::REGISTERS, vf::STATUS).map(|r| (r.name, r.access)),
            Some(("STATUS", Access::ReadOnly))
        );
        assert_eq!(
            lookup(pf::REGISTERS, pf::INTR_CAUSE).map(|r| r.access),
            Some(Access::WriteOneToClear)
        );
        assert_eq!(
            lookup(pf::REGISTERS, pf::ID).map(|r| r.reset),
            Some(crate::DEVICE_ID_MAGIC)
        );
    }
}
