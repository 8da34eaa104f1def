//! Test frames for `nicctl trace`: a flow spec (`icmp,src=10.0.1.10,dst=10.0.2.20`) parsed,
//! and turned into a well-formed frame with the MACs a VM of the VPC file would use.
//!
//! On a VF the sender MAC is the MAC of the instance on that VF; the destination MAC is the
//! neighbour's when the destination is an instance of the same subnet, else the subnet
//! gateway's; an ARP request is broadcast. On the uplink the frame is VXLAN from the host
//! of the instance holding `src`, as that host's NIC would send it.
use crate::config::model::{self, Config};
use crate::config::plan::Plan;
use crate::config::text::contains;
use host_driver::tables::{Mac, Port};
use std::net::Ipv4Addr;

/// What kind of frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowKind {
    Arp,
    Icmp,
    Udp { sport: u16, dport: u16 },
    Tcp { sport: u16, dport: u16 },
    Ipv6,
}

/// A parsed flow spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSpec {
    pub kind: FlowKind,
    /// Default: the sending instance's primary address.
    pub src: Option<Ipv4Addr>,
    pub dst: Option<Ipv4Addr>,
}

const HELP: &str = "a flow is arp|icmp|udp|tcp|ipv6 followed by ,src=IP ,dst=IP and for udp/tcp \
                    ,sport=N ,dport=N (e.g. icmp,src=10.0.1.10,dst=10.0.2.20)";

/// Why a flow spec does not parse, or gives no frame on the port asked.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("flow {flow:?}: {part:?} is not key=value; {HELP}")]
    NotKeyValue { flow: String, part: String },
    #[error("flow {flow:?}: {key}={value:?} is not an IPv4 address")]
    NotIpv4 {
        flow: String,
        key: String,
        value: String,
    },
    #[error("flow {flow:?}: {key}={value:?} is not a port (0 to 65535)")]
    NotPort {
        flow: String,
        key: String,
        value: String,
    },
    #[error("flow {flow:?}: unknown key {key:?}; {HELP}")]
    UnknownKey { flow: String, key: String },
    #[error("flow {flow:?}: unknown kind {kind:?}; {HELP}")]
    UnknownKind { flow: String, kind: String },
    #[error("flow {flow:?}: dst=IP is missing")]
    NoDestination { flow: String },
    #[error("vf{vf} serves no instance of host {host} in the file ({assigned} VFs assigned)")]
    NoInstanceOnVf {
        vf: u16,
        host: String,
        assigned: usize,
    },
    #[error(
        "a flow on the uplink needs src= and dst= (the instance holding src sends it over VXLAN)"
    )]
    UplinkNeedsAddresses,
    #[error("{src} is no instance address of the file, so no host sends it over VXLAN")]
    NoSender { src: Ipv4Addr },
    #[error("{src} is instance {instance} on this host ({host}); a flow on the uplink comes from another host")]
    SenderIsLocal {
        src: Ipv4Addr,
        instance: String,
        host: String,
    },
}

impl FlowSpec {
    /// Parses `kind[,key=value]...`.
    pub fn parse(text: &str) -> Result<FlowSpec, FlowError> {
        let mut parts = text.split(',').map(str::trim);
        let kind = parts.next().unwrap_or("");
        let (mut src, mut dst, mut sport, mut dport) = (None, None, 1024u16, 7u16);
        for part in parts {
            let Some((key, value)) = part.split_once('=') else {
                return Err(FlowError::NotKeyValue {
                    flow: text.into(),
                    part: part.into(),
                });
            };
            let ip = || {
                value.parse::<Ipv4Addr>().map_err(|_| FlowError::NotIpv4 {
                    flow: text.into(),
                    key: key.into(),
                    value: value.into(),
                })
            };
            let port = || {
                value.parse::<u16>().map_err(|_| FlowError::NotPort {
                    flow: text.into(),
                    key: key.into(),
                    value: value.into(),
                })
            };
            match key {
                "src" => src = Some(ip()?),
                "dst" => dst = Some(ip()?),
                "sport" => sport = port()?,
                "dport" => dport = port()?,
                _ => {
                    return Err(FlowError::UnknownKey {
                        flow: text.into(),
                        key: key.into(),
                    })
                }
            }
        }
        let kind = match kind {
            "arp" => FlowKind::Arp,
            "icmp" => FlowKind::Icmp,
            "udp" => FlowKind::Udp { sport, dport },
            "tcp" => FlowKind::Tcp { sport, dport },
            "ipv6" => FlowKind::Ipv6,
            other => {
                return Err(FlowError::UnknownKind {
                    flow: text.into(),
                    kind: other.into(),
                })
            }
        };
        if dst.is_none() && kind != FlowKind::Ipv6 {
            return Err(FlowError::NoDestination { flow: text.into() });
        }
        Ok(FlowSpec { kind, src, dst })
    }
}

/// Builds the frame of `spec` arriving on `port` of the NIC `plan` programs.
pub fn frame_for(
    config: &Config,
    plan: &Plan,
    port: Port,
    spec: &FlowSpec,
) -> Result<Vec<u8>, FlowError> {
    match port {
        Port::Vf(vf) => vf_frame(config, plan, vf, spec),
        Port::Uplink => uplink_frame(config, plan, spec),
    }
}

fn vf_frame(config: &Config, plan: &Plan, vf: u16, spec: &FlowSpec) -> Result<Vec<u8>, FlowError> {
    let no_instance = || FlowError::NoInstanceOnVf {
        vf,
        host: plan.host.clone(),
        assigned: plan.vfs.len(),
    };
    let Some((name, _)) = plan.vfs.iter().find(|(_, v)| *v == vf) else {
        return Err(no_instance());
    };
    let i = config.instance_index(name).ok_or_else(no_instance)?;
    let inst = &config.instances[i];
    let subnet = &config.subnets[inst.subnet];
    let src = spec.src.unwrap_or(inst.ip);
    let dst = spec.dst.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let dst_mac = match spec.kind {
        FlowKind::Arp => [0xff; 6],
        _ if contains(subnet.cidr, dst) => config
            .instance_at(subnet.vpc, dst)
            .filter(|&j| config.instances[j].subnet == inst.subnet)
            .map(|j| config.instances[j].mac)
            .unwrap_or_else(|| config.subnet_gateway_mac(inst.subnet)),
        _ => config.subnet_gateway_mac(inst.subnet),
    };
    Ok(build(spec.kind, inst.mac, dst_mac, src, dst))
}

fn uplink_frame(config: &Config, plan: &Plan, spec: &FlowSpec) -> Result<Vec<u8>, FlowError> {
    let (Some(src), Some(dst)) = (spec.src, spec.dst) else {
        return Err(FlowError::UplinkNeedsAddresses);
    };
    let sender = (0..config.vpcs.len())
        .find_map(|v| config.instance_at(v, src).map(|i| (v, i)))
        .ok_or(FlowError::NoSender { src })?;
    let (vpc, i) = sender;
    let inst = &config.instances[i];
    let host = inst.host;
    if config.hosts[host].name == plan.host {
        return Err(FlowError::SenderIsLocal {
            src,
            instance: inst.name.clone(),
            host: plan.host.clone(),
        });
    }
    let dst_mac = config
        .instance_at(vpc, dst)
        .map(|j| config.instances[j].mac)
        .unwrap_or([0x02, 0, 0, 0, 0, 1]);
    let inner = build(spec.kind, inst.mac, dst_mac, src, dst);
    let this = config.host_index(&plan.host).unwrap_or(0);
    Ok(vxlan(
        (
            config.hosts[this].uplink_mac(),
            model::UNDERLAY_NEXT_HOP_MAC,
        ),
        (plan.underlay_ip, config.hosts[host].underlay),
        config.vpcs[vpc].vni,
        &inner,
    ))
}

fn ethernet(dst: Mac, src: Mac, ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// The Internet checksum of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, protocol, 0, 0]);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// A frame of `kind` from `src_mac`/`src` to `dst_mac`/`dst`.
pub fn build(kind: FlowKind, src_mac: Mac, dst_mac: Mac, src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    match kind {
        FlowKind::Arp => {
            let mut f = ethernet(dst_mac, src_mac, 0x0806);
            f.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&src.octets());
            f.extend_from_slice(&[0; 6]);
            f.extend_from_slice(&dst.octets());
            f.resize(60, 0);
            f
        }
        FlowKind::Icmp => {
            let mut icmp = vec![8, 0, 0, 0, 0x42, 0x42, 0, 1];
            icmp.extend_from_slice(b"nicctl trace ping payload......");
            let c = checksum(&icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let mut f = ethernet(dst_mac, src_mac, 0x0800);
            f.extend_from_slice(&ipv4(src, dst, 1, &icmp));
            f
        }
        FlowKind::Udp { sport, dport } => {
            let body = b"nicctl trace";
            let mut udp = Vec::new();
            udp.extend_from_slice(&sport.to_be_bytes());
            udp.extend_from_slice(&dport.to_be_bytes());
            udp.extend_from_slice(&((8 + body.len()) as u16).to_be_bytes());
            udp.extend_from_slice(&[0, 0]);
            udp.extend_from_slice(body);
            let mut f = ethernet(dst_mac, src_mac, 0x0800);
            f.extend_from_slice(&ipv4(src, dst, 17, &udp));
            f
        }
        FlowKind::Tcp { sport, dport } => {
            let mut tcp = Vec::new();
            tcp.extend_from_slice(&sport.to_be_bytes());
            tcp.extend_from_slice(&dport.to_be_bytes());
            tcp.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
            let mut f = ethernet(dst_mac, src_mac, 0x0800);
            f.extend_from_slice(&ipv4(src, dst, 6, &tcp));
            f
        }
        FlowKind::Ipv6 => {
            let mut f = ethernet(dst_mac, src_mac, 0x86dd);
            f.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, 59, 64]);
            f.extend_from_slice(&[0; 32]);
            f
        }
    }
}

/// `inner` in VXLAN with `vni` (UDP 4789, checksum 0); `macs` and `ips` are (destination,
/// source) of the outer headers.
pub fn vxlan(macs: (Mac, Mac), ips: (Ipv4Addr, Ipv4Addr), vni: u32, inner: &[u8]) -> Vec<u8> {
    let mut udp = Vec::new();
    udp.extend_from_slice(&50000u16.to_be_bytes());
    udp.extend_from_slice(&4789u16.to_be_bytes());
    udp.extend_from_slice(&((16 + inner.len()) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0, 0x08, 0, 0, 0]);
    udp.extend_from_slice(&(vni << 8).to_be_bytes());
    udp.extend_from_slice(inner);
    let mut f = ethernet(macs.0, macs.1, 0x0800);
    f.extend_from_slice(&ipv4(ips.1, ips.0, 17, &udp));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_specs_parse_with_reasons() {
        assert_eq!(
            FlowSpec::parse("udp,src=10.0.1.10,dst=10.0.2.20,sport=5000,dport=53").unwrap(),
            FlowSpec {
                kind: FlowKind::Udp {
                    sport: 5000,
                    dport: 53
                },
                src: Some(Ipv4Addr::new(10, 0, 1, 10)),
                dst: Some(Ipv4Addr::new(10, 0, 2, 20)),
            }
        );
        assert_eq!(FlowSpec::parse("ipv6").unwrap().kind, FlowKind::Ipv6);
        assert_eq!(
            FlowSpec::parse("icmp,src=10.0.1.10")
                .unwrap_err()
                .to_string(),
            "flow \"icmp,src=10.0.1.10\": dst=IP is missing"
        );
        assert!(FlowSpec::parse("sctp,dst=1.2.3.4")
            .unwrap_err()
            .to_string()
            .contains("unknown kind \"sctp\""));
        assert!(FlowSpec::parse("icmp,dst=1.2.3")
            .unwrap_err()
            .to_string()
            .contains("dst=\"1.2.3\" is not an IPv4 address"));
        assert!(FlowSpec::parse("udp,dst=1.2.3.4,dport=70000")
            .unwrap_err()
            .to_string()
            .contains("not a port"));
        assert!(FlowSpec::parse("icmp,dst")
            .unwrap_err()
            .to_string()
            .contains("is not key=value"));
        assert!(FlowSpec::parse("icmp,ttl=3,dst=1.1.1.1")
            .unwrap_err()
            .to_string()
            .contains("unknown key \"ttl\""));
    }

    #[test]
    fn frames_are_well_formed() {
        let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let (s, d) = (Ipv4Addr::new(10, 0, 1, 10), Ipv4Addr::new(10, 0, 2, 20));
        let f = build(FlowKind::Icmp, a, b, s, d);
        assert_eq!(&f[0..6], &b);
        assert_eq!(&f[6..12], &a);
        assert_eq!(&f[12..14], &[8, 0]);
        assert_eq!(checksum(&f[14..34]), 0, "IPv4 header checksum");
        assert_eq!(checksum(&f[34..]), 0, "ICMP checksum");
        assert_eq!(
            usize::from(u16::from_be_bytes([f[16], f[17]])),
            f.len() - 14
        );
        let arp = build(FlowKind::Arp, a, [0xff; 6], s, d);
        assert_eq!(arp.len(), 60);
        assert_eq!(&arp[12..14], &[8, 6]);
        assert_eq!(&arp[38..42], &d.octets());
        let v6 = build(FlowKind::Ipv6, a, b, s, d);
        assert_eq!(&v6[12..14], &[0x86, 0xdd]);
        let x = vxlan((b, a), (d, s), 100, &f);
        assert_eq!(&x[0..6], &b);
        assert_eq!(&x[26..30], &s.octets(), "outer source");
        assert_eq!(&x[36..38], &4789u16.to_be_bytes());
        assert_eq!(&x[46..49], &[0, 0, 100]);
        assert_eq!(&x[50..], &f[..]);
        assert_eq!(checksum(&x[14..34]), 0);
    }
}
