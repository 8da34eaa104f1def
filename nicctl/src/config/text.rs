//! The small text formats of the VPC file: names, IPv4 addresses, CIDRs and MACs, each
//! parsed with a reason a user can act on, and byte offsets turned into line and column.
use host_driver::tables::{Cidr, Mac};
use std::net::Ipv4Addr;

/// Why a value of the VPC file is not what its field takes; the message is the reason a
/// [`super::ConfigError`] gives.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{text:?} is not an IPv4 address (expected a.b.c.d)")]
    NotIpv4 { text: String },
    #[error("{text:?} has host bits set: the network is {network}/{len}")]
    HostBitsSet {
        text: String,
        network: Ipv4Addr,
        len: u8,
    },
    #[error("{text:?} is not {what} (expected a.b.c.d/len)")]
    NotPrefix { text: String, what: &'static str },
    #[error("{text:?} is not {what}: {ip:?} is not an IPv4 address")]
    PrefixAddress {
        text: String,
        what: &'static str,
        ip: String,
    },
    #[error("{text:?} is not {what}: the prefix length {len:?} is not 0 to 32")]
    PrefixLength {
        text: String,
        what: &'static str,
        len: String,
    },
    #[error("{text:?} is not a MAC address (expected six hex bytes, 02:00:0a:00:01:0a)")]
    NotMac { text: String },
    #[error("{text} is a multicast MAC address; an instance needs a unicast one")]
    MulticastMac { text: String },
    #[error("{text} is the all-zero MAC address")]
    ZeroMac { text: String },
}

/// The rule every name follows (they name network namespaces).
pub const NAME_RULE: &str = "[a-z][a-z0-9-]{0,14}";

/// Whether `name` matches [`NAME_RULE`].
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && name.len() <= 15
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// An IPv4 address in dotted-quad form.
pub fn parse_ip(text: &str) -> Result<Ipv4Addr, TextError> {
    text.parse()
        .map_err(|_| TextError::NotIpv4 { text: text.into() })
}

/// "10.0.0.0/16", host bits zero.
pub fn parse_cidr(text: &str) -> Result<Cidr, TextError> {
    let (ip, len) = parse_prefix(text, "an IPv4 CIDR")?;
    let masked = Ipv4Addr::from(u32::from(ip) & mask(len));
    if masked != ip {
        return Err(TextError::HostBitsSet {
            text: text.into(),
            network: masked,
            len,
        });
    }
    Ok((ip, len))
}

/// "198.51.100.1/24": an interface address, host bits allowed.
pub fn parse_interface(text: &str) -> Result<Cidr, TextError> {
    parse_prefix(text, "an IPv4 address with a prefix length")
}

fn parse_prefix(text: &str, what: &'static str) -> Result<Cidr, TextError> {
    let Some((ip, len)) = text.split_once('/') else {
        return Err(TextError::NotPrefix {
            text: text.into(),
            what,
        });
    };
    let ip: Ipv4Addr = ip.parse().map_err(|_| TextError::PrefixAddress {
        text: text.into(),
        what,
        ip: ip.into(),
    })?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|&l| l <= 32)
        .ok_or_else(|| TextError::PrefixLength {
            text: text.into(),
            what,
            len: len.into(),
        })?;
    Ok((ip, len))
}

/// The netmask of a prefix length.
pub fn mask(len: u8) -> u32 {
    match len {
        0 => 0,
        n => u32::MAX << (32 - u32::from(n.min(32))),
    }
}

/// Whether `ip` is inside `cidr`.
pub fn contains((base, len): Cidr, ip: Ipv4Addr) -> bool {
    u32::from(ip) & mask(len) == u32::from(base)
}

/// Whether two prefixes share an address.
pub fn overlaps(a: Cidr, b: Cidr) -> bool {
    let len = a.1.min(b.1);
    u32::from(a.0) & mask(len) == u32::from(b.0) & mask(len)
}

/// The address `offset` after the base of `cidr`.
pub fn nth((base, _): Cidr, offset: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(offset))
}

/// The last address of `cidr`.
pub fn last((base, len): Cidr) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base) | !mask(len))
}

/// "10.0.1.0/24".
pub fn cidr_text((ip, len): Cidr) -> String {
    format!("{ip}/{len}")
}

/// "02:00:0a:00:01:0a": a unicast MAC.
pub fn parse_mac(text: &str) -> Result<Mac, TextError> {
    let parts: Vec<&str> = text.split(':').collect();
    let bad = || TextError::NotMac { text: text.into() };
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(&parts) {
        if part.len() != 2 {
            return Err(bad());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 != 0 {
        return Err(TextError::MulticastMac { text: text.into() });
    }
    if mac == [0; 6] {
        return Err(TextError::ZeroMac { text: text.into() });
    }
    Ok(mac)
}

/// 1-based line and column of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

/// Names for a message: the first few, then how many more ("a, b, c and 7 more"), so that
/// an error about a huge file stays a line.
pub fn few(names: &[&str]) -> String {
    const SHOWN: usize = 8;
    if names.len() <= SHOWN {
        return names.join(", ");
    }
    format!(
        "{} and {} more",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_namespace_rule() {
        for ok in ["a", "web1", "prod-east", "a23456789012345"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "1a", "Web", "a_b", "a234567890123456", "-a", "é"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn cidrs_and_addresses_parse_with_reasons() {
        assert_eq!(
            parse_cidr("10.0.0.0/16").unwrap(),
            (Ipv4Addr::new(10, 0, 0, 0), 16)
        );
        assert_eq!(
            parse_cidr("10.0.0.0/33").unwrap_err().to_string(),
            "\"10.0.0.0/33\" is not an IPv4 CIDR: the prefix length \"33\" is not 0 to 32"
        );
        assert_eq!(
            parse_cidr("10.0.1.5/24").unwrap_err().to_string(),
            "\"10.0.1.5/24\" has host bits set: the network is 10.0.1.0/24"
        );
        assert_eq!(
            parse_cidr("10.0.0/16").unwrap_err().to_string(),
            "\"10.0.0/16\" is not an IPv4 CIDR: \"10.0.0\" is not an IPv4 address"
        );
        assert_eq!(
            parse_cidr("10.0.0.0").unwrap_err().to_string(),
            "\"10.0.0.0\" is not an IPv4 CIDR (expected a.b.c.d/len)"
        );
        assert_eq!(
            parse_interface("198.51.100.1/24").unwrap(),
            (Ipv4Addr::new(198, 51, 100, 1), 24)
        );
        assert_eq!(
            parse_ip("10.0.1.300").unwrap_err().to_string(),
            "\"10.0.1.300\" is not an IPv4 address (expected a.b.c.d)"
        );
    }

    #[test]
    fn prefix_arithmetic() {
        let net = (Ipv4Addr::new(10, 0, 1, 0), 24);
        assert!(contains(net, Ipv4Addr::new(10, 0, 1, 255)));
        assert!(!contains(net, Ipv4Addr::new(10, 0, 2, 0)));
        assert!(overlaps(net, (Ipv4Addr::new(10, 0, 0, 0), 16)));
        assert!(!overlaps(net, (Ipv4Addr::new(10, 0, 2, 0), 24)));
        assert_eq!(nth(net, 2), Ipv4Addr::new(10, 0, 1, 2));
        assert_eq!(last(net), Ipv4Addr::new(10, 0, 1, 255));
        assert_eq!(mask(0), 0);
        assert!(contains((Ipv4Addr::UNSPECIFIED, 0), Ipv4Addr::BROADCAST));
    }

    #[test]
    fn macs_are_unicast_hex() {
        assert_eq!(
            parse_mac("02:00:0a:00:01:0A").unwrap(),
            [2, 0, 10, 0, 1, 10]
        );
        assert!(parse_mac("02:00:0a:00:01")
            .unwrap_err()
            .to_string()
            .contains("six hex bytes"));
        assert!(parse_mac("02:00:0a:00:01:zz").is_err());
        assert!(parse_mac("002:0:0a:00:01:01").is_err());
        assert_eq!(
            parse_mac("01:00:5e:00:00:01").unwrap_err().to_string(),
            "01:00:5e:00:00:01 is a multicast MAC address; an instance needs a unicast one"
        );
        assert!(parse_mac("00:00:00:00:00:00")
            .unwrap_err()
            .to_string()
            .contains("all-zero"));
    }

    #[test]
    fn offsets_become_lines_and_columns() {
        let t = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 6), (2, 1));
        assert_eq!(line_col(t, 12), (2, 6));
        assert_eq!(line_col(t, 999), (3, 1));
    }
}
