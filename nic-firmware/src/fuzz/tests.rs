//! The fuzz targets under `cargo test`: over the seeds in `nic-firmware/fuzz/seeds` (and
//! the crashes libFuzzer once found, kept there as regressions), then over inputs made here
//! from the topology's frame generator, bit flips and plain random bytes.
use super::topology::{uplink_frame, vf_frame};
use super::*;
use crate::testing::Rng;
use shared_regs::admin::Opcode;
use std::path::PathBuf;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn random_bytes(rng: &mut Rng, max: u64) -> Vec<u8> {
    (0..rng.below(max)).map(|_| rng.next_u64() as u8).collect()
}

fn flip_some(rng: &mut Rng, mut input: Vec<u8>) -> Vec<u8> {
    for _ in 0..=rng.below(4) {
        if !input.is_empty() {
            let i = rng.below(input.len() as u64) as usize;
            input[i] ^= 1 << rng.below(8);
        }
    }
    input
}

/// A batch from the topology's generator, in the pipeline target's input format.
pub(super) fn generated_batch(rng: &mut Rng, max_frames: u64) -> Vec<u8> {
    let port = rng.below(7) as u8;
    let frames: Vec<Vec<u8>> = (0..1 + rng.below(max_frames))
        .map(|_| match port_of(port) {
            Port::Vf(vf) => vf_frame(rng, vf),
            Port::Uplink => uplink_frame(rng),
        })
        .collect();
    join_frames(port, &frames)
}

#[test]
fn pipeline_target_holds_on_its_seeds_and_on_generated_and_random_input() {
    let seeds = seeds("pipeline");
    assert!(seeds.len() >= 20, "{} seeds", seeds.len());
    for s in &seeds {
        pipeline(s);
    }
    let mut rng = Rng(0x5eed);
    for _ in 0..400 {
        let input = generated_batch(&mut rng, 40);
        pipeline(&input);
        pipeline(&flip_some(&mut rng, input));
    }
    for _ in 0..2000 {
        pipeline(&random_bytes(&mut rng, 600));
    }
    pipeline(&[]);
}

#[test]
fn split_frames_inverts_join_frames() {
    let frames = vec![vec![1u8, 2, 3], vec![], vec![9; 300]];
    let joined = join_frames(6, &frames);
    let (port, back) = split_frames(&joined);
    assert_eq!(port, Port::Uplink);
    assert_eq!(back, frames.iter().map(|f| &f[..]).collect::<Vec<_>>());
    // A length beyond the input is cut at its end.
    let (_, cut) = split_frames(&[0, 0, 9, 7, 7]);
    assert_eq!(cut, vec![&[7u8, 7][..]]);
}

/// An admin record with one of the ABI's opcodes (or another) and parameters whose bytes
/// are mostly small, so IDs are often in range and commands often valid.
pub(super) fn admin_record(rng: &mut Rng) -> Vec<u8> {
    let opcodes: Vec<u16> = (0..0x200)
        .filter(|&v| Opcode::from_u16(v).is_some())
        .collect();
    let opcode = if rng.chance(90) {
        rng.pick(&opcodes)
    } else {
        rng.next_u64() as u16
    };
    let mut cmd = vec![0u8; CMD_SIZE];
    cmd[0..2].copy_from_slice(&opcode.to_le_bytes());
    // Sometimes REPLACE, sometimes any flags at all.
    let flags = match rng.below(10) {
        0 | 1 => CmdFlags::REPLACE.bits(),
        2 => rng.next_u64() as u16,
        _ => 0,
    };
    cmd[2..4].copy_from_slice(&flags.to_le_bytes());
    cmd[6..8].copy_from_slice(&(rng.next_u64() as u16).to_le_bytes());
    if rng.chance(20) {
        cmd[8..16].copy_from_slice(&ADMIN_BUF_IOVA.to_le_bytes());
        cmd[16..20].copy_from_slice(&(rng.below(512) as u32).to_le_bytes());
    }
    for b in &mut cmd[24..] {
        *b = if rng.chance(70) {
            rng.below(4) as u8
        } else {
            rng.next_u64() as u8
        };
    }
    let buf = random_bytes(rng, 64);
    cmd.push(buf.len() as u8);
    cmd.extend(buf);
    cmd
}

/// A well-formed admin command over a small universe (two VPCs, four subnets, a few route
/// tables, VFs, mappings, gateways), so that sequences of them add, refuse as existing or
/// in use, fill tables and delete.
pub(super) fn structured_admin_record(rng: &mut Rng) -> Vec<u8> {
    use shared_regs::entry::*;
    use shared_regs::{Le16, Le32};
    let id = |rng: &mut Rng| Le16::new(rng.below(3) as u16);
    let ip = |rng: &mut Rng| {
        [
            10,
            rng.below(2) as u8,
            rng.below(3) as u8,
            rng.below(12) as u8,
        ]
    };
    let mac = |rng: &mut Rng| [2, 0, 0, 0, rng.below(4) as u8, rng.below(4) as u8];
    let vni = |rng: &mut Rng| Le32::new(rng.pick(&[100, 200, 300]));
    let cmd = match rng.below(16) {
        0 => AdminCmd::new(
            Opcode::VpcAdd,
            &VpcEntry {
                id: id(rng),
                main_route_table: Le16::new(rng.pick(&[0xffff, 0, 1])),
                vni: vni(rng),
                cidr: [10, rng.below(2) as u8, 0, 0],
                cidr_len: rng.pick(&[16, 8, 33]),
                ..Default::default()
            },
        ),
        1 => AdminCmd::new(Opcode::VpcDel, &IdParam { id: id(rng) }),
        2 => AdminCmd::new(
            Opcode::RouteTableAdd,
            &RouteTableEntry {
                id: id(rng),
                vpc_id: id(rng),
            },
        ),
        3 => AdminCmd::new(Opcode::RouteTableDel, &IdParam { id: id(rng) }),
        4 | 5 => AdminCmd::new(
            Opcode::SubnetAdd,
            &SubnetEntry {
                id: id(rng),
                vpc_id: id(rng),
                route_table_id: id(rng),
                prefix_len: rng.pick(&[24, 28, 16]),
                prefix: [10, rng.below(2) as u8, rng.below(3) as u8, 0],
                gateway_mac: mac(rng),
                ..Default::default()
            },
        ),
        6 => AdminCmd::new(Opcode::SubnetDel, &IdParam { id: id(rng) }),
        7 | 8 => AdminCmd::new(
            if rng.chance(75) {
                Opcode::RouteAdd
            } else {
                Opcode::RouteDel
            },
            &RouteEntry {
                table_id: id(rng),
                prefix_len: rng.pick(&[0, 16, 24, 32]),
                target_kind: rng.below(6) as u8,
                prefix: ip(rng),
                target: ip(rng),
            },
        ),
        9 | 10 => AdminCmd::new(
            if rng.chance(75) {
                Opcode::MappingAdd
            } else {
                Opcode::MappingDel
            },
            &MappingEntry {
                vni: vni(rng),
                ip: ip(rng),
                mac: mac(rng),
                location: rng.below(6) as u8,
                vf: Le16::new(rng.below(5) as u16),
                underlay_ip: [192, 0, 2, rng.below(3) as u8],
                ..Default::default()
            },
        ),
        11 | 12 => AdminCmd::new(
            if rng.chance(75) {
                Opcode::VfSet
            } else {
                Opcode::VfClear
            },
            &VfEntry {
                vf: Le16::new(rng.below(5) as u16),
                subnet_id: id(rng),
                flags: Le16::new(rng.below(2) as u16),
                mac: mac(rng),
                primary_ip: ip(rng),
                ..Default::default()
            },
        ),
        13 => AdminCmd::new(
            Opcode::UplinkSet,
            &UplinkEntry {
                mac: mac(rng),
                next_hop_mac: mac(rng),
                underlay_ip: [192, 0, 2, 1],
                mtu: Le16::new(rng.pick(&[1500, 9001, 60, 0])),
                ..Default::default()
            },
        ),
        14 => AdminCmd::new(
            if rng.chance(75) {
                Opcode::GatewayAdd
            } else {
                Opcode::GatewayDel
            },
            &GatewayEntry {
                id: id(rng),
                kind: rng.below(4) as u8,
                underlay_ip: [192, 0, 2, 100],
                mac: mac(rng),
                ..Default::default()
            },
        ),
        _ => AdminCmd::new(
            if rng.chance(50) {
                Opcode::VfAddrAdd
            } else {
                Opcode::VfAddrDel
            },
            &VfAddrEntry {
                vf: Le16::new(rng.below(5) as u16),
                ip: ip(rng),
                ..Default::default()
            },
        ),
    };
    let mut cmd = cmd;
    // Replaces of what the universe holds (ABI 1.3), and now and then on an opcode that
    // does not take the flag.
    let takes = Opcode::from_u16(cmd.opcode.get()).is_some_and(Opcode::takes_replace);
    if (takes && rng.chance(15)) || rng.chance(2) {
        cmd.flags.set(CmdFlags::REPLACE.bits());
    }
    let mut record = cmd.as_bytes().to_vec();
    record.push(0);
    record
}

/// The commands of an admin target input, as [`admin`] reads them.
fn commands(mut rest: &[u8]) -> Vec<AdminCmd> {
    let mut out = Vec::new();
    while rest.len() >= CMD_SIZE {
        let (raw, after) = rest.split_at(CMD_SIZE);
        out.push(AdminCmd::read_from_bytes(raw).unwrap());
        rest = match after.split_first() {
            Some((&n, more)) => &more[usize::from(n).min(more.len())..],
            None => after,
        };
    }
    out
}

/// Up to `max` admin records, most of them well-formed.
fn admin_program(rng: &mut Rng, max: u64) -> Vec<u8> {
    (0..1 + rng.below(max))
        .flat_map(|_| {
            if rng.chance(70) {
                structured_admin_record(rng)
            } else {
                admin_record(rng)
            }
        })
        .collect()
}

#[test]
fn admin_target_holds_on_its_seeds_and_on_generated_and_random_input() {
    let seeds = seeds("admin");
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    for s in &seeds {
        admin(s);
    }
    let mut rng = Rng(0xad31);
    let mut seen = std::collections::HashMap::new();
    for _ in 0..300 {
        let input = admin_program(&mut rng, 60);
        for (status, cmd) in admin(&input).into_iter().zip(commands(&input)) {
            *seen.entry(format!("{status:?}")).or_insert(0) += 1;
            let flags = CmdFlags::from_bits_retain(cmd.flags.get());
            if flags == CmdFlags::REPLACE {
                *seen.entry(format!("replace {status:?}")).or_insert(0) += 1;
            }
        }
        admin(&flip_some(&mut rng, input));
    }
    // The generated commands reach the handlers, not only the decoder's refusals.
    for s in [
        "Ok",
        "BadOpcode",
        "BadArgument",
        "NotFound",
        "Exists",
        "InUse",
        "replace Ok",
        "replace NotFound",
        "replace BadArgument",
    ] {
        assert!(seen.contains_key(s), "{s} never seen: {seen:?}");
    }
    for _ in 0..300 {
        admin(&random_bytes(&mut rng, 1000));
    }
}

/// The generated seeds, by file name under `fuzz/seeds/`.
fn generated_seeds() -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng(0x5eed_5eed);
    let mut out = Vec::new();
    for i in 0..40 {
        let input = generated_batch(&mut rng, 6);
        out.push((format!("pipeline/generated-{i:02}"), input));
    }
    for i in 0..20 {
        out.push((
            format!("admin/generated-{i:02}"),
            admin_program(&mut rng, 40),
        ));
    }
    for i in 0..24 {
        out.push((format!("offload/generated-{i:02}"), offload_input(&mut rng)));
    }
    for i in 0..12 {
        out.push((
            format!("coalesce/generated-{i:02}"),
            coalesce_input(&mut rng),
        ));
    }
    out
}

/// The committed seeds are what the generators make, so a change to the topology or the
/// generators shows here; `VPCNIC_WRITE_SEEDS=1 cargo test -p nic-firmware fuzz` writes
/// them anew. (Seeds of other names, crashes libFuzzer found, are left alone.)
#[test]
fn committed_seeds_are_what_the_generators_make() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let write = std::env::var_os("VPCNIC_WRITE_SEEDS").is_some();
    for (name, input) in generated_seeds() {
        let path = root.join(&name);
        if write {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &input).unwrap();
        } else {
            let committed =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                committed == input,
                "{} is not what the generator makes: run VPCNIC_WRITE_SEEDS=1 cargo test -p \
                 nic-firmware fuzz",
                path.display()
            );
        }
    }
}

/// An offload target input: mostly a structured TCP frame with offloads, to every
/// destination, with the mss and payload sizes a VM's stack uses and some it never would,
/// now and then a header that lies or the raw bytes of a generated VF frame.
pub(super) fn offload_input(rng: &mut Rng) -> Vec<u8> {
    let kind = match rng.below(10) {
        0 => 0u8,
        1 | 2 => 1,
        3..=6 => 2,
        7 | 8 => 3,
        _ => 4,
    };
    let garbage = rng.next_u64() as u16;
    let mss = match rng.below(10) {
        0 => 0,
        1 => rng.pick(&[1u16, 7, 536]),
        2 => 1448,
        3 | 4 => 8937,
        5 => rng.pick(&[8948u16, 8981, 9001, 65535]),
        _ => rng.range(64, 9000) as u16,
    };
    let structured = !rng.chance(10);
    let dst = rng.below(8) as u8;
    let mac = if rng.chance(85) {
        0
    } else {
        rng.below(4) as u8
    };
    let choice = u8::from(rng.chance(40))
        | u8::from(structured) << 1
        | dst << 2
        | mac << 5
        | u8::from(rng.chance(3)) << 7;
    let mut input = vec![kind];
    input.extend_from_slice(&garbage.to_be_bytes());
    input.extend_from_slice(&mss.to_be_bytes());
    input.push(choice);
    if !structured {
        input.extend(vf_frame(rng, 0));
        return input;
    }
    let lie = |rng: &mut Rng, bit: u8| if rng.chance(6) { bit } else { 0 };
    let lies = lie(rng, 1)
        | lie(rng, 2)
        | lie(rng, 4)
        | lie(rng, 8)
        | if rng.chance(70) { 0x10 } else { 0 }
        | lie(rng, 0x20)
        | lie(rng, 0x40)
        | lie(rng, 0x80);
    // Payloads long enough to cut, in few segments unless the mss is small.
    let most = if mss != 0 && mss < 536 { 3000 } else { 65000 };
    let payload = match rng.below(6) {
        0 => rng.below(100),
        1 => rng.below(9000),
        _ => rng.below(most),
    } as u16;
    let fields = [
        if rng.chance(70) {
            0
        } else {
            rng.below(11) as u8
        },
        rng.pick(&[0u8, 3, 3, 10]),
        lies,
        rng.next_u64() as u8,
        rng.next_u64() as u8,
        rng.next_u64() as u8,
        rng.pick(&[0x10u8, 0x18, 0x19, 0x98, 0x02]),
        if rng.chance(85) {
            0
        } else {
            rng.below(256) as u8
        },
    ];
    input.extend_from_slice(&fields);
    input.extend_from_slice(&(rng.next_u64() as u16).to_be_bytes());
    input.extend_from_slice(&rng.next_u32().to_be_bytes());
    input.extend_from_slice(&payload.to_be_bytes());
    input.extend(random_bytes(rng, 40));
    input
}

#[test]
fn offload_target_holds_on_its_seeds_and_on_generated_and_random_input() {
    use offload::{offload, Port};
    let seeds = seeds("offload");
    assert!(seeds.len() >= 15, "{} seeds", seeds.len());
    for s in &seeds {
        offload(s);
    }
    let mut rng = Rng(0x00ff_10ad);
    let (mut segments, mut whole, mut complete, mut uplink) = (0, 0, 0, 0);
    let mut statuses = std::collections::HashSet::new();
    for _ in 0..1500 {
        let input = offload_input(&mut rng);
        let out = offload(&input);
        segments += out.segments;
        whole += out.whole;
        complete += out.complete;
        uplink += out
            .received
            .iter()
            .filter(|r| r.port == Port::Uplink)
            .count();
        statuses.insert(out.status);
        offload(&flip_some(&mut rng, input));
    }
    // The generator reaches the cutting, the whole delivery and the uplink, and both
    // outcomes of a descriptor.
    assert!(segments > 1000, "{segments} segments");
    assert!(whole > 20, "{whole} whole");
    assert!(complete > 50, "{complete} complete");
    assert!(uplink > 100, "{uplink} uplink frames");
    assert!(
        statuses.contains(&0) && statuses.contains(&1),
        "{statuses:?}"
    );
    for _ in 0..1000 {
        offload(&random_bytes(&mut rng, 200));
    }
    offload(&[]);
}

/// A coalesce target input: mostly full segments of one flow to VF 0, back to back with
/// ACK, at an mss a VM's stack uses (or one whose super-frames reach 64 KiB, or an odd
/// one), and now and then a second flow, another destination, a short, empty or long
/// segment, a gap, a PSH or another flag, or a mishap.
pub(super) fn coalesce_input(rng: &mut Rng) -> Vec<u8> {
    let mss_kind = match rng.below(10) {
        0..=3 => 0u8,
        4 | 5 => 2,
        6 => rng.pick(&[3u8, 4, 5, 6]),
        _ => 7,
    };
    let custom = match rng.below(4) {
        0 => rng.range(8184, 8949),
        1 => rng.range(1, 64),
        _ => rng.range(1, 8949),
    } as u16;
    // Now and then every segment has what only some have in a troubled stream: no DF or
    // a fragment, IPv4 options, ECN, Ethernet padding (where the mss is small and there
    // are no TCP options, so that short segments are padded).
    let pad = matches!(mss_kind, 4 | 5) && rng.chance(40);
    let options = if pad { 2 } else { rng.pick(&[0u8, 0, 2, 3]) };
    let choice = mss_kind
        | options << 3
        | u8::from(rng.chance(15)) << 5
        | u8::from(rng.chance(20)) << 6
        | u8::from(rng.chance(10)) << 7;
    let every = if rng.chance(75) {
        0
    } else {
        let frag = if rng.chance(50) {
            0
        } else {
            rng.range(4, 7) as u8
        };
        frag | u8::from(rng.chance(30)) << 3 | u8::from(rng.chance(30)) << 4
    } | u8::from(pad) << 5
        | if rng.chance(70) {
            0
        } else {
            rng.range(1, 3) as u8
        } << 6;
    let mut input = vec![choice];
    input.extend_from_slice(&custom.to_be_bytes());
    input.push(rng.next_u64() as u8);
    input.push(every);
    // A calm stream (a bulk transfer: runs up to 64 KiB) or a troubled one.
    let calm = rng.chance(35);
    let two_flows = !calm && rng.chance(40);
    let elsewhere = !calm && rng.chance(40);
    let mishaps = !calm && rng.chance(50);
    // Per cent of segments shorter, longer or empty; off in sequence; with other flags.
    let (odd_len, odd_step, odd_flags) = if calm { (3, 1, 5) } else { (15, 6, 20) };
    for _ in 0..1 + rng.below(coalesce::MAX_FRAMES as u64) {
        let what = if !mishaps || rng.chance(85) {
            rng.below(88)
        } else {
            rng.range(88, 127).into()
        } as u8;
        let flow = if two_flows && rng.chance(30) {
            3
        } else {
            rng.below(3) as u8
        };
        let dst = if elsewhere && rng.chance(25) {
            rng.range(5, 7)
        } else {
            rng.below(5) as u32
        } as u8;
        let len = if !rng.chance(odd_len) {
            rng.below(192)
        } else {
            let (lo, hi) = rng.pick(&[(192, 223), (224, 247), (248, 255)]);
            rng.range(lo, hi).into()
        } as u8;
        let step = if !rng.chance(odd_step) {
            rng.below(216)
        } else {
            rng.range(216, 255).into()
        } as u8;
        let flags = if !rng.chance(odd_flags) {
            rng.below(184)
        } else if rng.chance(50) {
            rng.range(184, 215).into()
        } else {
            rng.range(216, 255).into()
        } as u8;
        let split = !calm && rng.chance(10);
        input.extend_from_slice(&[
            what | u8::from(split) << 7,
            flow | dst << 2 | (rng.below(4) as u8) << 5,
            len,
            step,
            flags,
            rng.next_u64() as u8,
            rng.next_u64() as u8,
        ]);
    }
    input
}

#[test]
fn coalesce_target_holds_on_its_seeds_and_on_generated_and_random_input() {
    use coalesce::coalesce;
    let seeds = seeds("coalesce");
    assert!(seeds.len() >= 10, "{} seeds", seeds.len());
    for s in &seeds {
        coalesce(s);
    }
    let mut rng = Rng(0xc0a1_e5ce);
    let (mut delivered, mut super_frames, mut coalesced) = (0, 0, 0);
    let (mut near_full, mut short_buffer) = (0, 0);
    for _ in 0..400 {
        let input = coalesce_input(&mut rng);
        let out = coalesce(&input);
        delivered += out.delivered;
        super_frames += out.super_frames;
        coalesced += out.coalesced;
        near_full += out.near_full;
        short_buffer += out.short_buffer;
        coalesce(&flip_some(&mut rng, input));
    }
    // The generator reaches coalescing, often, up to what an RX buffer holds, of 64 KiB or
    // less.
    assert!(delivered > 3000, "{delivered} frames delivered");
    assert!(super_frames > 500, "{super_frames} super-frames");
    assert!(coalesced > 1800, "{coalesced} segments coalesced");
    assert!(
        near_full > 15,
        "{near_full} super-frames that filled their buffer"
    );
    assert!(
        short_buffer > 20,
        "{short_buffer} that filled a shorter one"
    );
    for _ in 0..500 {
        coalesce(&random_bytes(&mut rng, 200));
    }
    coalesce(&[]);
}
