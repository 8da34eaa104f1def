//! The tables at the capacity a cloud NIC needs: 4,096 route tables (VRFs) of 1,000 routes
//! each, and 1,000,000 mappings.
use super::lpm::{prefix_mask, Route, RouteSlot, RouteTables, Target};
use super::mapping::{
    Location, Mapping, MappingBucket, MappingKey, MappingTable, MappingTags, UnderlaySlot,
};
use super::TableError;

const VRFS: usize = 4096;
const ROUTES: usize = 1000;
const MAPPINGS: u32 = 1_000_000;
/// 4 entries a bucket: 1M mappings at 95% of capacity.
const BUCKETS: usize = 262_144;
/// Remote hosts the mappings live on.
const HOSTS: u32 = 4096;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 16) as u32
    }
}

#[test]
fn route_tables_hold_4096_vrfs_of_1000_routes() {
    let mut slots = std::vec![RouteSlot::EMPTY; VRFS * ROUTES];
    let mut t = RouteTables::new(&mut slots, ROUTES);
    assert_eq!(t.tables(), VRFS);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // The first and the last VRF, filled to the last route; the rest stay usable.
    for vrf in [0u16, (VRFS - 1) as u16] {
        let mut reference = std::vec::Vec::new();
        while reference.len() < ROUTES {
            let len = 8 + (rng.next() % 25) as u8;
            let prefix = rng.next() & prefix_mask(len);
            let r = Route {
                prefix,
                len,
                target: Target::Gateway((rng.next() % 64) as u16),
            };
            match t.insert(vrf, r) {
                Ok(()) => reference.push(r),
                Err(TableError::Exists) => {}
                Err(e) => panic!("VRF {vrf}, route {}: {e:?}", reference.len()),
            }
        }
        let extra = Route {
            prefix: 0,
            len: 0,
            target: Target::Blackhole,
        };
        assert_eq!(t.insert(vrf, extra), Err(TableError::Full));
        for _ in 0..2000 {
            let ip = rng.next();
            let want = reference
                .iter()
                .filter(|r| ip & prefix_mask(r.len) == r.prefix)
                .max_by_key(|r| r.len)
                .copied();
            assert_eq!(t.lookup(vrf, ip), want, "VRF {vrf}, {ip:#010x}");
        }
    }
    assert_eq!(t.lookup(1, 0x0a00_0001), None, "untouched VRFs stay empty");
}

#[test]
fn mapping_table_holds_a_million_mappings() {
    let mut buckets = std::vec![MappingBucket::EMPTY; BUCKETS];
    let mut tags = std::vec![MappingTags::EMPTY; MappingTags::lines_for(BUCKETS)];
    let mut underlays = std::vec![UnderlaySlot::EMPTY; 2 * HOSTS as usize];
    let mut t = MappingTable::new(&mut buckets, &mut tags, &mut underlays);
    let key = |i: u32| MappingKey {
        vni: 1 + i % 4096,
        ip: 0x0a00_0000 | i,
    };
    let value = |i: u32| Mapping {
        mac: [
            2,
            0,
            (i >> 24) as u8,
            (i >> 16) as u8,
            (i >> 8) as u8,
            i as u8,
        ],
        location: if i.is_multiple_of(4) {
            Location::LocalVf((i % 256) as u16)
        } else {
            Location::Remote {
                underlay_ip: 0x6400_0000 | ((i / 4) % HOSTS),
            }
        },
    };
    for i in 0..MAPPINGS {
        assert_eq!(t.insert(key(i), value(i)), Ok(()), "mapping {i}");
    }
    assert_eq!(t.len(), MAPPINGS as usize);
    assert_eq!(t.underlays().0, HOSTS as usize);
    let mut rng = Rng(42);
    for _ in 0..10_000 {
        let i = rng.next() % MAPPINGS;
        assert_eq!(t.get(key(i)), Some(value(i)));
    }
    assert_eq!(t.get(key(MAPPINGS + 1)), None);
}
