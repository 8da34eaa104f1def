//! `pipeline`: packets per second of `nic_firmware::pipeline::process_batch` on one core,
//! batches of 32 frames from the VFs, with 4,096 VPCs and route tables (VRFs) and 1,000,000
//! mappings loaded, beside a baseline in the same run that only copies the same frames into
//! the batch buffers (the pipeline rewrites frames in place, so each iteration must reload
//! them: the copy is part of both measurements, and the difference is the pipeline's own
//! cost). Also prints the memory the tables take at this capacity. See benches/README.md.
// Bench code, like the crate's tests, may panic on a broken set-up.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod common;

use common::*;
use core::net::Ipv4Addr;
use criterion::Throughput;
use nic_firmware::frame::FrameBuf;
use nic_firmware::pipeline::{
    process_batch, process_batch_cached, FlowCache, FlowEntry, Port, Verdict,
};
use nic_firmware::tables::lpm::Target;
use nic_firmware::tables::mapping::{Location, Mapping, MappingKey};
use nic_firmware::tables::vpc::{Gateway, RouteTable, Subnet, VfConfig, Vpc};
use nic_firmware::tables::{Tables, Uplink};
use nic_firmware::testing::{arp_request, ipv4_frame, udp, OwnedMemory, Sizes};
use smoltcp::wire::IpProtocol;
use std::hint::black_box;
use std::time::Instant;

/// Frames the firmware takes from a ring in one go.
const BATCH: usize = 32;
/// VFs of the NIC. Each VPC with local instances has 2 subnets of 2 VFs.
const VFS: usize = 256;
/// VPCs with instances on this NIC: every 64th of the 4,096.
const LOCAL_VPC_STRIDE: usize = VRFS / (VFS / 4);
/// Flows the flow cache holds (8 MiB): room for the 100,000 flows of the flow benches.
const FLOW_CACHE: usize = 1 << 17;
/// Flows of the flow-cache workloads (5-tuples), spread evenly over the VFs.
const FLOWS: usize = 100_000;
/// Batches pre-generated for each flow-cache workload.
const FLOW_BATCHES: usize = 8192;
/// Batches per criterion iteration (from consecutive VFs).
const BATCHES_PER_ITER: usize = 8;

/// One kind of frame of the mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// UDP to the other VF of the sender's subnet, by its MAC (F7): mapping lookup.
    SameSubnet,
    /// UDP to a VF of the VPC's other subnet, through the gateway MAC (F8): route lookup
    /// (the `Local` route), then mapping lookup.
    CrossSubnet,
    /// ARP request for the other VF of the subnet (F3b): mapping lookup, reply in place.
    ArpRequest,
    /// UDP to an instance of the VPC on another host, through the gateway MAC: route
    /// lookup, mapping lookup (a `Remote` mapping among the 1M), F13 MTU check and F14
    /// VXLAN encapsulation in place toward the uplink.
    RemoteVxlan,
}

/// Frames of each kind in a batch of 32: east-west unicast to this host and to other
/// hosts over VXLAN, and some ARP.
const MIX: [(Kind, usize); 4] = [
    (Kind::SameSubnet, 10),
    (Kind::CrossSubnet, 10),
    (Kind::RemoteVxlan, 8),
    (Kind::ArpRequest, 4),
];
/// Remote instances per VPC among the 1M mappings (1M / 4,096, rounded down).
const REMOTES_PER_VPC: u32 = (MAPPINGS / VRFS) as u32 - 4;
/// Hosts the remote instances live on.
const UNDERLAY_HOSTS: u32 = 4096;

fn vpc_vni(v: usize) -> u32 {
    1000 + v as u32
}

fn gateway_mac(subnet: usize) -> [u8; 6] {
    [0x02, 0x00, 0x00, (subnet >> 8) as u8, subnet as u8, 0x01]
}

/// Local VF `vf`: (VPC, subnet index 0/1 within the VPC, address, MAC).
fn vf_identity(vf: usize) -> (usize, usize, u32, [u8; 6]) {
    let vpc = (vf / 4) * LOCAL_VPC_STRIDE;
    let s = (vf / 2) % 2;
    let ip = vpc_cidr(vpc) | ((s as u32) << 8) | (10 + (vf % 2) as u32);
    let mac = [0x02, 0x0a, (vf >> 8) as u8, vf as u8, s as u8, 0x0b];
    (vpc, s, ip, mac)
}

/// Subnet `s` (0/1) of VPC `v`: 10.x.s.0/24, with ID 2v + s.
fn subnet_of(v: usize, s: usize) -> Subnet {
    Subnet {
        vpc: v as u16,
        route_table: v as u16,
        prefix: vpc_cidr(v) | ((s as u32) << 8),
        prefix_len: 24,
        gateway_mac: gateway_mac(2 * v + s),
    }
}

/// The frames VF `vf` sends in one batch, in an interleaved order, with their kinds.
fn batch_frames(vf: usize, kinds: &[Kind], rng: &mut Rng) -> Vec<(Kind, Vec<u8>)> {
    let (vpc, s, ip, mac) = vf_identity(vf);
    let peer = vf ^ 1;
    let (_, _, peer_ip, peer_mac) = vf_identity(peer);
    let mut kinds = kinds.to_vec();
    // A fixed shuffle, so kinds interleave as on a real ring.
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.range(0, i as u32) as usize);
    }
    let payload = [0x5au8; 18];
    let src = Ipv4Addr::from(ip);
    kinds
        .into_iter()
        .map(|k| {
            let frame = match k {
                Kind::SameSubnet => ipv4_frame(
                    peer_mac,
                    mac,
                    src,
                    Ipv4Addr::from(peer_ip),
                    IpProtocol::Udp,
                    64,
                    &udp(40000, 4789 + 1, &payload),
                ),
                Kind::CrossSubnet => {
                    let other = (vf ^ 2) ^ (rng.range(0, 1) as usize);
                    let (_, _, dst_ip, _) = vf_identity(other);
                    ipv4_frame(
                        gateway_mac(2 * vpc + s),
                        mac,
                        src,
                        Ipv4Addr::from(dst_ip),
                        IpProtocol::Udp,
                        64,
                        &udp(40000, 8080, &payload),
                    )
                }
                Kind::ArpRequest => arp_request(mac, src, Ipv4Addr::from(peer_ip)),
                Kind::RemoteVxlan => ipv4_frame(
                    gateway_mac(2 * vpc + s),
                    mac,
                    src,
                    Ipv4Addr::from(remote_ip(vpc, rng.range(0, REMOTES_PER_VPC - 1))),
                    IpProtocol::Udp,
                    64,
                    &udp(40000, 8080, &payload),
                ),
            };
            // 64-byte frames on the wire (60 and the FCS).
            assert_eq!(frame.len(), 60, "{k:?}");
            (k, frame)
        })
        .collect()
}

/// The `n`th remote instance of VPC `v` (10.x.2.0 and up, away from the local subnets).
fn remote_ip(v: usize, n: u32) -> u32 {
    vpc_cidr(v) | (0x0200 + n)
}

fn expected_verdict(kind: Kind, vf: usize, frame: &[u8]) -> Verdict {
    match kind {
        Kind::SameSubnet => Verdict::ToVf {
            vf: (vf ^ 1) as u16,
        },
        Kind::CrossSubnet => {
            // VPCs reuse address ranges: look in the sender's VPC only.
            let dst = u32::from_be_bytes(frame[30..34].try_into().unwrap());
            let to = (0..VFS)
                .find(|&o| vf_identity(o).0 == vf_identity(vf).0 && vf_identity(o).2 == dst)
                .unwrap();
            Verdict::ToVf { vf: to as u16 }
        }
        Kind::ArpRequest => Verdict::Reply { vf: vf as u16 },
        Kind::RemoteVxlan => Verdict::ToUplink,
    }
}

/// Loads 4,096 VPCs, each with 2 subnets and a route table, 256 VFs and 1,000,000
/// mappings. Returns the routes per table, for the record.
fn load_tables(t: &mut Tables<'_>, rng: &mut Rng) -> usize {
    for v in 0..VRFS {
        t.vpcs[v] = Some(Vpc {
            vni: vpc_vni(v),
            cidr: vpc_cidr(v),
            cidr_len: 16,
            main_route_table: Some(v as u16),
            dns: [0; shared_regs::entry::VPC_DNS_SERVERS],
            dns_count: 0,
            domain: [0; shared_regs::entry::DOMAIN_MAX],
            domain_len: 0,
            // Set below, from the routes, as the admin handler keeps it.
            gateway_mask: 0,
        });
        // The VNI's anchor mapping, as the admin handler adds it with the VPC.
        let anchor = Mapping {
            mac: [0; 6],
            location: Location::Vpc(v as u16),
        };
        t.mappings
            .insert(
                MappingKey {
                    vni: vpc_vni(v),
                    ip: 0,
                },
                anchor,
            )
            .unwrap();
        t.route_tables[v] = Some(RouteTable { vpc: v as u16 });
        for s in 0..2 {
            let subnet = subnet_of(v, s);
            let key = MappingKey {
                vni: vpc_vni(v),
                ip: subnet.gateway_ip(),
            };
            let gw = Mapping {
                mac: subnet.gateway_mac,
                location: Location::Gateway,
            };
            t.mappings.insert(key, gw).unwrap();
            t.subnets[2 * v + s] = Some(subnet);
        }
    }
    let routes = fill_route_tables(&mut t.routes, rng);
    // The random routes of a VPC with local instances must leave its two subnets and its
    // remote instances (10.x.0.0/22) to the local route, or frames would go elsewhere.
    for v in (0..VRFS).step_by(LOCAL_VPC_STRIDE) {
        for r in &routes[v] {
            let overlaps = r.len > 16 && (vpc_cidr(v) ^ r.prefix) >> (32 - r.len.min(22)) == 0;
            if overlaps {
                t.routes.remove(v as u16, r.prefix, r.len).unwrap();
            }
        }
    }
    let total_routes = (0..VRFS).map(|v| t.routes.len(v as u16)).sum();
    for v in 0..VRFS {
        let mask = t
            .routes
            .routes(v as u16)
            .filter_map(|r| match r.target {
                Target::Gateway(g) => 1u64.checked_shl(u32::from(g)),
                _ => None,
            })
            .fold(0, |m, b| m | b);
        if let Some(vpc) = t.vpcs[v].as_mut() {
            vpc.gateway_mask = mask;
        }
    }
    for vf in 0..VFS {
        let (vpc, s, ip, mac) = vf_identity(vf);
        t.vfs[vf] = Some(VfConfig {
            mac,
            subnet: (2 * vpc + s) as u16,
            primary_ip: ip,
            src_dst_check: true,
            secondary: [0; shared_regs::entry::VF_SECONDARY_ADDRS],
            secondary_count: 0,
        });
        let m = Mapping {
            mac,
            location: Location::LocalVf(vf as u16),
        };
        t.mappings
            .insert(
                MappingKey {
                    vni: vpc_vni(vpc),
                    ip,
                },
                m,
            )
            .unwrap();
    }
    // Remote instances up to 1M mappings, spread over every VPC.
    let mut n = 0u32;
    while t.mappings.len() < MAPPINGS {
        let v = (n as usize) % VRFS;
        let key = MappingKey {
            vni: vpc_vni(v),
            ip: remote_ip(v, n / VRFS as u32),
        };
        assert!(n / (VRFS as u32) < REMOTES_PER_VPC + 4);
        let b = n.to_le_bytes();
        let m = Mapping {
            mac: [0x02, 0x0c, b[0], b[1], b[2], b[3]],
            location: Location::Remote {
                underlay_ip: 0x6440_0000 | (n % UNDERLAY_HOSTS),
            },
        };
        t.mappings.insert(key, m).unwrap();
        n += 1;
    }
    total_routes
}

/// Copies the frames of one batch into the batch buffers.
fn load_batch(batch: &mut [FrameBuf], frames: &[Vec<u8>]) {
    for (buf, f) in batch.iter_mut().zip(frames) {
        buf.load(f);
    }
}

fn memory_report(sizes: &Sizes, tables: &Tables<'_>) {
    use nic_firmware::counters::CounterBlock;
    use nic_firmware::rings::VfRings;
    use nic_firmware::tables::lpm::RouteSlot;
    use nic_firmware::tables::mapping::{MappingBucket, MappingTags, UnderlaySlot};
    use std::mem::size_of;
    let rows: [(&str, usize, usize, &str); 12] = [
        (
            "route slots (LPM)",
            size_of::<RouteSlot>(),
            sizes.route_tables * sizes.routes_per_table,
            "4,096 tables x 1,000 routes",
        ),
        (
            "mapping buckets",
            size_of::<MappingBucket>(),
            sizes.mapping_buckets,
            "x 4 entries: 16 B per entry",
        ),
        (
            "mapping tags (MappingTags)",
            size_of::<MappingTags>(),
            MappingTags::lines_for(sizes.mapping_buckets),
            "8 buckets a line: 2 B per entry",
        ),
        (
            "underlay addresses (UnderlaySlot)",
            size_of::<UnderlaySlot>(),
            sizes.underlays,
            "",
        ),
        ("VPCs (Slot<Vpc>)", size_of::<Option<Vpc>>(), sizes.vpcs, ""),
        (
            "subnets (Slot<Subnet>)",
            size_of::<Option<Subnet>>(),
            sizes.subnets,
            "",
        ),
        (
            "route table headers (Slot<RouteTable>)",
            size_of::<Option<RouteTable>>(),
            sizes.route_tables,
            "",
        ),
        (
            "VF configs (Slot<VfConfig>)",
            size_of::<Option<VfConfig>>(),
            sizes.vfs,
            "",
        ),
        (
            "VF ring state (VfRings)",
            size_of::<VfRings>(),
            sizes.vfs,
            "",
        ),
        (
            "counter blocks (CounterBlock)",
            size_of::<CounterBlock>(),
            sizes.vfs + 1,
            "per VF + uplink",
        ),
        (
            "batch frame buffers (FrameBuf)",
            size_of::<FrameBuf>(),
            sizes.batch,
            "",
        ),
        (
            "gateways (Slot<Gateway>)",
            size_of::<Option<Gateway>>(),
            sizes.gateways,
            "",
        ),
    ];
    println!(
        "\nMEMORY at this capacity ({} routes loaded of {}, {} mappings of {}):",
        (0..sizes.route_tables)
            .map(|t| tables.routes.len(t as u16))
            .sum::<usize>(),
        sizes.route_tables * sizes.routes_per_table,
        tables.mappings.len(),
        tables.mappings.capacity()
    );
    println!("| table | bytes each | count | total |");
    println!("| --- | ---: | ---: | ---: |");
    let mut total = 0usize;
    for (name, each, count, note) in rows.iter().filter(|r| !r.0.is_empty()) {
        let bytes = each * count;
        total += bytes;
        let note = if note.is_empty() {
            String::new()
        } else {
            format!(" ({note})")
        };
        println!(
            "| {name}{note} | {each} | {count} | {:.2} MB |",
            bytes as f64 / 1e6
        );
    }
    println!("| total | | | {:.2} MB |\n", total as f64 / 1e6);
}

fn main() {
    let t0 = Instant::now();
    let sizes = Sizes {
        vfs: VFS,
        vpcs: VRFS,
        subnets: 2 * VRFS,
        route_tables: VRFS,
        routes_per_table: ROUTES_PER_TABLE,
        // 1M mappings in the least power-of-two storage that holds them (95 % full).
        mapping_buckets: 262_144,
        underlays: 2 * UNDERLAY_HOSTS as usize,
        gateways: 64,
        batch: BATCH,
        flow_cache: FLOW_CACHE,
    };
    let mut owned = OwnedMemory::new(sizes);
    let mut mem = owned.memory();
    let mut tables = Tables::take_from(&mut mem);
    tables.uplink = Some(Uplink {
        mac: [0x02, 0xee, 0, 0, 0, 1],
        next_hop_mac: [0x02, 0xee, 0, 0, 0, 2],
        underlay_ip: 0x6440_ffff,
        mtu: 9000,
    });
    let batch = mem.batch;
    let mut rng = Rng::new(3);
    let total_routes = load_tables(&mut tables, &mut rng);
    println!(
        "pipeline set-up: {VRFS} VPCs and route tables ({total_routes} routes), {} subnets, \
         {VFS} VFs, {} mappings, in {:.2?}",
        2 * VRFS,
        tables.mappings.len(),
        t0.elapsed()
    );
    memory_report(&sizes, &tables);

    let mix: Vec<Kind> = MIX
        .iter()
        .flat_map(|&(k, n)| std::iter::repeat_n(k, n))
        .collect();
    let batches = make_batches(&tables, batch, &mix, &mut rng);
    let mut verdicts = [Verdict::ToUplink; BATCH];

    // For profilers: `PIPELINE_PROFILE=<seconds> perf record ...` runs only the mix, that
    // long, after the set-up, and skips the rest.
    if let Some(secs) = std::env::var("PIPELINE_PROFILE")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
    {
        let until = Instant::now() + std::time::Duration::from_secs_f64(secs);
        let mut next = 0usize;
        while Instant::now() < until {
            for _ in 0..1000 {
                let (vf, frames) = &batches[next % VFS];
                next += 1;
                load_batch(batch, frames);
                process_batch(&tables, Port::Vf(*vf), batch, &mut verdicts);
            }
        }
        black_box(&verdicts);
        return;
    }

    // For `valgrind --tool=callgrind`: `PIPELINE_COUNT=<rounds>` runs the mix, each kind
    // alone, then the mix and both flow workloads through the flow cache, each through its
    // own never-inlined function, and prints the packets each took, so that instructions
    // per packet are the function's inclusive count divided by them (benches/instructions.sh
    // does both).
    // On 2 MiB pages, as the LPM bench's tables (`LPM_SMALL_PAGES=1`: 4 KiB).
    let mut flow_storage = table_memory(FLOW_CACHE, FlowEntry::EMPTY);
    let zipf = flow_workload(&tables, batch, &mut rng, true);
    let uniform = flow_workload(&tables, batch, &mut rng, false);
    if let Some(rounds) = std::env::var("PIPELINE_COUNT")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        let mut runs = vec![Run {
            name: "counted_mix",
            f: counted_mix,
            batches: batches.clone(),
            cached: false,
        }];
        let kinds: [(Kind, &str, Counted); 4] = [
            (Kind::SameSubnet, "counted_same_subnet", counted_same_subnet),
            (
                Kind::CrossSubnet,
                "counted_cross_subnet",
                counted_cross_subnet,
            ),
            (
                Kind::RemoteVxlan,
                "counted_remote_vxlan",
                counted_remote_vxlan,
            ),
            (Kind::ArpRequest, "counted_arp_request", counted_arp_request),
        ];
        for (kind, name, f) in kinds {
            let batches = make_batches(&tables, batch, &[kind; BATCH], &mut rng);
            runs.push(Run {
                name,
                f,
                batches,
                cached: false,
            });
        }
        for (name, f, batches) in [
            (
                "counted_mix_cached",
                counted_mix_cached as Counted,
                &batches,
            ),
            ("counted_flows_zipf", counted_flows_zipf, &zipf.batches),
            (
                "counted_flows_uniform",
                counted_flows_uniform,
                &uniform.batches,
            ),
        ] {
            runs.push(Run {
                name,
                f,
                batches: batches.clone(),
                cached: true,
            });
        }
        count_instructions(&tables, batch, &mut flow_storage, runs, rounds);
        return;
    }

    // `PIPELINE_ONLY=flows`: only the flow cache's figures, after the set-up.
    if std::env::var("PIPELINE_ONLY").as_deref() == Ok("flows") {
        flow_figures(&tables, batch, &mut flow_storage, &zipf, &uniform);
        return;
    }

    let mut c = criterion();
    {
        let mut g = c.benchmark_group("pipeline");
        g.throughput(Throughput::Elements((BATCH * BATCHES_PER_ITER) as u64));
        let mut next = 0usize;
        g.bench_function("process_batch_32", |b| {
            b.iter(|| {
                for _ in 0..BATCHES_PER_ITER {
                    let (vf, frames) = &batches[next % VFS];
                    next += 1;
                    load_batch(batch, frames);
                    process_batch(&tables, Port::Vf(*vf), batch, &mut verdicts);
                }
                black_box(&verdicts);
            })
        });
        let mut next = 0usize;
        g.bench_function("baseline_copy_only", |b| {
            b.iter(|| {
                for _ in 0..BATCHES_PER_ITER {
                    let (_, frames) = &batches[next % VFS];
                    next += 1;
                    load_batch(batch, frames);
                    black_box(&mut *batch);
                }
            })
        });
        g.finish();
    }
    c.final_summary();

    let (pipe, copy) = time_batches(&tables, batch, &batches);
    summary(
        "pipeline process_batch (copy + process)",
        "packet",
        pipe,
        "copy only",
        copy,
    );
    println!(
        "SUMMARY pipeline own cost (difference): {:.2} ns/packet, {:.1} Mpackets/s",
        pipe - copy,
        1e3 / (pipe - copy)
    );
    flow_figures(&tables, batch, &mut flow_storage, &zipf, &uniform);
    // The same, one kind of frame at a time: where the time goes.
    for (kind, _) in MIX {
        let batches = make_batches(&tables, batch, &[kind; BATCH], &mut rng);
        let (pipe, copy) = time_batches(&tables, batch, &batches);
        println!(
            "SUMMARY pipeline, only {kind:?}: {:.2} ns/packet with the copy, {:.2} ns/packet own cost ({:.1} Mpackets/s)",
            pipe,
            pipe - copy,
            1e3 / (pipe - copy)
        );
    }
}

/// Every VF's batch of frames of `kinds` (shuffled), each checked once against its
/// expected verdict.
fn make_batches(
    tables: &Tables<'_>,
    batch: &mut [FrameBuf],
    kinds: &[Kind],
    rng: &mut Rng,
) -> Vec<(u16, Vec<Vec<u8>>)> {
    (0..VFS)
        .map(|vf| {
            let frames = batch_frames(vf, kinds, rng);
            let mut verdicts = [Verdict::ToUplink; BATCH];
            let raw: Vec<Vec<u8>> = frames.iter().map(|(_, f)| f.clone()).collect();
            load_batch(batch, &raw);
            process_batch(tables, Port::Vf(vf as u16), batch, &mut verdicts);
            for ((kind, f), v) in frames.iter().zip(verdicts.iter()) {
                assert_eq!(*v, expected_verdict(*kind, vf, f), "VF{vf} {kind:?}");
            }
            (vf as u16, raw)
        })
        .collect()
}

/// ns per packet of copy + `process_batch`, and of the copy alone, over `batches` in turn.
fn time_batches(
    tables: &Tables<'_>,
    batch: &mut [FrameBuf],
    batches: &[(u16, Vec<Vec<u8>>)],
) -> (f64, f64) {
    let rounds = 4000;
    let packets = rounds * BATCH;
    let mut verdicts = [Verdict::ToUplink; BATCH];
    let pipe = ns_per_op(5, packets, || {
        for i in 0..rounds {
            let (vf, frames) = &batches[i % batches.len()];
            load_batch(batch, frames);
            process_batch(tables, Port::Vf(*vf), batch, &mut verdicts);
        }
        black_box(&verdicts);
        0
    });
    let copy = ns_per_op(5, packets, || {
        for i in 0..rounds {
            let (_, frames) = &batches[i % batches.len()];
            load_batch(batch, frames);
            black_box(&mut *batch);
        }
        0
    });
    (pipe, copy)
}

/// One batch through the pipeline, in a function of its own per kind of frame and with or
/// without the flow cache, so that callgrind counts each apart (the copy into the batch is
/// outside).
macro_rules! counted {
    ($($name:ident),*) => {$(
        #[inline(never)]
        fn $name(
            tables: &Tables<'_>,
            cache: Option<&mut FlowCache<'_>>,
            vf: u16,
            batch: &mut [FrameBuf],
            v: &mut [Verdict; BATCH],
        ) {
            // A body of its own: identical functions would be merged into one.
            black_box(stringify!($name));
            match cache {
                Some(cache) => process_batch_cached(tables, cache, Port::Vf(vf), batch, v),
                None => process_batch(tables, Port::Vf(vf), batch, v),
            }
        }
    )*};
}
counted!(
    counted_mix,
    counted_same_subnet,
    counted_cross_subnet,
    counted_remote_vxlan,
    counted_arp_request,
    counted_mix_cached,
    counted_flows_zipf,
    counted_flows_uniform
);

type Counted =
    fn(&Tables<'_>, Option<&mut FlowCache<'_>>, u16, &mut [FrameBuf], &mut [Verdict; BATCH]);

/// One batch from a VF: its frames.
type VfBatch = (u16, Vec<Vec<u8>>);

/// Batches to count through one of the `counted` functions.
struct Run {
    name: &'static str,
    f: Counted,
    batches: Vec<VfBatch>,
    /// Through a fresh flow cache, warmed by one uncounted pass.
    cached: bool,
}

/// Each run's batches `rounds` times through its function; prints the packets it took
/// (and, with the cache, how many the cache decided).
fn count_instructions(
    tables: &Tables<'_>,
    batch: &mut [FrameBuf],
    flow_storage: &mut [FlowEntry],
    runs: Vec<Run>,
    rounds: usize,
) {
    let mut verdicts = [Verdict::ToUplink; BATCH];
    for run in runs {
        let mut cache = FlowCache::new(flow_storage);
        if run.cached {
            for (vf, frames) in &run.batches {
                load_batch(batch, frames);
                process_batch_cached(tables, &mut cache, Port::Vf(*vf), batch, &mut verdicts);
            }
        }
        let before = cache.hits();
        let n = rounds.max(1) * run.batches.len();
        for i in 0..n {
            let (vf, frames) = &run.batches[i % run.batches.len()];
            load_batch(batch, frames);
            let cache = run.cached.then_some(&mut cache);
            (run.f)(tables, cache, *vf, batch, &mut verdicts);
        }
        black_box(&verdicts);
        println!(
            "COUNT {} packets {} hits {}",
            run.name,
            n * BATCH,
            cache.hits() - before
        );
    }
}

/// A flow-cache workload: batches of frames of [`FLOWS`] UDP flows, each batch from one VF
/// (the VFs in turn), its frames drawn from that VF's flows.
struct Flows {
    batches: Vec<(u16, Vec<Vec<u8>>)>,
    /// Distinct flow-cache keys among the flows (ports are not part of the key).
    keys: usize,
}

/// Each VF's flows: UDP to the other VF of its subnet, to a VF of its other subnet, or to
/// a remote instance of its VPC (10 : 10 : 8, as the mix), with random ports. Frames are
/// drawn Zipf-distributed over a VF's flows (s = 1, the first flow the most popular), or
/// uniformly.
fn flow_workload(tables: &Tables<'_>, batch: &mut [FrameBuf], rng: &mut Rng, zipf: bool) -> Flows {
    let per_vf = FLOWS / VFS;
    let mut keys = std::collections::HashSet::new();
    let flows: Vec<Vec<Vec<u8>>> = (0..VFS)
        .map(|vf| {
            let (vpc, s, ip, mac) = vf_identity(vf);
            let src = Ipv4Addr::from(ip);
            (0..per_vf)
                .map(|_| {
                    let pick = rng.range(0, 27);
                    let (dst_mac, dst) = if pick < 10 {
                        let (_, _, peer_ip, peer_mac) = vf_identity(vf ^ 1);
                        (peer_mac, peer_ip)
                    } else if pick < 20 {
                        let other = (vf ^ 2) ^ (rng.range(0, 1) as usize);
                        (gateway_mac(2 * vpc + s), vf_identity(other).2)
                    } else {
                        let n = rng.range(0, REMOTES_PER_VPC - 1);
                        (gateway_mac(2 * vpc + s), remote_ip(vpc, n))
                    };
                    keys.insert((vf, dst_mac, dst));
                    let (sport, dport) = (rng.range(1024, 65535), rng.range(1, 65535));
                    ipv4_frame(
                        dst_mac,
                        mac,
                        src,
                        Ipv4Addr::from(dst),
                        IpProtocol::Udp,
                        64,
                        &udp(sport as u16, dport as u16, &[0x5a; 18]),
                    )
                })
                .collect()
        })
        .collect();
    // Zipf's cumulative weights over a VF's flows.
    let weights: Vec<f64> = (1..=per_vf).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let cdf: Vec<f64> = weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect();
    let batches: Vec<(u16, Vec<Vec<u8>>)> = (0..FLOW_BATCHES)
        .map(|b| {
            let vf = b % VFS;
            let frames = (0..BATCH)
                .map(|_| {
                    let i = if zipf {
                        let u = rng.next_u64() as f64 / u64::MAX as f64;
                        cdf.partition_point(|&c| c < u).min(per_vf - 1)
                    } else {
                        rng.below(per_vf as u64) as usize
                    };
                    flows[vf][i].clone()
                })
                .collect();
            (vf as u16, frames)
        })
        .collect();
    // Every frame forwards (no drop would be cached).
    for (vf, frames) in batches.iter().take(VFS) {
        let mut verdicts = [Verdict::ToUplink; BATCH];
        load_batch(batch, frames);
        process_batch(tables, Port::Vf(*vf), batch, &mut verdicts);
        assert!(
            verdicts
                .iter()
                .all(|v| matches!(v, Verdict::ToVf { .. } | Verdict::ToUplink)),
            "{verdicts:?}"
        );
    }
    Flows {
        batches,
        keys: keys.len(),
    }
}

/// ns per packet over `batches` in turn: copy + the pipeline with the flow cache (after a
/// warm-up pass), the copy alone, and copy + the pipeline without the cache; and the share
/// of packets the warm cache decided.
fn time_flows(
    tables: &Tables<'_>,
    cache: &mut FlowCache<'_>,
    batch: &mut [FrameBuf],
    batches: &[(u16, Vec<Vec<u8>>)],
) -> (f64, f64, f64, f64) {
    let rounds = batches.len();
    let packets = rounds * BATCH;
    let mut verdicts = [Verdict::ToUplink; BATCH];
    let mut cached_pass = |cache: &mut FlowCache<'_>| {
        for (vf, frames) in batches {
            load_batch(batch, frames);
            process_batch_cached(tables, cache, Port::Vf(*vf), batch, &mut verdicts);
        }
        black_box(&verdicts);
        0
    };
    cached_pass(cache);
    let before = cache.hits();
    cached_pass(cache);
    let hit_rate = (cache.hits() - before) as f64 / packets as f64;
    let cached = ns_per_op(5, packets, || cached_pass(cache));
    let mut verdicts = [Verdict::ToUplink; BATCH];
    let copy = ns_per_op(5, packets, || {
        for (_, frames) in batches {
            load_batch(batch, frames);
            black_box(&mut *batch);
        }
        0
    });
    let plain = ns_per_op(5, packets, || {
        for (vf, frames) in batches {
            load_batch(batch, frames);
            process_batch(tables, Port::Vf(*vf), batch, &mut verdicts);
        }
        black_box(&verdicts);
        0
    });
    (cached, copy, plain, hit_rate)
}

/// The flow cache's figures: 100,000 flows, Zipf-distributed and uniform.
fn flow_figures(
    tables: &Tables<'_>,
    batch: &mut [FrameBuf],
    flow_storage: &mut [FlowEntry],
    zipf: &Flows,
    uniform: &Flows,
) {
    for (name, batches) in [("Zipf", zipf), ("uniform", uniform)] {
        let mut cache = FlowCache::new(flow_storage);
        let (cached, copy, plain, hit_rate) =
            time_flows(tables, &mut cache, batch, &batches.batches);
        println!(
            "SUMMARY flow cache, {name} over {FLOWS} flows ({} cache keys, {} entries): {:.2} ns/packet with the copy, {:.2} ns/packet own cost ({:.1} Mpackets/s), {:.0} % hits | baseline copy only: {copy:.2} ns/packet, {:.1} Mpackets/s | without the cache: {:.2} ns/packet own cost ({:.1} Mpackets/s)",
            batches.keys,
            cache.capacity(),
            cached,
            cached - copy,
            1e3 / (cached - copy),
            100.0 * hit_rate,
            1e3 / copy,
            plain - copy,
            1e3 / (plain - copy),
        );
    }
}
