//! One BGP-like table (65,535 routes at full size, the most one of our tables holds):
//! ours against `rte_lpm`, lookups and the time to build each.
use super::check::{self, routes_of, same};
use super::{thousands, Ctx};
use crate::dpdk::{self, Lpm};
use crate::encode::ipv4_as_u128;
use crate::oracle::LpmOracle;
use crate::ours;
use crate::report::{Kind, Method, Row};
use crate::tbl8::trie_groups;
use crate::timing::{race, seconds};
use crate::workload::bgp::{bgp_keys, bgp_routes};
use crate::workload::{Rng, RouteIds};
use nic_firmware::tables::lpm::{RouteSlot, RouteTables};

pub fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let s = ctx.scale;
    let n = s.bgp_routes;
    let mut rng = Rng::new(3);
    let routes = bgp_routes(n, &mut rng);
    let ips = bgp_keys(&routes, s.keys, &mut rng);
    let keys: Vec<(u16, u32)> = ips.iter().map(|&ip| (0, ip)).collect();
    let ids = RouteIds::new(vec![routes]);
    let routes = &ids.tables[0];

    // Ours: one table with room for exactly these routes.
    ctx.log(format!("BGP-like table: {} routes, ours", thousands(n)));
    let mut slots = vec![RouteSlot::EMPTY; n];
    let mut rt = RouteTables::new(&mut slots, n);
    let (built, ours_build) = seconds(|| -> Result<(), String> {
        for r in routes {
            rt.insert(0, *r)
                .map_err(|e| format!("insert {r:?}: {e:?}"))?;
        }
        // A table past 4,096 routes is rebuilt once at the end, as the firmware does at
        // the end of an admin batch: part of the build.
        rt.commit();
        Ok(())
    });
    built?;
    let ours_bytes = n * RouteTables::BYTES_PER_ROUTE;
    ctx.log(format!("  ours: built in {ours_build:.2} s"));

    let answers = ours::lpm_answers(&rt, &keys, true);
    same(
        "lookup against lookup_batch",
        &keys,
        &ours::lpm_answers(&rt, &keys, false),
        &answers,
    )?;
    let checked = check::oracle(
        "BGP keys",
        &LpmOracle::new(&ids.tables),
        &keys,
        &answers,
        s.check_every,
    )?;
    ctx.log(format!(
        "  {} keys checked against the oracle",
        thousands(checked)
    ));

    let tbl8s = trie_groups(routes.iter().map(|r| (ipv4_as_u128(r.prefix), r.len)));
    let before = dpdk::allocated();
    let (lpm, build) = seconds(|| -> Result<Lpm, String> {
        let mut l = Lpm::new(n as u32, tbl8s as u32)?;
        for (i, r) in routes.iter().enumerate() {
            l.add(r.prefix, r.len, i as u32)?;
        }
        Ok(l)
    });
    let lpm = lpm?;
    let bytes = dpdk::allocated().saturating_sub(before);
    ctx.log(format!(
        "  rte_lpm: {tbl8s} tbl8 groups, built in {build:.3} s, {bytes} bytes"
    ));

    let mut out = vec![0u32; ips.len()];
    for (name, f) in [
        (
            "rte_lpm_lookup",
            Lpm::single as fn(&Lpm, &[u32], Option<&mut [u32]>) -> u64,
        ),
        ("rte_lpm_lookup_bulk", Lpm::bulk),
        ("rte_lpm_lookupx4", Lpm::x4),
    ] {
        f(&lpm, &ips, Some(&mut out));
        same(name, &keys, &routes_of(&ids, &keys, &out)?, &answers)?;
    }
    let t = race(
        s.passes,
        keys.len(),
        &mut [
            &mut || ours::lpm_single(&rt, &keys),
            &mut || ours::lpm_batch(&rt, &keys),
            &mut || lpm.single(&ips, None),
            &mut || lpm.bulk(&ips, None),
            &mut || lpm.x4(&ips, None),
        ],
    );
    Ok(vec![
        Row {
            work: format!(
                "LPM, one table of {} BGP-like routes: rte_lpm",
                thousands(n)
            ),
            kind: Kind::Lookup,
            ours: vec![
                Method::new("lookup", t[0]),
                Method::new("lookup_batch", t[1]),
            ],
            dpdk: vec![
                Method::new("rte_lpm_lookup", t[2]),
                Method::new("rte_lpm_lookup_bulk", t[3]),
                Method::new("rte_lpm_lookupx4", t[4]),
            ],
            ours_bytes,
            dpdk_bytes: bytes,
        },
        Row {
            work: format!(
                "build, one table of {} BGP-like routes: rte_lpm",
                thousands(n)
            ),
            kind: Kind::Build,
            ours: vec![Method::new("insert", ours_build)],
            dpdk: vec![Method::new("rte_lpm_add", build)],
            ours_bytes,
            dpdk_bytes: bytes,
        },
    ])
}
