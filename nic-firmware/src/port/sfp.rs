//! SFF-8472 identity of an SFP module: page A0h of its EEPROM at I2C address 0x50.
//!
//! | bytes | field | as read |
//! | --- | --- | --- |
//! | 0 | identifier (SFF-8024) | [`Identifier`] |
//! | 20..36 | vendor name | ASCII, trailing spaces and NULs trimmed |
//! | 40..56 | vendor part number | likewise |
//! | 63 | `CC_BASE`: low byte of the sum of bytes 0..63 | [`SfpInfo::checksum_ok`] |
//! | 68..84 | vendor serial number | likewise |
//!
//! One read of bytes 0..84 (a one-byte offset write, then a sequential read). A bad
//! checksum is reported, not refused: cheap modules get it wrong and still work.
use embedded_hal::i2c::{Error as _, ErrorKind, I2c};

/// The I2C address of the SFF-8472 identity page (A0h in 8-bit notation).
pub const EEPROM_ADDR: u8 = 0x50;

const VENDOR_NAME: (usize, usize) = (20, 36);
const PART_NUMBER: (usize, usize) = (40, 56);
const CC_BASE: usize = 63;
const SERIAL: (usize, usize) = (68, 84);
/// Bytes read from the module: everything up to the end of the serial number.
const READ_LEN: usize = SERIAL.1;

/// Why the module's identity could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SfpError<E> {
    /// Nothing answered at 0x50: the cage is empty (or the module is not powered).
    Absent,
    /// The bus failed otherwise.
    Bus(E),
}

/// The module type, SFF-8024 table 4-1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identifier(pub u8);

impl Identifier {
    /// A short name of the module type.
    pub fn name(self) -> &'static str {
        shared_regs::entry::sff8024_identifier_name(self.0)
    }
}

/// A fixed-width ASCII field of the EEPROM, trimmed. Bytes outside printable ASCII read
/// as `?`, so [`Ascii16::as_str`] is always the whole field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ascii16 {
    bytes: [u8; 16],
    len: u8,
}

impl Ascii16 {
    /// An empty field.
    pub const EMPTY: Ascii16 = Ascii16 {
        bytes: [0; 16],
        len: 0,
    };

    /// The field of `raw` (at most 16 bytes), with trailing spaces and NULs removed.
    pub fn from_field(raw: &[u8]) -> Ascii16 {
        let mut out = Ascii16::EMPTY;
        for (dst, &b) in out.bytes.iter_mut().zip(raw) {
            *dst = if b == b' ' || b.is_ascii_graphic() {
                b
            } else {
                b'?'
            };
        }
        let kept = raw.len().min(16);
        let end = raw
            .iter()
            .take(kept)
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |i| i.saturating_add(1));
        out.len = u8::try_from(end).unwrap_or(16);
        out
    }

    /// The trimmed text.
    pub fn as_str(&self) -> &str {
        let bytes = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        core::str::from_utf8(bytes).unwrap_or("")
    }

    /// The trimmed bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

/// What the module says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SfpInfo {
    pub identifier: Identifier,
    pub vendor_name: Ascii16,
    pub part_number: Ascii16,
    pub serial: Ascii16,
    /// True when `CC_BASE` matches bytes 0..63.
    pub checksum_ok: bool,
}

impl SfpInfo {
    /// Decodes bytes 0..84 of page A0h (a shorter slice leaves the missing fields empty).
    pub fn parse(eeprom: &[u8]) -> SfpInfo {
        let field = |(start, end): (usize, usize)| {
            Ascii16::from_field(eeprom.get(start..end).unwrap_or(&[]))
        };
        let sum = eeprom
            .iter()
            .take(CC_BASE)
            .fold(0u8, |acc, &b| acc.wrapping_add(b));
        SfpInfo {
            identifier: Identifier(eeprom.first().copied().unwrap_or(0)),
            vendor_name: field(VENDOR_NAME),
            part_number: field(PART_NUMBER),
            serial: field(SERIAL),
            checksum_ok: eeprom.get(CC_BASE) == Some(&sum),
        }
    }
}

/// Bytes of page A0h.
pub const PAGE_SIZE: usize = 256;

/// A page A0h image with this identity, space-padded fields (longer ones cut at 16 bytes)
/// and a correct `CC_BASE`: what a simulated or fake module holds.
pub fn eeprom_image(identifier: u8, vendor: &str, part: &str, serial: &str) -> [u8; PAGE_SIZE] {
    let mut page = [0u8; PAGE_SIZE];
    if let Some(b) = page.first_mut() {
        *b = identifier;
    }
    for ((start, end), text) in [(VENDOR_NAME, vendor), (PART_NUMBER, part), (SERIAL, serial)] {
        if let Some(field) = page.get_mut(start..end) {
            field.fill(b' ');
            for (dst, &src) in field.iter_mut().zip(text.as_bytes()) {
                *dst = src;
            }
        }
    }
    let sum = page
        .iter()
        .take(CC_BASE)
        .fold(0u8, |acc, &b| acc.wrapping_add(b));
    if let Some(b) = page.get_mut(CC_BASE) {
        *b = sum;
    }
    page
}

/// Reads the identity of the module on `bus`.
pub fn read_module<I: I2c>(bus: &mut I) -> Result<SfpInfo, SfpError<I::Error>> {
    let mut raw = [0u8; READ_LEN];
    bus.write_read(EEPROM_ADDR, &[0], &mut raw).map_err(|e| {
        if matches!(e.kind(), ErrorKind::NoAcknowledge(_)) {
            SfpError::Absent
        } else {
            SfpError::Bus(e)
        }
    })?;
    Ok(SfpInfo::parse(&raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::{NoAcknowledgeSource, Operation};

    /// A bus with one 256-byte EEPROM at 0x50 (or none), keeping the address pointer the
    /// way a real EEPROM does.
    struct FakeBus {
        eeprom: Option<[u8; 256]>,
        pointer: u8,
        fail: Option<ErrorKind>,
    }

    impl embedded_hal::i2c::ErrorType for FakeBus {
        type Error = ErrorKind;
    }

    impl I2c for FakeBus {
        fn transaction(&mut self, addr: u8, ops: &mut [Operation<'_>]) -> Result<(), ErrorKind> {
            if let Some(e) = self.fail {
                return Err(e);
            }
            let Some(mem) = self.eeprom.as_ref().filter(|_| addr == EEPROM_ADDR) else {
                return Err(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address));
            };
            for op in ops {
                match op {
                    Operation::Write(w) => self.pointer = w[0],
                    Operation::Read(r) => {
                        for b in r.iter_mut() {
                            *b = mem[usize::from(self.pointer)];
                            self.pointer = self.pointer.wrapping_add(1);
                        }
                    }
                }
            }
            Ok(())
        }
    }

    fn eeprom(name: &[u8], pn: &[u8], sn: &[u8]) -> [u8; 256] {
        let mut m = [0u8; 256];
        m[0] = 0x03;
        m[20..36].fill(b' ');
        m[20..20 + name.len()].copy_from_slice(name);
        m[40..56].fill(b' ');
        m[40..40 + pn.len()].copy_from_slice(pn);
        m[68..84].fill(b' ');
        m[68..68 + sn.len()].copy_from_slice(sn);
        m[63] = m[..63].iter().fold(0u8, |a, &b| a.wrapping_add(b));
        m
    }

    fn bus(m: [u8; 256]) -> FakeBus {
        FakeBus {
            eeprom: Some(m),
            pointer: 0x7f,
            fail: None,
        }
    }

    #[test]
    fn reads_identifier_vendor_part_and_serial_trimmed() {
        let mut b = bus(eeprom(b"VPCNIC OPTICS", b"SFP-10G-SR", b"VN2026000042"));
        let info = read_module(&mut b).unwrap();
        assert_eq!(info.identifier, Identifier(0x03));
        assert_eq!(info.identifier.name(), "SFP/SFP+/SFP28");
        assert_eq!(info.vendor_name.as_str(), "VPCNIC OPTICS");
        assert_eq!(info.part_number.as_str(), "SFP-10G-SR");
        assert_eq!(info.serial.as_str(), "VN2026000042");
        assert!(info.checksum_ok);
    }

    #[test]
    fn full_width_fields_keep_all_sixteen_bytes() {
        let mut b = bus(eeprom(
            b"ABCDEFGHIJKLMNOP",
            b"0123456789ABCDEF",
            b"SERIAL0123456789",
        ));
        let info = read_module(&mut b).unwrap();
        assert_eq!(info.vendor_name.as_str(), "ABCDEFGHIJKLMNOP");
        assert_eq!(info.part_number.as_str(), "0123456789ABCDEF");
        assert_eq!(info.serial.as_str(), "SERIAL0123456789");
    }

    #[test]
    fn nul_padding_and_inner_spaces() {
        let mut m = eeprom(b"", b"", b"");
        m[20..36].copy_from_slice(b"A B\0\0\0\0\0\0\0\0\0\0\0\0\0");
        let info = SfpInfo::parse(&m[..84]);
        assert_eq!(info.vendor_name.as_str(), "A B");
        assert_eq!(info.part_number.as_str(), "");
        assert!(!info.checksum_ok, "the checksum covered the old name");
    }

    #[test]
    fn non_ascii_bytes_read_as_question_marks() {
        let mut m = eeprom(b"X", b"", b"");
        m[21] = 0xff;
        m[22] = b'Y';
        assert_eq!(SfpInfo::parse(&m[..84]).vendor_name.as_str(), "X?Y");
    }

    #[test]
    fn empty_cage_is_absent_and_bus_faults_are_errors() {
        let mut none = FakeBus {
            eeprom: None,
            pointer: 0,
            fail: None,
        };
        assert_eq!(read_module(&mut none), Err(SfpError::Absent));
        let mut broken = bus(eeprom(b"", b"", b""));
        broken.fail = Some(ErrorKind::ArbitrationLoss);
        assert_eq!(
            read_module(&mut broken),
            Err(SfpError::Bus(ErrorKind::ArbitrationLoss))
        );
    }

    #[test]
    fn eeprom_image_matches_the_test_builder_and_reads_back() {
        let img = eeprom_image(0x03, "VPCNIC OPTICS", "SFP-10G-SR", "VN2026000042");
        assert_eq!(
            img,
            eeprom(b"VPCNIC OPTICS", b"SFP-10G-SR", b"VN2026000042")
        );
        let long = eeprom_image(0x03, "A VENDOR NAME LONGER THAN 16", "", "");
        let info = SfpInfo::parse(&long[..84]);
        assert_eq!(info.vendor_name.as_str(), "A VENDOR NAME LO");
        assert!(info.checksum_ok);
    }

    #[test]
    fn short_dump_parses_without_panicking() {
        let info = SfpInfo::parse(&[0x0d, 1, 2]);
        assert_eq!(info.identifier.name(), "QSFP+");
        assert_eq!(info.serial, Ascii16::EMPTY);
        assert!(!info.checksum_ok);
    }
}
