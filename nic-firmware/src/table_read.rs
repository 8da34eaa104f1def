//! `TABLE_READ`: a table as the NIC holds it, in its contract format, from a cursor.
use crate::admin::{params, Context};
use crate::platform::{Function, Platform};
use crate::tables::lpm::Route;
use crate::tables::mapping::{Location, Mapping, MappingKey};
use crate::tables::vpc::{Gateway, Subnet, VfConfig, Vpc};
use crate::tables::Uplink;
use shared_regs::admin::{AdminCmd, Status};
use shared_regs::entry::{
    GatewayEntry, MappingEntry, MappingLocation, RouteEntry, RouteTableEntry, SubnetEntry, TableId,
    TableReadHeader, TableReadQuery, UplinkEntry, VfEntry, VfFlags, VfReadEntry, VpcDomainEntry,
    VpcEntry, CURSOR_END, MAIN_ROUTE_TABLE, VF_SECONDARY_ADDRS,
};
use shared_regs::{Le16, Le32};
use zerocopy::{Immutable, IntoBytes};

/// Writes whole entries after the header while they fit.
struct Writer<'p, P> {
    p: &'p mut P,
    addr: u64,
    room: usize,
    count: u32,
}

impl<P: Platform> Writer<'_, P> {
    /// Appends one entry; false when it does not fit (the read stops there).
    fn push<E: IntoBytes + Immutable>(&mut self, e: &E) -> Result<bool, Status> {
        let bytes = e.as_bytes();
        if bytes.len() > self.room {
            return Ok(false);
        }
        self.p
            .dma_write(Function::Pf, self.addr, bytes)
            .map_err(|_| Status::DmaError)?;
        self.addr = self.addr.wrapping_add(bytes.len() as u64);
        self.room = self.room.saturating_sub(bytes.len());
        self.count = self.count.saturating_add(1);
        Ok(true)
    }
}

/// Emits `items` from position `cursor` on; returns the next cursor.
fn emit_from<P: Platform, E: IntoBytes + Immutable>(
    w: &mut Writer<'_, P>,
    cursor: u32,
    items: impl Iterator<Item = (usize, E)>,
) -> Result<u32, Status> {
    for (pos, e) in items {
        let Ok(pos) = u32::try_from(pos) else {
            break;
        };
        if pos < cursor {
            continue;
        }
        if !w.push(&e)? {
            return Ok(pos);
        }
    }
    Ok(CURSOR_END)
}

fn slots<T: Copy>(table: &[Option<T>]) -> impl Iterator<Item = (usize, T)> + '_ {
    table
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.map(|v| (i, v)))
}

fn id(i: usize) -> Le16 {
    Le16::new(u16::try_from(i).unwrap_or(u16::MAX))
}

fn vpc_entry(i: usize, v: Vpc) -> VpcEntry {
    VpcEntry {
        id: id(i),
        main_route_table: Le16::new(v.main_route_table.unwrap_or(MAIN_ROUTE_TABLE)),
        vni: Le32::new(v.vni),
        cidr: v.cidr.to_be_bytes(),
        cidr_len: v.cidr_len,
        dns_count: v.dns_count,
        reserved: [0; 2],
        dns: v.dns.map(u32::to_be_bytes),
    }
}

fn domain_entry(i: usize, v: Vpc) -> VpcDomainEntry {
    VpcDomainEntry {
        vpc_id: id(i),
        len: v.domain_len,
        reserved: 0,
        name: v.domain,
    }
}

fn subnet_entry(i: usize, s: Subnet) -> SubnetEntry {
    SubnetEntry {
        id: id(i),
        vpc_id: Le16::new(s.vpc),
        route_table_id: Le16::new(s.route_table),
        prefix_len: s.prefix_len,
        reserved: 0,
        prefix: s.prefix.to_be_bytes(),
        gateway_mac: s.gateway_mac,
        reserved2: [0; 2],
    }
}

fn route_entry(table: u16, r: Route) -> RouteEntry {
    RouteEntry::new(table, r.prefix.into(), r.len, r.target.into())
}

fn mapping_entry(k: MappingKey, m: Mapping) -> MappingEntry {
    let (location, vf, underlay) = match m.location {
        Location::LocalVf(vf) => (MappingLocation::LocalVf, vf, 0),
        Location::Remote { underlay_ip } => (MappingLocation::Remote, 0, underlay_ip),
        Location::Gateway => (MappingLocation::Gateway, 0, 0),
        Location::Broadcast => (MappingLocation::Broadcast, 0, 0),
        Location::Vpc(v) => (MappingLocation::VniAnchor, v, 0),
    };
    MappingEntry {
        vni: Le32::new(k.vni),
        ip: k.ip.to_be_bytes(),
        mac: m.mac,
        location: location as u8,
        reserved: 0,
        vf: Le16::new(vf),
        reserved2: [0; 2],
        underlay_ip: underlay.to_be_bytes(),
    }
}

fn vf_entry(i: usize, c: VfConfig, rings_enabled: bool) -> VfReadEntry {
    let mut secondary = [[0; 4]; VF_SECONDARY_ADDRS];
    for (dst, src) in secondary.iter_mut().zip(c.secondaries()) {
        *dst = src.to_be_bytes();
    }
    let flags = if c.src_dst_check {
        VfFlags::SRC_DST_CHECK
    } else {
        VfFlags::empty()
    };
    VfReadEntry {
        entry: VfEntry {
            vf: id(i),
            subnet_id: Le16::new(c.subnet),
            flags: Le16::new(flags.bits()),
            reserved: [0; 2],
            mac: c.mac,
            reserved2: [0; 2],
            primary_ip: c.primary_ip.to_be_bytes(),
        },
        secondary_count: c.secondary_count,
        rings_enabled: u8::from(rings_enabled),
        reserved: [0; 2],
        secondary,
    }
}

fn gateway_entry(i: usize, g: Gateway) -> GatewayEntry {
    GatewayEntry {
        id: id(i),
        kind: g.kind,
        reserved: 0,
        underlay_ip: g.underlay_ip.to_be_bytes(),
        mac: g.mac,
        reserved2: [0; 2],
    }
}

fn uplink_entry(u: Uplink) -> UplinkEntry {
    UplinkEntry {
        mac: u.mac,
        next_hop_mac: u.next_hop_mac,
        underlay_ip: u.underlay_ip.to_be_bytes(),
        mtu: Le16::new(u.mtu),
        reserved: [0; 2],
    }
}

/// Runs one `TABLE_READ`; `Ok` carries the bytes written.
pub(crate) fn run<P: Platform>(
    ctx: &mut Context<'_, '_, P>,
    cmd: &AdminCmd,
) -> Result<u32, Status> {
    let q: TableReadQuery = params(cmd)?;
    let table = TableId::from_u8(q.table).ok_or(Status::BadArgument)?;
    let header_len = core::mem::size_of::<TableReadHeader>();
    let buf_len = usize::try_from(cmd.buf_len.get()).map_err(|_| Status::BadArgument)?;
    let room = buf_len
        .checked_sub(header_len)
        .ok_or(Status::BufferTooSmall)?;
    let t = &*ctx.tables;
    let rings = ctx.rings;
    let mut w = Writer {
        p: &mut *ctx.platform,
        addr: cmd.buf_addr.get().wrapping_add(header_len as u64),
        room,
        count: 0,
    };
    let cursor = q.cursor.get();
    let next = match table {
        TableId::Vpc => emit_from(
            &mut w,
            cursor,
            slots(t.vpcs).map(|(i, v)| (i, vpc_entry(i, v))),
        )?,
        TableId::Subnet => emit_from(
            &mut w,
            cursor,
            slots(t.subnets).map(|(i, s)| (i, subnet_entry(i, s))),
        )?,
        TableId::RouteTable => emit_from(
            &mut w,
            cursor,
            slots(t.route_tables).map(|(i, r)| {
                let e = RouteTableEntry {
                    id: id(i),
                    vpc_id: Le16::new(r.vpc),
                };
                (i, e)
            }),
        )?,
        TableId::Route => {
            let rt = q.route_table.get();
            t.route_table(rt).ok_or(Status::NotFound)?;
            emit_from(
                &mut w,
                cursor,
                t.routes.routes(rt).map(|r| route_entry(rt, r)).enumerate(),
            )?
        }
        TableId::Mapping => emit_from(
            &mut w,
            cursor,
            (0..t.mappings.positions())
                .filter_map(|pos| t.mappings.at(pos).map(|(k, m)| (pos, mapping_entry(k, m)))),
        )?,
        TableId::Vf => emit_from(
            &mut w,
            cursor,
            slots(t.vfs).map(|(i, c)| {
                let enabled = rings.get(i).is_some_and(|r| r.enabled());
                (i, vf_entry(i, c, enabled))
            }),
        )?,
        TableId::Gateway => emit_from(
            &mut w,
            cursor,
            slots(t.gateways).map(|(i, g)| (i, gateway_entry(i, g))),
        )?,
        TableId::Uplink => emit_from(
            &mut w,
            cursor,
            t.uplink.map(|u| (0, uplink_entry(u))).into_iter(),
        )?,
        TableId::VpcDomain => emit_from(
            &mut w,
            cursor,
            slots(t.vpcs)
                .filter(|(_, v)| v.domain_len > 0)
                .map(|(i, v)| (i, domain_entry(i, v))),
        )?,
    };
    let header = TableReadHeader {
        count: Le32::new(w.count),
        next_cursor: Le32::new(next),
    };
    let written = buf_len.saturating_sub(w.room);
    ctx.platform
        .dma_write(Function::Pf, cmd.buf_addr.get(), header.as_bytes())
        .map_err(|_| Status::DmaError)?;
    u32::try_from(written).map_err(|_| Status::BadArgument)
}

#[cfg(test)]
mod tests {
    use crate::pipeline::tests::vpc_nic;
    use crate::testing::FakeNic;
    use crate::Platform;
    use shared_regs::admin::{AdminCmd, Opcode, Status};
    use shared_regs::entry::*;
    use shared_regs::Le16;
    use zerocopy::FromBytes;

    const BUF: u64 = 0xA000;

    /// Reads a whole table, `per_read` bytes of buffer at a time.
    fn read_all<E: FromBytes + Copy>(
        nic: &mut FakeNic,
        table: TableId,
        route_table: u16,
        per_read: u32,
    ) -> Result<std::vec::Vec<E>, Status> {
        let mut out = std::vec::Vec::new();
        let mut cursor = CURSOR_START;
        let size = core::mem::size_of::<E>();
        loop {
            let q = TableReadQuery {
                table: table as u8,
                reserved: 0,
                route_table: Le16::new(route_table),
                cursor: cursor.into(),
            };
            let mut cmd = AdminCmd::new(Opcode::TableRead, &q);
            cmd.buf_addr.set(BUF);
            cmd.buf_len.set(per_read);
            nic.submit(cmd).completion().unwrap()?;
            let mut raw = std::vec![0u8; per_read as usize];
            nic.platform
                .dma_read(crate::Function::Pf, BUF, &mut raw)
                .unwrap();
            let (h, rest) = TableReadHeader::read_from_prefix(&raw).unwrap();
            for i in 0..h.count.get() as usize {
                out.push(E::read_from_bytes(&rest[i * size..(i + 1) * size]).unwrap());
            }
            cursor = h.next_cursor.get();
            if cursor == CURSOR_END {
                return Ok(out);
            }
            assert!(h.count.get() > 0, "a read that fits nothing must not loop");
        }
    }

    #[test]
    fn tables_read_back_as_programmed_across_small_reads() {
        let mut nic = vpc_nic();
        let vpcs: std::vec::Vec<VpcEntry> = read_all(&mut nic, TableId::Vpc, 0, 64).unwrap();
        assert_eq!(vpcs.len(), 1);
        assert_eq!(
            (vpcs[0].vni.get(), vpcs[0].cidr, vpcs[0].cidr_len),
            (100, [10, 0, 0, 0], 16)
        );
        let subnets: std::vec::Vec<SubnetEntry> =
            read_all(&mut nic, TableId::Subnet, 0, 40).unwrap();
        assert_eq!(subnets.len(), 2);
        let routes: std::vec::Vec<RouteEntry> = read_all(&mut nic, TableId::Route, 0, 30).unwrap();
        assert_eq!(routes.len(), 1, "the local route");
        assert_eq!(routes[0].route_target(), Some(RouteTarget::Local));
        let vfs: std::vec::Vec<VfReadEntry> = read_all(&mut nic, TableId::Vf, 0, 70).unwrap();
        assert_eq!(vfs.len(), 3);
        assert_eq!(vfs[2].entry.primary_ip, [10, 0, 2, 20]);
        assert_eq!(vfs[2].rings_enabled, 1);
        // Three instances, two subnet gateways and broadcasts, the VNI anchor, 2 a read.
        let maps: std::vec::Vec<MappingEntry> =
            read_all(&mut nic, TableId::Mapping, 0, 56).unwrap();
        assert_eq!(maps.len(), 8);
        let kinds = |k: MappingLocation| maps.iter().filter(|m| m.location == k as u8).count();
        assert_eq!(kinds(MappingLocation::LocalVf), 3);
        assert_eq!(kinds(MappingLocation::Gateway), 2);
        assert_eq!(kinds(MappingLocation::Broadcast), 2);
        assert_eq!(kinds(MappingLocation::VniAnchor), 1);
        let up: std::vec::Vec<UplinkEntry> = read_all(&mut nic, TableId::Uplink, 0, 64).unwrap();
        assert!(up.is_empty());
    }

    #[test]
    fn vpc_domains_read_back_for_the_vpcs_that_have_one() {
        let mut nic = vpc_nic();
        let none: std::vec::Vec<VpcDomainEntry> =
            read_all(&mut nic, TableId::VpcDomain, 0, 200).unwrap();
        assert!(none.is_empty(), "the test VPC has no domain");
        let domain = b"prod.internal";
        nic.platform
            .dma_write(crate::Function::Pf, BUF, domain)
            .unwrap();
        let mut cmd = AdminCmd::new(Opcode::VpcAdd, &crate::testing::vpc::other_vpc());
        cmd.buf_addr.set(BUF);
        cmd.buf_len.set(domain.len() as u32);
        nic.submit(cmd).completion().unwrap().unwrap();
        // One entry a read: the cursor goes past the VPC without a domain.
        let got: std::vec::Vec<VpcDomainEntry> =
            read_all(&mut nic, TableId::VpcDomain, 0, 80).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].vpc_id.get(), 1);
        assert_eq!(&got[0].name[..usize::from(got[0].len)], domain);
        assert!(got[0].name[domain.len()..].iter().all(|&b| b == 0));
    }

    #[test]
    fn bad_table_and_missing_route_table_are_refused() {
        let mut nic = vpc_nic();
        assert_eq!(
            read_all::<RouteEntry>(&mut nic, TableId::Route, 9, 64).map(|v| v.len()),
            Err(Status::NotFound)
        );
        let q = TableReadQuery {
            table: 99,
            ..Default::default()
        };
        let mut cmd = AdminCmd::new(Opcode::TableRead, &q);
        cmd.buf_addr.set(BUF);
        cmd.buf_len.set(64);
        assert_eq!(nic.submit(cmd).completion(), Some(Err(Status::BadArgument)));
        cmd = AdminCmd::new(
            Opcode::TableRead,
            &TableReadQuery {
                table: 1,
                ..Default::default()
            },
        );
        cmd.buf_addr.set(BUF);
        cmd.buf_len.set(4);
        assert_eq!(
            nic.submit(cmd).completion(),
            Some(Err(Status::BufferTooSmall))
        );
    }
}
