//! Classic pcap files (what `tcpdump -w` writes): a 24-byte global header, then one 16-byte
//! record header and the frame bytes per frame. Little-endian, microsecond timestamps,
//! `LINKTYPE_ETHERNET`. `nicctl capture` writes them; tcpdump, tshark and Wireshark read
//! them.
use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The magic number of microsecond pcap files.
pub const MAGIC: u32 = 0xa1b2_c3d4;
/// Ethernet frames, starting with the destination MAC.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame part kept in a record; longer frames are cut (and say so).
pub const SNAPLEN: u32 = 65_535;
/// Bytes of the global header.
pub const GLOBAL_HEADER_LEN: usize = 24;
/// Bytes of a record header.
pub const RECORD_HEADER_LEN: usize = 16;

/// The file's global header: version 2.4, UTC, [`SNAPLEN`], Ethernet.
pub fn global_header() -> [u8; GLOBAL_HEADER_LEN] {
    let mut h = [0u8; GLOBAL_HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    // thiszone (8..12) and sigfigs (12..16) stay 0.
    h[16..20].copy_from_slice(&SNAPLEN.to_le_bytes());
    h[20..24].copy_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    h
}

/// One record: `frame` seen at `at`, cut to [`SNAPLEN`].
pub fn record(at: SystemTime, frame: &[u8]) -> Vec<u8> {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let kept = frame.len().min(SNAPLEN as usize);
    let mut r = Vec::with_capacity(RECORD_HEADER_LEN + kept);
    r.extend_from_slice(&(since.as_secs() as u32).to_le_bytes());
    r.extend_from_slice(&since.subsec_micros().to_le_bytes());
    r.extend_from_slice(&(kept as u32).to_le_bytes());
    r.extend_from_slice(&(frame.len() as u32).to_le_bytes());
    r.extend_from_slice(&frame[..kept]);
    r
}

/// A record read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Time since the Unix epoch.
    pub at: Duration,
    /// The frame's length on the wire.
    pub orig_len: u32,
    /// The bytes kept.
    pub data: Vec<u8>,
}

/// The length of the record at the start of `bytes`, if it is all there.
pub fn record_len(bytes: &[u8]) -> Option<usize> {
    let head = bytes.get(..RECORD_HEADER_LEN)?;
    let incl = u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize;
    let total = RECORD_HEADER_LEN + incl;
    (bytes.len() >= total).then_some(total)
}

/// Parses the record at the start of `bytes` (see [`record_len`]).
pub fn parse_record(bytes: &[u8]) -> Option<Record> {
    let len = record_len(bytes)?;
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some(Record {
        at: Duration::new(u64::from(word(0)), word(4).saturating_mul(1000)),
        orig_len: word(12),
        data: bytes[RECORD_HEADER_LEN..len].to_vec(),
    })
}

/// Reads a whole little-endian microsecond pcap file of Ethernet frames.
pub fn read_all(mut input: impl Read) -> io::Result<Vec<Record>> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let head = bytes
        .get(..GLOBAL_HEADER_LEN)
        .ok_or_else(|| bad("shorter than a pcap global header"))?;
    if head[..4] != MAGIC.to_le_bytes() {
        return Err(bad("not a little-endian microsecond pcap file"));
    }
    if head[20..24] != LINKTYPE_ETHERNET.to_le_bytes() {
        return Err(bad("not a capture of Ethernet frames"));
    }
    let mut rest = &bytes[GLOBAL_HEADER_LEN..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = record_len(rest).ok_or_else(|| bad("the last record is cut short"))?;
        out.extend(parse_record(rest));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_global_header_is_what_tcpdump_writes() {
        assert_eq!(
            global_header(),
            [
                0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0,
                0, 0
            ]
        );
    }

    #[test]
    fn records_round_trip_with_microseconds() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let r = record(at, &[1, 2, 3]);
        assert_eq!(r.len(), RECORD_HEADER_LEN + 3);
        assert_eq!(record_len(&r[..5]), None);
        assert_eq!(record_len(&r[..r.len() - 1]), None);
        let mut file = global_header().to_vec();
        file.extend_from_slice(&r);
        file.extend_from_slice(&record(at, &[9; 70_000]));
        let back = read_all(&file[..]).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].at, Duration::new(1_700_000_000, 123_456_000));
        assert_eq!((back[0].orig_len, back[0].data.clone()), (3, vec![1, 2, 3]));
        assert_eq!(back[1].data.len(), SNAPLEN as usize);
        assert_eq!(back[1].orig_len, 70_000);
        file.pop();
        assert!(read_all(&file[..]).is_err());
    }
}
