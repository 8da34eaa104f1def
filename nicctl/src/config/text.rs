//! The small text formats of the VPC file: names, IPv4 addresses, CIDRs and MACs, each
//! parsed with a reason a user can act on, and byte offsets turned into line and column.
use host_driver::tables::{Cidr, Mac};
use std::net::Ipv4Addr;

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
pub fn parse_ip(text: &str) -> Result<Ipv4Addr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IPv4 address (expected a.b.c.d)"))
}

/// "10.0.0.0/16", host bits zero.
pub fn parse_cidr(text: &str) -> Result<Cidr, String> {
    let (ip, len) = parse_prefix(text, "an IPv4 CIDR")?;
    let masked = Ipv4Addr::from(u32::from(ip) & mask(len));
    if masked != ip {
        return Err(format!(
            "{text:?} has host bits set: the network is {masked}/{len}"
        ));
    }
    Ok((ip, len))
}

/// "198.51.100.1/24": an interface address, host bits allowed.
pub fn parse_interface(text: &str) -> Result<Cidr, String> {
    parse_prefix(text, "an IPv4 address with a prefix length")
}

fn parse_prefix(text: &str, what: &str) -> Result<Cidr, String> {
    let Some((ip, len)) = text.split_once('/') else {
        return Err(format!("{text:?} is not {what} (expected a.b.c.d/len)"));
    };
    let ip: Ipv4Addr = ip
        .parse()
        .map_err(|_| format!("{text:?} is not {what}: {ip:?} is not an IPv4 address"))?;
    let len: u8 = len.parse().ok().filter(|&l| l <= 32).ok_or_else(|| {
        format!("{text:?} is not {what}: the prefix length {len:?} is not 0 to 32")
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
pub fn parse_mac(text: &str) -> Result<Mac, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let bad =
        || format!("{text:?} is not a MAC address (expected six hex bytes, 02:00:0a:00:01:0a)");
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
        return Err(format!(
            "{text} is a multicast MAC address; an instance needs a unicast one"
        ));
    }
    if mac == [0; 6] {
        return Err(format!("{text} is the all-zero MAC address"));
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
            parse_cidr("10.0.0.0/33").unwrap_err(),
            "\"10.0.0.0/33\" is not an IPv4 CIDR: the prefix length \"33\" is not 0 to 32"
        );
        assert_eq!(
            parse_cidr("10.0.1.5/24").unwrap_err(),
            "\"10.0.1.5/24\" has host bits set: the network is 10.0.1.0/24"
        );
        assert_eq!(
            parse_cidr("10.0.0/16").unwrap_err(),
            "\"10.0.0/16\" is not an IPv4 CIDR: \"10.0.0\" is not an IPv4 address"
        );
        assert_eq!(
            parse_cidr("10.0.0.0").unwrap_err(),
            "\"10.0.0.0\" is not an IPv4 CIDR (expected a.b.c.d/len)"
        );
        assert_eq!(
            parse_interface("198.51.100.1/24").unwrap(),
            (Ipv4Addr::new(198, 51, 100, 1), 24)
        );
        assert_eq!(
            parse_ip("10.0.1.300").unwrap_err(),
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
            .contains("six hex bytes"));
        assert!(parse_mac("02:00:0a:00:01:zz").is_err());
        assert!(parse_mac("002:0:0a:00:01:01").is_err());
        assert_eq!(
            parse_mac("01:00:5e:00:00:01").unwrap_err(),
            "01:00:5e:00:00:01 is a multicast MAC address; an instance needs a unicast one"
        );
        assert!(parse_mac("00:00:00:00:00:00")
            .unwrap_err()
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
