//! The staged batch of `process_batch` against the per-frame reference `process_frame`:
//! the same verdict and the same output bytes for every frame, over many random batches
//! of valid, odd and broken frames on the fuzzers' topology (`crate::fuzz::topology`).
use super::{process_batch, process_frame, Port, Verdict};
use crate::frame::FrameBuf;
use crate::fuzz::topology::*;
use crate::testing::{OwnedMemory, Rng};

#[test]
fn batch_matches_frame_by_frame() {
    let mut owned = OwnedMemory::new(SIZES);
    let mut t = tables(&mut owned);
    let mut rng = Rng(7);
    let mut batch = vec![FrameBuf::EMPTY; 70];
    let mut single = FrameBuf::EMPTY;
    let mut seen = std::collections::HashSet::new();
    for round in 0..3000 {
        // Batches longer than a stage chunk (32), and verdict slices shorter than batches.
        let n = 1 + rng.below(70) as usize;
        let src = if rng.chance(10) {
            Port::Uplink
        } else {
            // VF 4 has no subnet, VF 5 is not assigned.
            Port::Vf(rng.below(6) as u16)
        };
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|_| match src {
                Port::Vf(vf) => vf_frame(&mut rng, vf),
                Port::Uplink => uplink_frame(&mut rng),
            })
            .collect();
        for (buf, f) in batch.iter_mut().zip(&frames) {
            assert!(buf.load(f));
        }
        let short = if rng.chance(10) { n / 2 } else { n };
        let mut verdicts = vec![Verdict::ToUplink; short];
        process_batch(&t, src, &mut batch[..n], &mut verdicts);
        for (i, f) in frames.iter().enumerate().take(short) {
            assert!(single.load(f));
            let want = process_frame(&t, src, &mut single);
            seen.insert(format!("{want:?}"));
            assert_eq!(
                verdicts[i], want,
                "round {round} frame {i} from {src:?}: {f:02x?}"
            );
            assert_eq!(
                batch[i].data(),
                single.data(),
                "round {round} frame {i} from {src:?}: bytes"
            );
        }
    }
    // The mix reaches every kind of verdict and many drop reasons.
    assert!(seen.len() >= 20, "{seen:?}");
    for v in [
        "ToVf",
        "Reply",
        "ToUplink",
        "Fragment",
        "DropNoMapping",
        "DropBlackhole",
    ] {
        assert!(
            seen.iter().any(|s| s.contains(v)),
            "{v} never seen: {seen:?}"
        );
    }
    // Keep the mutable storage borrowed until here.
    t.mappings.clear();
}

/// The flow cache in front of the staged batch: flows repeat (each VF keeps a pool of
/// frames it sends again), so most frames are hits, and the tables change now and then
/// (with the cache invalidated, as the firmware does after every admin command); every
/// frame still gets the verdict and bytes of the per-frame path.
#[test]
fn cached_batch_matches_frame_by_frame() {
    use super::flow_cache::FlowCache;
    use super::{process_batch_cached, FlowEntry};
    use crate::tables::mapping::MappingKey;
    let mut owned = OwnedMemory::new(SIZES);
    let mut t = tables(&mut owned);
    let mut storage = vec![FlowEntry::EMPTY; 256];
    let mut cache = FlowCache::new(&mut storage);
    let mut rng = Rng(11);
    let mut batch = vec![FrameBuf::EMPTY; 70];
    let mut single = FrameBuf::EMPTY;
    let mut pools: Vec<Vec<Vec<u8>>> = (0..6u16)
        .map(|vf| (0..24).map(|_| vf_frame(&mut rng, vf)).collect())
        .collect();
    let mut forwards = 0;
    for round in 0..3000 {
        if rng.chance(2) {
            // A change: a mapping goes (and comes back later from the topology's set).
            let keys: Vec<MappingKey> = t.mappings.iter().map(|(k, _)| k).collect();
            if !keys.is_empty() {
                let k = keys[rng.below(keys.len() as u64) as usize];
                let _ = t.mappings.remove(k);
            }
            if rng.chance(30) {
                let mut fresh = OwnedMemory::new(SIZES);
                let again = tables(&mut fresh);
                for (k, m) in again.mappings.iter() {
                    let _ = t.mappings.insert(k, m);
                }
            }
            cache.invalidate();
        }
        let vf = rng.below(6) as u16;
        let n = 1 + rng.below(70) as usize;
        let pool = &mut pools[usize::from(vf)];
        let frames: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let slot = rng.below(pool.len() as u64) as usize;
                if rng.chance(10) {
                    pool[slot] = vf_frame(&mut rng, vf);
                }
                pool[slot].clone()
            })
            .collect();
        for (buf, f) in batch.iter_mut().zip(&frames) {
            assert!(buf.load(f));
        }
        let mut verdicts = vec![Verdict::ToUplink; n];
        process_batch_cached(&t, &mut cache, Port::Vf(vf), &mut batch[..n], &mut verdicts);
        for (i, f) in frames.iter().enumerate() {
            assert!(single.load(f));
            let want = process_frame(&t, Port::Vf(vf), &mut single);
            assert_eq!(
                verdicts[i], want,
                "round {round} frame {i} from VF{vf}: {f:02x?}"
            );
            assert_eq!(
                batch[i].data(),
                single.data(),
                "round {round} frame {i}: bytes"
            );
            if matches!(want, Verdict::ToVf { .. } | Verdict::ToUplink) {
                forwards += 1;
            }
        }
    }
    // Most forwarded frames were decided by the cache.
    assert!(
        cache.hits() > forwards / 2,
        "{} hits of {forwards} forwards",
        cache.hits()
    );
    t.mappings.clear();
}

/// An ARP request answered once is answered from the flow cache after: the same reply
/// bytes (the request's own sender MAC and address), for the gateway, an instance and an
/// address outside the subnet.
#[test]
fn arp_answers_come_from_the_cache_once_learned() {
    use super::flow_cache::FlowCache;
    use super::{process_batch_cached, FlowEntry};
    use crate::testing::arp_request;
    use std::net::Ipv4Addr;
    let mut owned = OwnedMemory::new(SIZES);
    let t = tables(&mut owned);
    let mut storage = vec![FlowEntry::EMPTY; 256];
    let mut cache = FlowCache::new(&mut storage);
    let (vf, _, own, _) = VFS[0];
    let targets = [0x0a00_0101u32, 0x0a00_010b, 0x0808_0808];
    let frames: Vec<Vec<u8>> = targets
        .iter()
        .map(|t| arp_request(vf_mac(vf), Ipv4Addr::from(own), Ipv4Addr::from(*t)))
        .collect();
    let mut batch = vec![FrameBuf::EMPTY; frames.len()];
    let mut single = FrameBuf::EMPTY;
    for pass in 0..2 {
        for (buf, f) in batch.iter_mut().zip(&frames) {
            assert!(buf.load(f));
        }
        let before = cache.hits();
        let mut verdicts = vec![Verdict::ToUplink; frames.len()];
        process_batch_cached(&t, &mut cache, Port::Vf(vf), &mut batch, &mut verdicts);
        for (i, f) in frames.iter().enumerate() {
            assert!(single.load(f));
            assert_eq!(verdicts[i], process_frame(&t, Port::Vf(vf), &mut single));
            assert_eq!(verdicts[i], Verdict::Reply { vf }, "target {i}");
            assert_eq!(batch[i].data(), single.data(), "pass {pass} target {i}");
        }
        let hits = cache.hits() - before;
        assert_eq!(hits, if pass == 0 { 0 } else { frames.len() as u64 });
    }
}
