//! The admin queue (device side of `shared_regs::admin`) and the command handler. Every
//! field is validated before anything changes, so a refused command changes nothing.
//!
//! A command with `CmdFlags::REPLACE` (ABI 1.3) goes through the same handler as its add,
//! with the same validation; where the add would take a free slot, the replace takes the
//! existing entry and writes the new one over it in one assignment (indexed tables), one
//! record write (routes) or make-before-break (mappings), so the pipeline sees the entry
//! before or after, never half written.
use crate::counters::CounterBlock;
use crate::platform::{Function, Platform};
use crate::tables::lpm::{prefix_mask, Route, Target};
use crate::tables::mapping::{Location, Mapping, MappingKey};
use crate::tables::vpc::{Gateway, RouteTable, Subnet, VfConfig, Vpc};
use crate::tables::{TableError, Tables, Uplink};
use shared_regs::admin::{AdminCmd, CmdFlags, Opcode, Status, CMD_SIZE};
use shared_regs::entry::{
    GatewayEntry, GatewayKind, IdParam, MappingEntry, MappingLocation, PortInfo, RouteEntry,
    RouteTableEntry, StatsQuery, SubnetEntry, UplinkEntry, VfAddrEntry, VfEntry, VfFlags,
    VfFlagsEntry, VpcEntry, DOMAIN_MAX, MAIN_ROUTE_TABLE, UPLINK_FUNCTION, VF_SECONDARY_ADDRS,
    VNI_MAX, VPC_DNS_SERVERS,
};
use shared_regs::{pf, vf, Le16, Le32, VF_MTU};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Most commands taken in one poll, so the pipeline keeps running under a command flood.
const MAX_COMMANDS_PER_POLL: u32 = 64;
/// Largest admin queue accepted.
pub const MAX_ENTRIES: u32 = 4096;
/// Gateways a NIC can have: a VPC's trusted gateways are a 64-bit mask.
pub const MAX_GATEWAYS: u16 = 64;
/// Default uplink MTU (F13).
const DEFAULT_UPLINK_MTU: u16 = 9216;

/// The admin queue as the firmware tracks it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct AdminQueue {
    running: bool,
    base: u64,
    size: u32,
    head: u32,
    /// The last command completed with a status other than OK: a following command with
    /// `CmdFlags::CHAIN` is skipped.
    chain_broken: bool,
}

impl From<TableError> for Status {
    fn from(e: TableError) -> Status {
        match e {
            TableError::Exists => Status::Exists,
            TableError::NotFound => Status::NotFound,
            TableError::Full => Status::TableFull,
            TableError::UnderlayFull => Status::UnderlayFull,
        }
    }
}

/// What a command handler needs besides the tables.
pub(crate) struct Context<'a, 'm, P> {
    pub platform: &'a mut P,
    pub tables: &'a mut Tables<'m>,
    pub counters: &'a mut [CounterBlock],
    /// A frame buffer commands may use (`TRACE`): the batch is idle between batches.
    pub scratch: Option<&'a mut crate::frame::FrameBuf>,
    /// Ring state of each VF, for `TABLE_READ`.
    pub rings: &'a [crate::rings::VfRings],
    /// The uplink port, for `PORT_GET`.
    pub port: &'a mut crate::port::PortState,
}

impl AdminQueue {
    /// Forgets the queue (reset).
    pub fn stop(&mut self) {
        *self = AdminQueue::default();
    }

    /// Follows `CONTROL.ADMINQ_ENABLE`, then serves up to [`MAX_COMMANDS_PER_POLL`]
    /// commands. Returns true when it completed any.
    pub fn poll<P: Platform>(&mut self, ctx: &mut Context<'_, '_, P>) -> bool {
        let p = &mut *ctx.platform;
        let control = pf::Control::from_bits_retain(p.read_reg(Function::Pf, pf::CONTROL));
        let enable = control.contains(pf::Control::ADMINQ_ENABLE);
        if !enable {
            if self.running {
                self.stop();
            }
            return false;
        }
        if !self.running && !self.start(p) {
            return false;
        }
        let mask = self.size.wrapping_sub(1);
        let mut done = 0;
        while done < MAX_COMMANDS_PER_POLL {
            let tail = ctx.platform.read_reg(Function::Pf, pf::ADMINQ_TAIL) & mask;
            if tail == self.head {
                break;
            }
            let addr = self
                .base
                .wrapping_add(u64::from(self.head).wrapping_mul(CMD_SIZE as u64));
            self.chain_broken = !serve_one(ctx, addr, self.chain_broken);
            self.head = self.head.wrapping_add(1) & mask;
            ctx.platform
                .write_reg(Function::Pf, pf::ADMINQ_HEAD, self.head);
            done = done.saturating_add(1);
        }
        // Route tables too big to rebuild at every change (see `RouteTables::commit`) are
        // rebuilt once the round's commands are done, before the data plane runs again.
        ctx.tables.routes.commit();
        if done > 0 {
            ctx.platform
                .raise_irq(Function::Pf, pf::Intr::ADMINQ.bits());
        }
        done > 0
    }

    fn start<P: Platform>(&mut self, p: &mut P) -> bool {
        let base = u64::from(p.read_reg(Function::Pf, pf::ADMINQ_BASE_HI)) << 32
            | u64::from(p.read_reg(Function::Pf, pf::ADMINQ_BASE_LO));
        let size = p.read_reg(Function::Pf, pf::ADMINQ_SIZE);
        let status = pf::Status::from_bits_retain(p.read_reg(Function::Pf, pf::STATUS));
        if !size.is_power_of_two() || size > MAX_ENTRIES || !base.is_multiple_of(CMD_SIZE as u64) {
            if !status.contains(pf::Status::ADMINQ_ERROR) {
                warn!("admin queue refused: base {:#x}, {} entries", base, size);
                p.write_reg(
                    Function::Pf,
                    pf::STATUS,
                    (status | pf::Status::ADMINQ_ERROR).bits(),
                );
            }
            return false;
        }
        p.write_reg(
            Function::Pf,
            pf::STATUS,
            status.difference(pf::Status::ADMINQ_ERROR).bits(),
        );
        *self = AdminQueue {
            running: true,
            base,
            size,
            head: 0,
            chain_broken: false,
        };
        p.write_reg(Function::Pf, pf::ADMINQ_HEAD, 0);
        true
    }
}

/// Reads, executes and completes the command at `addr`; whether it completed with OK.
/// `chain_broken`: the command before it did not, so a command flagged `CHAIN` is skipped.
fn serve_one<P: Platform>(ctx: &mut Context<'_, '_, P>, addr: u64, chain_broken: bool) -> bool {
    let mut raw = [0u8; CMD_SIZE];
    if ctx.platform.dma_read(Function::Pf, addr, &mut raw).is_err() {
        // Nothing to complete: the driver's admin queue memory is gone. It sees the head
        // move past the entry without DONE and times out on it.
        error!(
            "admin queue: the command at {:#x} cannot be read by DMA",
            addr
        );
        return false;
    }
    let Ok(cmd) = AdminCmd::read_from_bytes(&raw) else {
        return false;
    };
    let chained = CmdFlags::from_bits_retain(cmd.flags.get()).contains(CmdFlags::CHAIN);
    let outcome = if chained && chain_broken {
        Err(Status::Skipped)
    } else {
        execute(ctx, &cmd)
    };
    let (status, result) = match outcome {
        Ok(result) => (Status::Ok, result),
        Err(Status::Skipped) => (Status::Skipped, 0),
        Err(status) => {
            warn!(
                "admin {} refused: {} ({})",
                Opcode::from_u16(cmd.opcode.get()).map_or("unknown opcode", Opcode::name),
                status.description(),
                status as u16
            );
            (status, 0)
        }
    };
    let mut done = cmd;
    done.status = Le16::new(status as u16);
    done.result = Le32::new(result);
    // Status and result first, DONE last: the driver trusts them once it sees DONE.
    let head_bytes = done.as_bytes().get(4..24).unwrap_or(&[]);
    let _ = ctx
        .platform
        .dma_write(Function::Pf, addr.wrapping_add(4), head_bytes);
    let _ = ctx.platform.dma_write(
        Function::Pf,
        addr.wrapping_add(2),
        &CmdFlags::DONE.bits().to_le_bytes(),
    );
    status == Status::Ok
}

pub(crate) fn params<T: FromBytes + KnownLayout + Immutable>(cmd: &AdminCmd) -> Result<T, Status> {
    cmd.params_as::<T>().ok_or(Status::BadArgument)
}

fn ipv4(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// True for a prefix with no host bits set and a length of at most 32.
fn is_prefix(addr: u32, len: u8) -> bool {
    len <= 32 && addr & !prefix_mask(len) == 0
}

fn is_unicast_mac(mac: &[u8; 6]) -> bool {
    mac[0] & 1 == 0 && *mac != [0; 6]
}

/// Executes one command. `Ok` carries the completion's `result`.
fn execute<P: Platform>(ctx: &mut Context<'_, '_, P>, cmd: &AdminCmd) -> Result<u32, Status> {
    let op = Opcode::from_u16(cmd.opcode.get()).ok_or(Status::BadOpcode)?;
    let replace = CmdFlags::from_bits_retain(cmd.flags.get()).contains(CmdFlags::REPLACE);
    if replace && !op.takes_replace() {
        return Err(Status::BadArgument);
    }
    match op {
        Opcode::Nop => Ok(0),
        Opcode::GetStats => get_stats(ctx, cmd),
        Opcode::ClearStats => {
            let q: StatsQuery = params(cmd)?;
            let block = counter_block(ctx, q.function.get())?;
            *block = CounterBlock::ZERO;
            Ok(0)
        }
        Opcode::VpcAdd => vpc_add(ctx, cmd, replace),
        Opcode::VpcDel => vpc_del(ctx.tables, params(cmd)?),
        Opcode::SubnetAdd => subnet_add(ctx.tables, params(cmd)?, replace),
        Opcode::SubnetDel => subnet_del(ctx.tables, params(cmd)?),
        Opcode::RouteTableAdd => route_table_add(ctx.tables, params(cmd)?),
        Opcode::RouteTableDel => route_table_del(ctx.tables, params(cmd)?),
        Opcode::RouteAdd => route_add(ctx.tables, params(cmd)?, replace),
        Opcode::RouteDel => route_del(ctx.tables, params(cmd)?),
        Opcode::MappingAdd => mapping_add(ctx.tables, params(cmd)?, replace),
        Opcode::MappingDel => mapping_del(ctx.tables, params(cmd)?),
        Opcode::VfSet => vf_set(ctx, params(cmd)?, replace),
        Opcode::VfClear => vf_clear(ctx, params(cmd)?),
        Opcode::UplinkSet => uplink_set(ctx.tables, params(cmd)?, replace),
        Opcode::VfAddrAdd => vf_addr_add(ctx.tables, params(cmd)?),
        Opcode::VfAddrDel => vf_addr_del(ctx.tables, params(cmd)?),
        Opcode::VfFlagsSet => vf_flags_set(ctx.tables, params(cmd)?),
        Opcode::GatewayAdd => gateway_add(ctx.tables, params(cmd)?, replace),
        Opcode::GatewayDel => gateway_del(ctx.tables, params(cmd)?),
        Opcode::Trace => crate::trace::run(ctx, cmd),
        Opcode::TableRead => crate::table_read::run(ctx, cmd),
        Opcode::PortGet => port_get(ctx, cmd),
    }
}

/// `PORT_GET`: reads the module again and reports the port.
fn port_get<P: Platform>(ctx: &mut Context<'_, '_, P>, cmd: &AdminCmd) -> Result<u32, Status> {
    const LEN: usize = core::mem::size_of::<PortInfo>();
    let len = u32::try_from(LEN).map_err(|_| Status::BadArgument)?;
    if cmd.buf_len.get() < len {
        return Err(Status::BufferTooSmall);
    }
    ctx.port.read_module(ctx.platform);
    // The LEDs as they are now, not as the end of this poll will set them: an `UPLINK_SET`
    // served just before in the same poll shows.
    let link_up = ctx.tables.uplink.is_some();
    let now = ctx.platform.now_us();
    ctx.port.drive_leds(ctx.platform, link_up, true, now);
    let info = ctx.port.info(link_up);
    ctx.platform
        .dma_write(Function::Pf, cmd.buf_addr.get(), info.as_bytes())
        .map_err(|_| Status::DmaError)?;
    Ok(len)
}

fn counter_block<'c, P>(
    ctx: &'c mut Context<'_, '_, P>,
    function: u16,
) -> Result<&'c mut CounterBlock, Status> {
    let num_vfs = ctx.tables.num_vfs();
    let index = if function == UPLINK_FUNCTION {
        num_vfs
    } else if function < num_vfs {
        function
    } else {
        return Err(Status::BadArgument);
    };
    ctx.counters
        .get_mut(usize::from(index))
        .ok_or(Status::BadArgument)
}

fn get_stats<P: Platform>(ctx: &mut Context<'_, '_, P>, cmd: &AdminCmd) -> Result<u32, Status> {
    let q: StatsQuery = params(cmd)?;
    let wire = counter_block(ctx, q.function.get())?.to_wire();
    let bytes = wire.as_bytes();
    let len = u32::try_from(bytes.len()).map_err(|_| Status::BadArgument)?;
    if cmd.buf_len.get() < len {
        return Err(Status::BufferTooSmall);
    }
    ctx.platform
        .dma_write(Function::Pf, cmd.buf_addr.get(), bytes)
        .map_err(|_| Status::DmaError)?;
    Ok(len)
}

/// The free slot `id` of an indexed table: `BadArgument` past the end, `Exists` if taken.
fn free_slot<T>(table: &mut [Option<T>], id: u16) -> Result<&mut Option<T>, Status> {
    let slot = table.get_mut(usize::from(id)).ok_or(Status::BadArgument)?;
    if slot.is_some() {
        return Err(Status::Exists);
    }
    Ok(slot)
}

/// The taken slot `id`: `BadArgument` past the end, `NotFound` if empty.
fn taken_slot<T>(table: &mut [Option<T>], id: u16) -> Result<&mut Option<T>, Status> {
    let slot = table.get_mut(usize::from(id)).ok_or(Status::BadArgument)?;
    if slot.is_none() {
        return Err(Status::NotFound);
    }
    Ok(slot)
}

/// Reads the domain name a `VPC_ADD` may carry in its indirect buffer.
fn vpc_domain<P: Platform>(p: &mut P, cmd: &AdminCmd) -> Result<([u8; DOMAIN_MAX], u8), Status> {
    let mut domain = [0u8; DOMAIN_MAX];
    let len = usize::try_from(cmd.buf_len.get()).map_err(|_| Status::BadArgument)?;
    if len == 0 {
        return Ok((domain, 0));
    }
    let buf = domain.get_mut(..len).ok_or(Status::BadArgument)?;
    p.dma_read(Function::Pf, cmd.buf_addr.get(), buf)
        .map_err(|_| Status::DmaError)?;
    let valid = buf
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.');
    if !valid {
        return Err(Status::BadArgument);
    }
    Ok((domain, u8::try_from(len).map_err(|_| Status::BadArgument)?))
}

fn vpc_add<P: Platform>(
    ctx: &mut Context<'_, '_, P>,
    cmd: &AdminCmd,
    replace: bool,
) -> Result<u32, Status> {
    let e: VpcEntry = params(cmd)?;
    let (domain, domain_len) = vpc_domain(ctx.platform, cmd)?;
    let t = &mut *ctx.tables;
    let vni = e.vni.get();
    let cidr = ipv4(e.cidr);
    let dns_count = usize::from(e.dns_count);
    if vni == 0 || vni > VNI_MAX || e.cidr_len == 0 || !is_prefix(cidr, e.cidr_len) {
        return Err(Status::BadArgument);
    }
    if dns_count > VPC_DNS_SERVERS {
        return Err(Status::BadArgument);
    }
    let main = e.main_route_table.get();
    if main != MAIN_ROUTE_TABLE && usize::from(main) >= t.route_tables.len() {
        return Err(Status::BadArgument);
    }
    let id = e.id.get();
    let vpc = |gateway_mask| Vpc {
        vni,
        cidr,
        cidr_len: e.cidr_len,
        main_route_table: (main != MAIN_ROUTE_TABLE).then_some(main),
        dns: e.dns.map(ipv4),
        dns_count: e.dns_count,
        domain,
        domain_len,
        gateway_mask,
    };
    if replace {
        // VNI and CIDR are the VPC's identity: mappings are keyed by the one, every route
        // table holds the other's local route.
        let slot = taken_slot(t.vpcs, id)?;
        let old = slot.ok_or(Status::NotFound)?;
        if old.vni != vni || old.cidr != cidr || old.cidr_len != e.cidr_len {
            return Err(Status::BadArgument);
        }
        *slot = Some(vpc(old.gateway_mask));
        return Ok(0);
    }
    if t.vpcs.iter().flatten().any(|v| v.vni == vni) {
        return Err(Status::Exists);
    }
    free_slot(t.vpcs, id)?;
    // The VNI's anchor mapping: decapsulation finds the VPC by VNI in one lookup (F15).
    t.mappings.insert(vni_anchor(vni), anchor_mapping(id))?;
    let slot = free_slot(t.vpcs, id)?;
    *slot = Some(vpc(0));
    Ok(0)
}

fn vpc_del(t: &mut Tables<'_>, e: IdParam) -> Result<u32, Status> {
    let id = e.id.get();
    taken_slot(t.vpcs, id)?;
    let used = t.subnets.iter().flatten().any(|s| s.vpc == id)
        || t.route_tables.iter().flatten().any(|r| r.vpc == id)
        || t.routes_target_vpc(id);
    if used {
        return Err(Status::InUse);
    }
    if let Some(vpc) = taken_slot(t.vpcs, id)?.take() {
        let _ = t.mappings.remove(vni_anchor(vpc.vni));
    }
    Ok(0)
}

/// The key of a VNI's anchor mapping: address 0.0.0.0, which no instance can have.
pub(crate) fn vni_anchor(vni: u32) -> MappingKey {
    MappingKey { vni, ip: 0 }
}

fn anchor_mapping(vpc: u16) -> Mapping {
    Mapping {
        mac: [0; 6],
        location: Location::Vpc(vpc),
    }
}

fn route_table_add(t: &mut Tables<'_>, e: RouteTableEntry) -> Result<u32, Status> {
    let id = e.id.get();
    let vpc_id = e.vpc_id.get();
    let vpc = *t.vpc(vpc_id).ok_or(Status::NotFound)?;
    free_slot(t.route_tables, id)?;
    t.routes.clear_table(id);
    let local = Route {
        prefix: vpc.cidr,
        len: vpc.cidr_len,
        target: Target::Local,
    };
    t.routes.insert(id, local)?;
    *free_slot(t.route_tables, id)? = Some(RouteTable { vpc: vpc_id });
    Ok(0)
}

fn route_table_del(t: &mut Tables<'_>, e: IdParam) -> Result<u32, Status> {
    let id = e.id.get();
    taken_slot(t.route_tables, id)?;
    let used = t.subnets.iter().flatten().any(|s| s.route_table == id)
        || t.vpcs
            .iter()
            .flatten()
            .any(|v| v.main_route_table == Some(id));
    if used {
        return Err(Status::InUse);
    }
    t.routes.clear_table(id);
    let vpc = taken_slot(t.route_tables, id)?.take().map(|rt| rt.vpc);
    if let Some(vpc) = vpc {
        refresh_gateway_mask(t, vpc);
    }
    Ok(0)
}

fn route_key(t: &Tables<'_>, e: &RouteEntry) -> Result<(u16, u32, Vpc, u16), Status> {
    let table = e.table_id.get();
    let prefix = ipv4(e.prefix);
    if !is_prefix(prefix, e.prefix_len) {
        return Err(Status::BadArgument);
    }
    let rt = t.route_table(table).ok_or(Status::NotFound)?;
    let vpc = *t.vpc(rt.vpc).ok_or(Status::NotFound)?;
    Ok((table, prefix, vpc, rt.vpc))
}

/// Recomputes which gateways VPC `vpc` routes to: only those may send into it (F15). A scan
/// of every route of the VPC: for changes that drop a whole route table; a route's own
/// change takes [`gateway_routed`] and [`gateway_unrouted`], so that a big table's routes
/// are not each a scan of all the others.
fn refresh_gateway_mask(t: &mut Tables<'_>, vpc: u16) {
    let mask = vpc_routes(t, vpc)
        .filter_map(|r| match r.target {
            Target::Gateway(g) => Some(gateway_bit(g)),
            _ => None,
        })
        .fold(0u64, |mask, bit| mask | bit);
    if let Some(Some(v)) = t.vpcs.get_mut(usize::from(vpc)) {
        v.gateway_mask = mask;
    }
}

/// Every route of every route table of VPC `vpc`.
fn vpc_routes<'t>(t: &'t Tables<'_>, vpc: u16) -> impl Iterator<Item = Route> + 't {
    t.route_tables
        .iter()
        .enumerate()
        .filter(move |(_, rt)| rt.is_some_and(|rt| rt.vpc == vpc))
        .filter_map(|(id, _)| u16::try_from(id).ok())
        .flat_map(|id| t.routes.routes(id))
}

/// The bit of gateway `g` in a VPC's gateway mask (none for a gateway past 63).
fn gateway_bit(g: u16) -> u64 {
    1u64.checked_shl(u32::from(g)).unwrap_or(0)
}

/// A route of VPC `vpc` now leads to gateway `g`.
fn gateway_routed(t: &mut Tables<'_>, vpc: u16, g: u16) {
    if let Some(Some(v)) = t.vpcs.get_mut(usize::from(vpc)) {
        v.gateway_mask |= gateway_bit(g);
    }
}

/// A route of VPC `vpc` to gateway `g` went: `g` leaves the VPC's mask unless another of
/// its routes still leads there (the scan stops at the first).
fn gateway_unrouted(t: &mut Tables<'_>, vpc: u16, g: u16) {
    if !vpc_routes(t, vpc).any(|r| r.target == Target::Gateway(g)) {
        if let Some(Some(v)) = t.vpcs.get_mut(usize::from(vpc)) {
            v.gateway_mask &= !gateway_bit(g);
        }
    }
}

/// Keeps VPC `vpc`'s gateway mask in step with one route's target going from `old` to
/// `new` (`None`: no route).
fn route_target_changed(t: &mut Tables<'_>, vpc: u16, old: Option<Target>, new: Option<Target>) {
    if let Some(Target::Gateway(g)) = new {
        gateway_routed(t, vpc, g);
    }
    if let Some(Target::Gateway(g)) = old {
        if new != Some(Target::Gateway(g)) {
            gateway_unrouted(t, vpc, g);
        }
    }
}

fn route_add(t: &mut Tables<'_>, e: RouteEntry, replace: bool) -> Result<u32, Status> {
    let (table, prefix, vpc, vpc_id) = route_key(t, &e)?;
    let target = Target::from(e.route_target().ok_or(Status::BadArgument)?);
    match target {
        // The local route is the firmware's own; it exists already.
        Target::Local => return Err(Status::BadArgument),
        Target::Gateway(id) => {
            t.gateway(id).ok_or(Status::NotFound)?;
        }
        Target::Peering(peer) => {
            t.vpc(peer).ok_or(Status::NotFound)?;
        }
        Target::Blackhole | Target::Instance(_) => {}
    }
    let local = prefix == vpc.cidr && e.prefix_len == vpc.cidr_len;
    if replace {
        // The local route is the firmware's own (F8).
        if local {
            return Err(Status::BadArgument);
        }
        let old = t
            .routes
            .replace_target(table, prefix, e.prefix_len, target)?;
        route_target_changed(t, vpc_id, Some(old.target), Some(target));
        return Ok(0);
    }
    if local {
        return Err(Status::Exists);
    }
    t.routes.insert(
        table,
        Route {
            prefix,
            len: e.prefix_len,
            target,
        },
    )?;
    route_target_changed(t, vpc_id, None, Some(target));
    Ok(0)
}

fn route_del(t: &mut Tables<'_>, e: RouteEntry) -> Result<u32, Status> {
    let (table, prefix, vpc, vpc_id) = route_key(t, &e)?;
    if prefix == vpc.cidr && e.prefix_len == vpc.cidr_len {
        // The local route cannot be removed (F8).
        return Err(Status::BadArgument);
    }
    let old = t.routes.remove(table, prefix, e.prefix_len)?;
    route_target_changed(t, vpc_id, Some(old.target), None);
    Ok(0)
}

fn subnet_add(t: &mut Tables<'_>, e: SubnetEntry, replace: bool) -> Result<u32, Status> {
    let id = e.id.get();
    let vpc_id = e.vpc_id.get();
    let prefix = ipv4(e.prefix);
    let len = e.prefix_len;
    if !(16..=28).contains(&len) || !is_prefix(prefix, len) || !is_unicast_mac(&e.gateway_mac) {
        return Err(Status::BadArgument);
    }
    let vpc = *t.vpc(vpc_id).ok_or(Status::NotFound)?;
    if len < vpc.cidr_len || prefix & prefix_mask(vpc.cidr_len) != vpc.cidr {
        return Err(Status::BadArgument);
    }
    let route_table = match e.route_table_id.get() {
        MAIN_ROUTE_TABLE => vpc.main_route_table.ok_or(Status::NotFound)?,
        rt => rt,
    };
    let rt = t.route_table(route_table).ok_or(Status::NotFound)?;
    if rt.vpc != vpc_id {
        return Err(Status::BadArgument);
    }
    if replace {
        return subnet_replace(t, id, vpc.vni, e, route_table);
    }
    let overlaps = t.subnets.iter().flatten().any(|s| {
        let shorter = s.prefix_len.min(len);
        s.vpc == vpc_id && (s.prefix ^ prefix) & prefix_mask(shorter) == 0
    });
    if overlaps {
        return Err(Status::Exists);
    }
    free_slot(t.subnets, id)?;
    let subnet = Subnet {
        vpc: vpc_id,
        route_table,
        prefix,
        prefix_len: len,
        gateway_mac: e.gateway_mac,
    };
    // The gateway's and the broadcast address's own mappings let the pipeline recognise
    // them from any subnet (F10, F6).
    let (gateway, broadcast) = subnet_mappings(vpc.vni, &subnet);
    t.mappings.insert(gateway.0, gateway.1)?;
    if let Err(e) = t.mappings.insert(broadcast.0, broadcast.1) {
        let _ = t.mappings.remove(gateway.0);
        return Err(e.into());
    }
    *free_slot(t.subnets, id)? = Some(subnet);
    Ok(0)
}

/// `SUBNET_ADD` with `REPLACE`: route table and gateway MAC of subnet `id` (validated by
/// the caller as for an add), VPC and CIDR unchanged.
fn subnet_replace(
    t: &mut Tables<'_>,
    id: u16,
    vni: u32,
    e: SubnetEntry,
    route_table: u16,
) -> Result<u32, Status> {
    let old = taken_slot(t.subnets, id)?.ok_or(Status::NotFound)?;
    if old.vpc != e.vpc_id.get() || old.prefix != ipv4(e.prefix) || old.prefix_len != e.prefix_len {
        return Err(Status::BadArgument);
    }
    let new = Subnet {
        route_table,
        gateway_mac: e.gateway_mac,
        ..old
    };
    if new.gateway_mac != old.gateway_mac {
        let (gateway, broadcast) = subnet_mappings(vni, &new);
        // Both are there (SUBNET_ADD made them), so neither replace below can fail: check
        // first, so that a refusal changes nothing.
        if t.mappings.get(gateway.0).is_none() || t.mappings.get(broadcast.0).is_none() {
            return Err(Status::NotFound);
        }
        t.mappings.replace(gateway.0, gateway.1)?;
        t.mappings.replace(broadcast.0, broadcast.1)?;
    }
    *taken_slot(t.subnets, id)? = Some(new);
    Ok(0)
}

/// The firmware's own mappings for a subnet: its gateway and its broadcast address.
fn subnet_mappings(vni: u32, s: &Subnet) -> ((MappingKey, Mapping), (MappingKey, Mapping)) {
    let key = |ip| MappingKey { vni, ip };
    let value = |location| Mapping {
        mac: s.gateway_mac,
        location,
    };
    (
        (key(s.gateway_ip()), value(Location::Gateway)),
        (key(s.broadcast()), value(Location::Broadcast)),
    )
}

fn subnet_del(t: &mut Tables<'_>, e: IdParam) -> Result<u32, Status> {
    let id = e.id.get();
    let subnet = taken_slot(t.subnets, id)?.ok_or(Status::NotFound)?;
    if t.vfs.iter().flatten().any(|v| v.subnet == id) {
        return Err(Status::InUse);
    }
    if let Some(vpc) = t.vpc(subnet.vpc).copied() {
        let (gateway, broadcast) = subnet_mappings(vpc.vni, &subnet);
        let _ = t.mappings.remove(gateway.0);
        let _ = t.mappings.remove(broadcast.0);
    }
    *taken_slot(t.subnets, id)? = None;
    Ok(0)
}

fn mapping_key(t: &Tables<'_>, vni: u32, ip: [u8; 4]) -> Result<MappingKey, Status> {
    if vni == 0 || vni > VNI_MAX {
        return Err(Status::BadArgument);
    }
    if t.mappings.get(vni_anchor(vni)).is_none() {
        return Err(Status::NotFound);
    }
    let ip = ipv4(ip);
    if ip == 0 {
        return Err(Status::BadArgument);
    }
    Ok(MappingKey { vni, ip })
}

fn mapping_add(t: &mut Tables<'_>, e: MappingEntry, replace: bool) -> Result<u32, Status> {
    let key = mapping_key(t, e.vni.get(), e.ip)?;
    if !is_unicast_mac(&e.mac) {
        return Err(Status::BadArgument);
    }
    let location = match MappingLocation::from_u8(e.location).ok_or(Status::BadArgument)? {
        MappingLocation::LocalVf => {
            let vf = e.vf.get();
            if vf >= t.num_vfs() {
                return Err(Status::BadArgument);
            }
            Location::LocalVf(vf)
        }
        MappingLocation::Remote => Location::Remote {
            underlay_ip: ipv4(e.underlay_ip),
        },
        // Only the firmware makes these.
        MappingLocation::Gateway | MappingLocation::VniAnchor | MappingLocation::Broadcast => {
            return Err(Status::BadArgument)
        }
    };
    let value = Mapping {
        mac: e.mac,
        location,
    };
    if replace {
        match t.mappings.get(key).ok_or(Status::NotFound)?.location {
            // The firmware's own mappings belong to their subnet or VPC.
            Location::Gateway | Location::Broadcast | Location::Vpc(_) => {
                return Err(Status::BadArgument)
            }
            Location::LocalVf(_) | Location::Remote { .. } => {}
        }
        t.mappings.replace(key, value)?;
        return Ok(0);
    }
    t.mappings.insert(key, value)?;
    Ok(0)
}

fn mapping_del(t: &mut Tables<'_>, e: MappingEntry) -> Result<u32, Status> {
    let key = mapping_key(t, e.vni.get(), e.ip)?;
    match t.mappings.get(key) {
        // Gateway mappings belong to their subnet.
        Some(m)
            if matches!(
                m.location,
                Location::Gateway | Location::Broadcast | Location::Vpc(_)
            ) =>
        {
            Err(Status::BadArgument)
        }
        Some(_) => {
            t.mappings.remove(key)?;
            Ok(0)
        }
        None => Err(Status::NotFound),
    }
}

/// True for the addresses Amazon VPC reserves in a subnet: base, +1, +2, +3 and the last.
fn is_reserved(s: &Subnet, ip: u32) -> bool {
    ip.wrapping_sub(s.prefix) <= 3 || ip == s.broadcast()
}

fn vf_set<P: Platform>(
    ctx: &mut Context<'_, '_, P>,
    e: VfEntry,
    replace: bool,
) -> Result<u32, Status> {
    let t = &mut *ctx.tables;
    let index = e.vf.get();
    let flags = VfFlags::from_bits(e.flags.get()).ok_or(Status::BadArgument)?;
    let ip = ipv4(e.primary_ip);
    if !is_unicast_mac(&e.mac) {
        return Err(Status::BadArgument);
    }
    let subnet = *t.subnet(e.subnet_id.get()).ok_or(Status::NotFound)?;
    if !subnet.contains(ip) || is_reserved(&subnet, ip) {
        return Err(Status::BadArgument);
    }
    let new = VfConfig {
        mac: e.mac,
        subnet: e.subnet_id.get(),
        primary_ip: ip,
        src_dst_check: flags.contains(VfFlags::SRC_DST_CHECK),
        secondary: [0; VF_SECONDARY_ADDRS],
        secondary_count: 0,
    };
    let f = Function::Vf(index);
    let (lo, hi) = vf::mac_to_regs(e.mac);
    if replace {
        let slot = taken_slot(t.vfs, index)?;
        let old = slot.ok_or(Status::NotFound)?;
        // The secondary addresses stay; each must still be one the VF may hold.
        let bad = old
            .secondaries()
            .iter()
            .any(|&a| a == ip || !subnet.contains(a) || is_reserved(&subnet, a));
        if bad {
            return Err(Status::BadArgument);
        }
        *slot = Some(VfConfig {
            secondary: old.secondary,
            secondary_count: old.secondary_count,
            ..new
        });
        // Link, MTU, rings and counters are left alone: the VM sees no flap.
        if old.mac != e.mac {
            ctx.platform.write_reg(f, vf::MAC_LO, lo);
            ctx.platform.write_reg(f, vf::MAC_HI, hi);
        }
        return Ok(0);
    }
    let slot = free_slot(t.vfs, index)?;
    *slot = Some(new);
    ctx.platform.write_reg(f, vf::MAC_LO, lo);
    ctx.platform.write_reg(f, vf::MAC_HI, hi);
    ctx.platform.write_reg(f, vf::MTU, VF_MTU);
    ctx.platform.write_reg(f, vf::LINK, vf::Link::UP.bits());
    Ok(0)
}

fn vf_clear<P: Platform>(ctx: &mut Context<'_, '_, P>, e: IdParam) -> Result<u32, Status> {
    let index = e.id.get();
    *taken_slot(ctx.tables.vfs, index)? = None;
    let f = Function::Vf(index);
    for reg in [vf::MAC_LO, vf::MAC_HI, vf::MTU, vf::LINK] {
        ctx.platform.write_reg(f, reg, 0);
    }
    Ok(0)
}

/// The assigned VF `index` and its subnet.
fn assigned_vf<'t>(
    t: &'t mut Tables<'_>,
    index: u16,
) -> Result<(&'t mut VfConfig, Subnet), Status> {
    if index >= t.num_vfs() {
        return Err(Status::BadArgument);
    }
    let subnet_id = t.vf(index).ok_or(Status::NotFound)?.subnet;
    let subnet = *t.subnet(subnet_id).ok_or(Status::NotFound)?;
    let cfg = t
        .vfs
        .get_mut(usize::from(index))
        .ok_or(Status::BadArgument)?
        .as_mut()
        .ok_or(Status::NotFound)?;
    Ok((cfg, subnet))
}

fn vf_addr_add(t: &mut Tables<'_>, e: VfAddrEntry) -> Result<u32, Status> {
    let ip = ipv4(e.ip);
    let (cfg, subnet) = assigned_vf(t, e.vf.get())?;
    if !subnet.contains(ip) || is_reserved(&subnet, ip) {
        return Err(Status::BadArgument);
    }
    if cfg.owns(ip) {
        return Err(Status::Exists);
    }
    let count = usize::from(cfg.secondary_count);
    let slot = cfg.secondary.get_mut(count).ok_or(Status::TableFull)?;
    *slot = ip;
    cfg.secondary_count = cfg.secondary_count.saturating_add(1);
    Ok(0)
}

fn vf_addr_del(t: &mut Tables<'_>, e: VfAddrEntry) -> Result<u32, Status> {
    let ip = ipv4(e.ip);
    let (cfg, _) = assigned_vf(t, e.vf.get())?;
    let at = cfg
        .secondaries()
        .iter()
        .position(|&a| a == ip)
        .ok_or(Status::NotFound)?;
    // Keep the valid addresses contiguous: the last one takes the removed one's place.
    let last = usize::from(cfg.secondary_count)
        .checked_sub(1)
        .ok_or(Status::NotFound)?;
    cfg.secondary.swap(at, last);
    if let Some(s) = cfg.secondary.get_mut(last) {
        *s = 0;
    }
    cfg.secondary_count = cfg.secondary_count.saturating_sub(1);
    Ok(0)
}

fn vf_flags_set(t: &mut Tables<'_>, e: VfFlagsEntry) -> Result<u32, Status> {
    let flags = VfFlags::from_bits(e.flags.get()).ok_or(Status::BadArgument)?;
    let (cfg, _) = assigned_vf(t, e.vf.get())?;
    cfg.src_dst_check = flags.contains(VfFlags::SRC_DST_CHECK);
    Ok(0)
}

fn gateway_add(t: &mut Tables<'_>, e: GatewayEntry, replace: bool) -> Result<u32, Status> {
    let kind = GatewayKind::from_u8(e.kind).ok_or(Status::BadArgument)?;
    let underlay_ip = ipv4(e.underlay_ip);
    if !is_unicast_mac(&e.mac) || underlay_ip == 0 {
        return Err(Status::BadArgument);
    }
    // A VPC trusts the gateways it routes to by a 64-bit mask (F15).
    if e.id.get() >= MAX_GATEWAYS {
        return Err(Status::BadArgument);
    }
    let slot = if replace {
        taken_slot(t.gateways, e.id.get())?
    } else {
        free_slot(t.gateways, e.id.get())?
    };
    *slot = Some(Gateway {
        kind: kind as u8,
        underlay_ip,
        mac: e.mac,
    });
    Ok(0)
}

fn gateway_del(t: &mut Tables<'_>, e: IdParam) -> Result<u32, Status> {
    let id = e.id.get();
    taken_slot(t.gateways, id)?;
    let used = (0..t.route_tables.len())
        .filter_map(|r| u16::try_from(r).ok())
        .any(|r| t.routes.routes(r).any(|x| x.target == Target::Gateway(id)));
    if used {
        return Err(Status::InUse);
    }
    *taken_slot(t.gateways, id)? = None;
    Ok(0)
}

fn uplink_set(t: &mut Tables<'_>, e: UplinkEntry, replace: bool) -> Result<u32, Status> {
    let mtu = match e.mtu.get() {
        0 => DEFAULT_UPLINK_MTU,
        m if (1280..=DEFAULT_UPLINK_MTU).contains(&m) => m,
        _ => return Err(Status::BadArgument),
    };
    if !is_unicast_mac(&e.mac) || !is_unicast_mac(&e.next_hop_mac) {
        return Err(Status::BadArgument);
    }
    if replace && t.uplink.is_none() {
        return Err(Status::NotFound);
    }
    t.uplink = Some(Uplink {
        mac: e.mac,
        next_hop_mac: e.next_hop_mac,
        underlay_ip: ipv4(e.underlay_ip),
        mtu,
    });
    Ok(0)
}

#[cfg(test)]
mod tests {
    use crate::pipeline::tests::vpc_nic;
    use crate::testing::{FakeNic, Sizes};
    use shared_regs::admin::{AdminCmd, Opcode, Status};
    use shared_regs::entry::*;
    use shared_regs::{Le16, Le32};

    fn route(table: u16, prefix: [u8; 4], len: u8, target: RouteTarget) -> RouteEntry {
        RouteEntry::new(table, prefix.into(), len, target)
    }

    /// Every table, dumped, to prove a refused command changed nothing.
    fn snapshot(nic: &FakeNic) -> std::string::String {
        let t = nic.fw.tables();
        let routes: std::vec::Vec<_> = (0..t.route_tables.len() as u16)
            .flat_map(|i| t.routes.routes(i).map(move |r| (i, r)))
            .collect();
        let maps: std::vec::Vec<_> = t.mappings.iter().collect();
        std::format!(
            "{:?}{:?}{:?}{:?}{:?}{:?}{:?}",
            t.vfs,
            t.vpcs,
            t.subnets,
            t.route_tables,
            routes,
            maps,
            t.uplink
        )
    }

    /// A VPC's gateway mask (F15), kept route by route, is what a scan of all its routes
    /// makes, through random adds, replaces and deletes over two route tables.
    #[test]
    fn the_gateway_mask_kept_route_by_route_is_the_full_scans() {
        use crate::testing::Rng;
        let mut nic = vpc_nic();
        nic.admin(
            Opcode::RouteTableAdd,
            &RouteTableEntry {
                id: Le16::new(1),
                vpc_id: Le16::new(0),
            },
        )
        .unwrap();
        for g in 0..4u16 {
            let gw = GatewayEntry {
                id: Le16::new(g),
                kind: GatewayKind::Internet as u8,
                underlay_ip: [192, 0, 2, 100 + g as u8],
                mac: [2, 0, 0, 0, 0xfe, g as u8],
                ..Default::default()
            };
            nic.admin(Opcode::GatewayAdd, &gw).unwrap();
        }
        let mut rng = Rng(9);
        let mut masks = std::collections::HashSet::new();
        for _ in 0..3000 {
            let table = rng.below(2) as u16;
            let prefix = [172, 16, rng.below(6) as u8, 0];
            let target = match rng.below(5) {
                4 => RouteTarget::Blackhole,
                g => RouteTarget::Gateway(g as u16),
            };
            let e = route(table, prefix, 24, target);
            let _ = match rng.below(3) {
                0 => nic.admin(Opcode::RouteAdd, &e),
                1 => nic.admin(Opcode::RouteDel, &e),
                _ => nic
                    .submit({
                        let mut cmd = AdminCmd::new(Opcode::RouteAdd, &e);
                        cmd.flags = Le16::new(shared_regs::admin::CmdFlags::REPLACE.bits());
                        cmd
                    })
                    .completion()
                    .unwrap(),
            };
            let t = nic.fw.tables();
            let scanned = (0..2u16)
                .flat_map(|id| t.routes.routes(id).collect::<std::vec::Vec<_>>())
                .filter_map(|r| match r.target {
                    crate::tables::lpm::Target::Gateway(g) => Some(1u64 << g),
                    _ => None,
                })
                .fold(0, |m, b| m | b);
            let kept = t.vpc(0).unwrap().gateway_mask;
            assert_eq!(kept, scanned);
            masks.insert(kept);
        }
        assert!(masks.len() > 8, "{masks:?}");
    }

    #[test]
    fn a_chained_command_is_skipped_after_a_failure_and_changes_nothing() {
        use shared_regs::admin::CmdFlags;
        let mut nic = FakeNic::new(Sizes::default());
        let chained = |mut cmd: AdminCmd| {
            cmd.flags = Le16::new(CmdFlags::CHAIN.bits());
            cmd
        };
        let nop = AdminCmd::new(Opcode::Nop, &[0u8; 0]);
        let missing = AdminCmd::new(Opcode::VpcDel, &IdParam { id: Le16::new(9) });
        let vpc = AdminCmd::new(
            Opcode::VpcAdd,
            &VpcEntry {
                id: Le16::new(1),
                main_route_table: Le16::new(MAIN_ROUTE_TABLE),
                vni: Le32::new(100),
                cidr: [10, 1, 0, 0],
                cidr_len: 16,
                ..Default::default()
            },
        );
        let before = snapshot(&nic);
        let steps = [
            (missing, Err(Status::NotFound)),
            (chained(vpc), Err(Status::Skipped)),
            (chained(nop), Err(Status::Skipped)),
            (nop, Ok(())),
            (chained(nop), Ok(())),
            (chained(missing), Err(Status::NotFound)),
            (missing, Err(Status::NotFound)),
            (chained(nop), Err(Status::Skipped)),
        ];
        for (i, (cmd, want)) in steps.iter().enumerate() {
            assert_eq!(nic.submit(*cmd).completion(), Some(*want), "step {i}");
        }
        assert_eq!(snapshot(&nic), before, "skipped commands change nothing");
        assert_eq!(
            nic.submit(chained(nop)).completion(),
            Some(Err(Status::Skipped))
        );
        assert_eq!(nic.submit(vpc).completion(), Some(Ok(())));
        assert_eq!(
            nic.submit(chained(missing)).completion(),
            Some(Err(Status::NotFound))
        );
    }

    #[test]
    fn unknown_opcode_gets_bad_opcode() {
        let mut nic = FakeNic::new(Sizes::default());
        let mut cmd = AdminCmd::new(Opcode::Nop, &[0u8; 0]);
        cmd.opcode = Le16::new(0x7777);
        assert_eq!(nic.submit(cmd).completion(), Some(Err(Status::BadOpcode)));
    }

    #[test]
    fn refused_commands_get_their_status_and_change_nothing() {
        let mut nic = vpc_nic();
        let before = snapshot(&nic);
        let vni0 = VpcEntry {
            id: Le16::new(1),
            main_route_table: Le16::new(MAIN_ROUTE_TABLE),
            vni: Le32::new(0),
            cidr: [10, 1, 0, 0],
            cidr_len: 16,
            ..Default::default()
        };
        let cases: std::vec::Vec<(AdminCmd, Status)> = std::vec![
            (AdminCmd::new(Opcode::VpcAdd, &vni0), Status::BadArgument),
            (
                AdminCmd::new(
                    Opcode::VpcAdd,
                    &VpcEntry {
                        vni: Le32::new(1 << 24),
                        ..vni0
                    }
                ),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::VpcAdd,
                    &VpcEntry {
                        vni: Le32::new(100),
                        ..vni0
                    }
                ),
                Status::Exists
            ),
            (
                AdminCmd::new(
                    Opcode::VpcAdd,
                    &VpcEntry {
                        vni: Le32::new(7),
                        cidr: [10, 1, 0, 1],
                        ..vni0
                    }
                ),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::RouteAdd,
                    &route(0, [10, 9, 0, 0], 33, RouteTarget::Blackhole)
                ),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::RouteAdd,
                    &route(0, [10, 9, 0, 1], 16, RouteTarget::Blackhole)
                ),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::RouteAdd,
                    &route(5, [10, 9, 0, 0], 16, RouteTarget::Blackhole)
                ),
                Status::NotFound
            ),
            (
                AdminCmd::new(
                    Opcode::RouteAdd,
                    &route(0, [10, 0, 0, 0], 16, RouteTarget::Blackhole)
                ),
                Status::Exists
            ),
            (
                AdminCmd::new(
                    Opcode::RouteDel,
                    &route(0, [10, 0, 0, 0], 16, RouteTarget::Local)
                ),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::RouteDel,
                    &route(0, [10, 9, 0, 0], 16, RouteTarget::Local)
                ),
                Status::NotFound
            ),
            (
                AdminCmd::new(Opcode::VpcDel, &IdParam { id: Le16::new(0) }),
                Status::InUse
            ),
            (
                AdminCmd::new(Opcode::VpcDel, &IdParam { id: Le16::new(3) }),
                Status::NotFound
            ),
            (
                AdminCmd::new(Opcode::SubnetDel, &IdParam { id: Le16::new(0) }),
                Status::InUse
            ),
            (
                AdminCmd::new(Opcode::VfClear, &IdParam { id: Le16::new(5) }),
                Status::NotFound
            ),
            (
                AdminCmd::new(Opcode::VfClear, &IdParam { id: Le16::new(500) }),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::VfSet,
                    &VfEntry {
                        vf: Le16::new(3),
                        subnet_id: Le16::new(0),
                        mac: [2, 0, 0, 0, 0, 3],
                        primary_ip: [10, 0, 1, 255],
                        ..Default::default()
                    }
                ),
                Status::BadArgument
            ),
            (
                AdminCmd::new(
                    Opcode::SubnetAdd,
                    &SubnetEntry {
                        id: Le16::new(5),
                        vpc_id: Le16::new(0),
                        route_table_id: Le16::new(0),
                        prefix_len: 25,
                        prefix: [10, 0, 1, 128],
                        gateway_mac: [2, 0, 0, 0, 0, 9],
                        ..Default::default()
                    }
                ),
                Status::Exists
            ),
            (
                AdminCmd::new(
                    Opcode::MappingAdd,
                    &MappingEntry {
                        vni: Le32::new(100),
                        ip: [10, 0, 1, 10],
                        mac: [2, 0, 0, 0, 0, 9],
                        ..Default::default()
                    }
                ),
                Status::Exists
            ),
            (
                AdminCmd::new(
                    Opcode::MappingAdd,
                    &MappingEntry {
                        vni: Le32::new(555),
                        ip: [10, 0, 1, 50],
                        mac: [2, 0, 0, 0, 0, 9],
                        ..Default::default()
                    }
                ),
                Status::NotFound
            ),
            (
                AdminCmd::new(
                    Opcode::MappingDel,
                    &MappingEntry {
                        vni: Le32::new(100),
                        ip: [10, 0, 1, 1],
                        ..Default::default()
                    }
                ),
                Status::BadArgument
            ),
        ];
        for (cmd, want) in cases {
            let op = Opcode::from_u16(cmd.opcode.get()).unwrap();
            assert_eq!(
                nic.submit(cmd).completion(),
                Some(Err(want)),
                "{}",
                op.name()
            );
            assert_eq!(snapshot(&nic), before, "{} changed the tables", op.name());
        }
    }

    #[test]
    fn full_route_table_is_a_status_not_a_crash() {
        let mut nic = vpc_nic();
        // The default test size holds 32 routes a table, one of them the local route.
        for i in 0..31u8 {
            let r = route(0, [172, 16, i, 0], 24, RouteTarget::Blackhole);
            nic.admin(Opcode::RouteAdd, &r).unwrap();
        }
        let before = snapshot(&nic);
        let r = route(0, [172, 17, 0, 0], 24, RouteTarget::Blackhole);
        assert_eq!(nic.admin(Opcode::RouteAdd, &r), Err(Status::TableFull));
        assert_eq!(snapshot(&nic), before);
    }

    #[test]
    fn stats_with_a_small_buffer_is_refused() {
        let mut nic = FakeNic::new(Sizes::default());
        let mut cmd = AdminCmd::new(
            Opcode::GetStats,
            &StatsQuery {
                function: Le16::new(0),
            },
        );
        cmd.buf_addr.set(0x8000);
        cmd.buf_len.set(8);
        assert_eq!(
            nic.submit(cmd).completion(),
            Some(Err(Status::BufferTooSmall))
        );
    }
}
