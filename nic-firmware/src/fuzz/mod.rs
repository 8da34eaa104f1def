//! Fuzz targets (feature `testing`, never in a firmware image). libFuzzer runs them through
//! `nic-firmware/fuzz` (`cargo +nightly fuzz run pipeline`, `admin`, `offload`,
//! `coalesce`); `cargo test` replays them over their seeds and a few thousand random inputs.
//! A target panics only when the firmware breaks a promise: a panic of its own, a stage that
//! disagrees with the reference path, a malformed frame on the wire, an admin command left
//! without a completion, an offload that breaks what `shared_regs::desc` says of it, received
//! segments coalesced into a super-frame that does not cut back into them.
// The targets and their checks (this module and those below it, which inherit this) may
// panic: a panic is how a target reports a broken promise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
extern crate std;

pub mod coalesce;
pub mod offload;
#[cfg(test)]
mod tests;
pub mod topology;

use crate::frame::FrameBuf;
use crate::pipeline::{mtu, process_batch, process_frame, Port, Verdict};
use crate::platform::{Function, Platform};
use crate::testing::{FakePlatform, OwnedMemory, Sizes};
use shared_regs::admin::{AdminCmd, CmdFlags, Status, CMD_SIZE};
use smoltcp::wire::{EthernetFrame, Ipv4Packet};
use std::vec;
use std::vec::Vec;
use zerocopy::{FromBytes, IntoBytes};

/// Frames a pipeline input carries at most (two stage chunks and some).
pub const MAX_FRAMES: usize = 70;

/// The port byte 0 of a pipeline input picks: VFs 0-5 (VF 4 has no subnet, VF 5 no
/// configuration), or the uplink.
pub fn port_of(byte: u8) -> Port {
    match byte % 7 {
        6 => Port::Uplink,
        vf => Port::Vf(u16::from(vf)),
    }
}

/// Splits a pipeline input into its port and frames: byte 0 the port, then frames, each a
/// big-endian 16-bit length and that many bytes (the last cut at the input's end).
pub fn split_frames(data: &[u8]) -> (Port, Vec<&[u8]>) {
    let Some((&port, mut rest)) = data.split_first() else {
        return (Port::Vf(0), Vec::new());
    };
    let mut frames = Vec::new();
    while rest.len() >= 2 && frames.len() < MAX_FRAMES {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let body = &rest[2..];
        let take = len.min(body.len());
        frames.push(&body[..take]);
        rest = &body[take..];
    }
    (port_of(port), frames)
}

/// The inverse of [`split_frames`], for seeds.
pub fn join_frames(port: u8, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![port];
    for f in frames {
        out.extend_from_slice(&(f.len() as u16).to_be_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// A batch of frames from one port through the pipeline on [`topology`]: the staged batch
/// must decide exactly as the per-frame path, byte for byte, and every fragment it asks for
/// must leave as a well-formed outer IPv4 packet.
pub fn pipeline(data: &[u8]) {
    let (src, frames) = split_frames(data);
    let mut owned = OwnedMemory::new(topology::SIZES);
    let tables = topology::tables(&mut owned);
    let mut batch = vec![FrameBuf::EMPTY; frames.len()];
    let mut loaded = Vec::new();
    for (buf, f) in batch.iter_mut().zip(&frames) {
        if buf.load(f) {
            loaded.push(*f);
        }
    }
    batch.truncate(loaded.len());
    let mut verdicts = vec![Verdict::ToUplink; loaded.len()];
    process_batch(&tables, src, &mut batch, &mut verdicts);

    cached_pipeline(&tables, src, &loaded);

    like_per_frame(
        &tables,
        src,
        &loaded,
        &verdicts,
        &batch,
        "batch",
        |want, single| {
            if let Verdict::Fragment { encap, mtu } = want {
                let uplink = tables.uplink.expect("a fragment verdict without an uplink");
                let mut sent = 0;
                let n = mtu::fragment(single.data(), &uplink, &encap, mtu, |wire| {
                    well_formed_outer_ipv4(wire);
                    sent += 1;
                });
                if let Some(n) = n {
                    assert_eq!(n, sent, "fragments counted and sent differ");
                }
            }
        },
    );
}

/// Each frame of `loaded` through the per-frame path: the verdict and the bytes `what`
/// gave it (`verdicts`, `out`) must be the same. `each` then sees every per-frame verdict
/// and frame.
fn like_per_frame(
    tables: &crate::tables::Tables<'_>,
    src: Port,
    loaded: &[&[u8]],
    verdicts: &[Verdict],
    out: &[FrameBuf],
    what: &str,
    mut each: impl FnMut(Verdict, &FrameBuf),
) {
    let mut single = FrameBuf::EMPTY;
    for ((f, verdict), out) in loaded.iter().zip(verdicts).zip(out) {
        assert!(single.load(f));
        let want = process_frame(tables, src, &mut single);
        assert_eq!(
            *verdict, want,
            "{what} and per-frame verdicts differ: {f:02x?}"
        );
        assert_eq!(
            out.data(),
            single.data(),
            "{what} and per-frame bytes differ: {f:02x?}"
        );
        each(want, &single);
    }
}

/// The same batch through the flow cache, twice (the second pass finds the flows the first
/// learnt): each frame must get the per-frame verdict and bytes both times.
fn cached_pipeline(tables: &crate::tables::Tables<'_>, src: Port, loaded: &[&[u8]]) {
    use crate::pipeline::{process_batch_cached, FlowCache, FlowEntry};
    let mut storage = vec![FlowEntry::EMPTY; topology::SIZES.flow_cache];
    let mut cache = FlowCache::new(&mut storage);
    let mut batch = vec![FrameBuf::EMPTY; loaded.len()];
    for pass in 0..2 {
        for (buf, f) in batch.iter_mut().zip(loaded) {
            assert!(buf.load(f));
        }
        let mut verdicts = vec![Verdict::ToUplink; loaded.len()];
        process_batch_cached(tables, &mut cache, src, &mut batch, &mut verdicts);
        let what = std::format!("pass {pass}: cached");
        like_per_frame(tables, src, loaded, &verdicts, &batch, &what, |_, _| {});
    }
}

/// An encapsulated frame as it leaves the uplink: Ethernet, then IPv4 whose checksum holds
/// and whose total length is the rest of the frame.
fn well_formed_outer_ipv4(wire: &[u8]) {
    let eth = EthernetFrame::new_checked(wire).expect("outer Ethernet header");
    let ip = Ipv4Packet::new_checked(eth.payload()).expect("outer IPv4 header");
    assert!(ip.verify_checksum(), "outer IPv4 checksum");
    assert_eq!(
        usize::from(ip.total_len()),
        eth.payload().len(),
        "outer IPv4 total length"
    );
}

/// Everything the tables hold, in a form two states can be compared in (mappings as a set:
/// a refused insert may have moved entries between their two buckets).
fn snapshot(t: &crate::tables::Tables<'_>) -> std::string::String {
    use std::format;
    let mut s = format!(
        "{:?}{:?}{:?}{:?}{:?}{:?}",
        t.vfs, t.vpcs, t.subnets, t.route_tables, t.gateways, t.uplink
    );
    for table in 0..t.routes.tables() {
        let routes: Vec<_> = t.routes.routes(table as u16).collect();
        s.push_str(&format!("{routes:?}"));
    }
    let mut mappings: Vec<_> = t.mappings.iter().map(|m| format!("{m:?}")).collect();
    mappings.sort();
    s.push_str(&mappings.join(","));
    s
}

/// Capacities for the admin target: small, so full tables are reachable.
const ADMIN_SIZES: Sizes = Sizes {
    vfs: 4,
    vpcs: 4,
    subnets: 4,
    route_tables: 4,
    routes_per_table: 4,
    // 8 entries and 2 remote hosts.
    mapping_buckets: 2,
    underlays: 2,
    gateways: 4,
    batch: 4,
    flow_cache: 4,
};
const ADMINQ_ENTRIES: u32 = 8;
/// Where each record's buffer bytes are put; a command's `buf_addr` may point anywhere.
pub const ADMIN_BUF_IOVA: u64 = 0x8000;

/// Admin commands through the real admin queue of a fresh firmware: each must complete
/// (DONE set) with a status of the ABI, whatever its bytes, and one refused must leave every
/// table as it was. Input: records of a 64-byte
/// command, one length byte and that many bytes put at [`ADMIN_BUF_IOVA`] first. Returns
/// the statuses, so tests can see what the input reached.
pub fn admin(data: &[u8]) -> Vec<Status> {
    let mut owned = OwnedMemory::new(ADMIN_SIZES);
    let mut fw = crate::Firmware::new(owned.memory());
    let mut p = FakePlatform::default();
    let poll = |fw: &mut crate::Firmware<'_>, p: &mut FakePlatform| {
        for _ in 0..1000 {
            if !fw.poll(p) {
                return;
            }
        }
        panic!("firmware still busy after 1000 polls");
    };
    poll(&mut fw, &mut p);
    {
        use shared_regs::pf;
        p.write_reg(Function::Pf, pf::ADMINQ_BASE_LO, 0);
        p.write_reg(Function::Pf, pf::ADMINQ_SIZE, ADMINQ_ENTRIES);
        p.write_reg(Function::Pf, pf::CONTROL, pf::Control::ADMINQ_ENABLE.bits());
    }
    poll(&mut fw, &mut p);
    let mut rest = data;
    let mut tail = 0u32;
    let mut statuses = Vec::new();
    // The tables only change inside `poll`, so what they hold after one command is what
    // they held before the next: one snapshot per command.
    let mut before = snapshot(fw.tables());
    while rest.len() >= CMD_SIZE {
        let (raw, after) = rest.split_at(CMD_SIZE);
        let mut cmd = AdminCmd::read_from_bytes(raw).unwrap();
        // The driver's flags (`REPLACE`, unknown bits) go as they are; DONE is the device's.
        cmd.flags.set(cmd.flags.get() & !CmdFlags::DONE.bits());
        let (buf, after) = match after.split_first() {
            Some((&n, more)) => more.split_at(usize::from(n).min(more.len())),
            None => (&[][..], after),
        };
        rest = after;
        p.dma_write(Function::Pf, ADMIN_BUF_IOVA, buf).unwrap();
        let slot = u64::from(tail) * CMD_SIZE as u64;
        p.dma_write(Function::Pf, slot, cmd.as_bytes()).unwrap();
        tail = (tail + 1) % ADMINQ_ENTRIES;
        p.write_reg(Function::Pf, shared_regs::pf::ADMINQ_TAIL, tail);
        poll(&mut fw, &mut p);
        let mut back = [0u8; CMD_SIZE];
        p.dma_read(Function::Pf, slot, &mut back).unwrap();
        let done = AdminCmd::read_from_bytes(&back).unwrap();
        assert!(
            CmdFlags::from_bits_retain(done.flags.get()).contains(CmdFlags::DONE),
            "admin command {:#06x} left without a completion",
            cmd.opcode.get()
        );
        assert_ne!(
            Status::from_u16(done.status.get()),
            Status::Unknown,
            "admin command {:#06x} completed with status {:#06x}, which the ABI does not define",
            cmd.opcode.get(),
            done.status.get()
        );
        assert_eq!(done.cookie.get(), cmd.cookie.get(), "cookie changed");
        let status = Status::from_u16(done.status.get());
        let after = snapshot(fw.tables());
        if status != Status::Ok {
            assert!(
                after == before,
                "admin command {:#06x} was refused ({status:?}) but changed the tables",
                cmd.opcode.get()
            );
        }
        before = after;
        statuses.push(status);
    }
    statuses
}
