//! The benches' VRF mix (~1.94M routes over 4,096 tables at full size): ours against
//! `rte_lpm6` and `rte_fib6` keyed by VRF + IPv4, on keys over all VRFs and on the
//! cache-warm keys of the first few; and ours against one `rte_lpm` per VRF on the latter
//! (4,096 of those would take 256 GiB).
use super::check::{self, routes_of, same};
use super::{thousands, Ctx};
use crate::dpdk::{self, Fib6, Fib6Lookup, Lpm, Lpm6, LpmSet, VrfKeys};
use crate::encode::{as_u128, ipv4_as_u128, vrf_depth, vrf_key};
use crate::oracle::LpmOracle;
use crate::ours;
use crate::report::{Kind, Method, Row};
use crate::tbl8::{fib6_reserved, trie_groups};
use crate::timing::{race, seconds};
use crate::workload::{fill_route_tables, lpm_keys, ROUTES_PER_TABLE};
use crate::workload::{Rng, RouteIds};
use nic_firmware::tables::lpm::{Route, RouteSlot, RouteTables};

/// One key set: our keys, the same as 16-byte keys, our checked answers.
struct Keys {
    name: String,
    vrf_ip: Vec<(u16, u32)>,
    wide: Vec<[u8; 16]>,
    answers: Vec<Option<Route>>,
}

pub fn run(ctx: &Ctx) -> Result<Vec<Row>, String> {
    let s = ctx.scale;
    ctx.log(format!("VRF mix: drawing {} tables", s.vrfs));
    // The benches' draws: tables, then keys over all of them, then keys over the first 16.
    let mut rng = Rng::new(1);
    let tables = {
        let mut scratch = vec![RouteSlot::EMPTY; s.vrfs * ROUTES_PER_TABLE];
        let mut rt = RouteTables::new(&mut scratch, ROUTES_PER_TABLE);
        fill_route_tables(&mut rt, s.vrfs, &mut rng)
    };
    let ids = RouteIds::new(tables);
    let cold = lpm_keys(&ids.tables, s.keys, &mut rng);
    let hot = lpm_keys(&ids.tables[..s.hot_vrfs], s.keys, &mut rng);

    // Ours, built again from the drawn routes so that the build alone is timed.
    let mut slots = vec![RouteSlot::EMPTY; s.vrfs * ROUTES_PER_TABLE];
    let mut rt = RouteTables::new(&mut slots, ROUTES_PER_TABLE);
    let (built, ours_build) = seconds(|| -> Result<(), String> {
        for (t, _, r) in ids.iter() {
            rt.insert(t as u16, r)
                .map_err(|e| format!("insert {r:?}: {e:?}"))?;
        }
        rt.commit();
        Ok(())
    });
    built?;
    let ours_bytes = s.vrfs * ROUTES_PER_TABLE * RouteTables::BYTES_PER_ROUTE;
    ctx.log(format!(
        "  ours: {} routes in {ours_build:.2} s",
        thousands(ids.len())
    ));

    let oracle = LpmOracle::new(&ids.tables);
    let cold = our_answers(
        ctx,
        &rt,
        &oracle,
        format!("keys over {} VRFs", thousands(s.vrfs)),
        cold,
    )?;
    let hot = our_answers(
        ctx,
        &rt,
        &oracle,
        format!("keys over {} VRFs (cache-warm)", s.hot_vrfs),
        hot,
    )?;

    let all_work = |k: &Keys, dpdk: &str| {
        format!(
            "LPM, {} VRFs ({} routes), {}: {dpdk}",
            thousands(s.vrfs),
            thousands(ids.len()),
            k.name
        )
    };
    let build_work = |dpdk: &str| {
        format!(
            "build, {} VRFs ({} routes): {dpdk}",
            thousands(s.vrfs),
            thousands(ids.len())
        )
    };
    let ours_build = vec![Method::new("insert", ours_build)];
    let mut rows = Vec::new();

    // VRF + IPv4 as 16-byte prefixes, in insertion order, with their route ids.
    let wide: Vec<([u8; 16], u8, u32)> = ids
        .iter()
        .map(|(t, i, r)| {
            (
                vrf_key(t as u16, r.prefix),
                vrf_depth(r.len),
                ids.id(t, i) as u32,
            )
        })
        .collect();
    let wide_u128 = || wide.iter().map(|(k, d, _)| (as_u128(k), *d));

    // rte_lpm6.
    {
        let tbl8s = trie_groups(wide_u128());
        ctx.log(format!("  rte_lpm6: {} tbl8 groups", thousands(tbl8s)));
        let before = dpdk::allocated();
        let (lpm6, build) = seconds(|| -> Result<Lpm6, String> {
            let mut l = Lpm6::new(ids.len() as u32, tbl8s as u32)?;
            for (k, d, id) in &wide {
                l.add(k, *d, *id)?;
            }
            Ok(l)
        });
        let lpm6 = lpm6?;
        let bytes = dpdk::allocated().saturating_sub(before);
        ctx.log(format!("  rte_lpm6: built in {build:.2} s, {bytes} bytes"));
        rows.push(Row {
            work: build_work("rte_lpm6"),
            kind: Kind::Build,
            ours: ours_build.clone(),
            dpdk: vec![Method::new("rte_lpm6_add", build)],
            ours_bytes,
            dpdk_bytes: bytes,
        });
        for k in [&cold, &hot] {
            let mut out = vec![0u32; k.wide.len()];
            lpm6.single(&k.wide, Some(&mut out));
            same(
                "rte_lpm6_lookup",
                &k.vrf_ip,
                &routes_of(&ids, &k.vrf_ip, &out)?,
                &k.answers,
            )?;
            lpm6.bulk(&k.wide, Some(&mut out));
            same(
                "rte_lpm6_lookup_bulk",
                &k.vrf_ip,
                &routes_of(&ids, &k.vrf_ip, &out)?,
                &k.answers,
            )?;
            let t = race(
                s.passes,
                k.vrf_ip.len(),
                &mut [
                    &mut || ours::lpm_single(&rt, &k.vrf_ip),
                    &mut || ours::lpm_batch(&rt, &k.vrf_ip),
                    &mut || lpm6.single(&k.wide, None),
                    &mut || lpm6.bulk(&k.wide, None),
                ],
            );
            rows.push(Row {
                work: all_work(k, "rte_lpm6"),
                kind: Kind::Lookup,
                ours: vec![
                    Method::new("lookup", t[0]),
                    Method::new("lookup_batch", t[1]),
                ],
                dpdk: vec![
                    Method::new("rte_lpm6_lookup", t[2]),
                    Method::new("rte_lpm6_lookup_bulk", t[3]),
                ],
                ours_bytes,
                dpdk_bytes: bytes,
            });
        }
    }

    // rte_fib6, TRIE.
    {
        let tbl8s = fib6_reserved(wide_u128());
        ctx.log(format!("  rte_fib6: {} tbl8 groups", thousands(tbl8s)));
        let before = dpdk::allocated();
        let (fib, build) = seconds(|| -> Result<Fib6, String> {
            let mut f = Fib6::new(ids.len() as u32, tbl8s as u32)?;
            for (k, d, id) in &wide {
                f.add(k, *d, *id)?;
            }
            Ok(f)
        });
        let mut fib = fib?;
        let bytes = dpdk::allocated().saturating_sub(before);
        ctx.log(format!("  rte_fib6: built in {build:.2} s, {bytes} bytes"));
        rows.push(Row {
            work: build_work("rte_fib6 (TRIE)"),
            kind: Kind::Build,
            ours: ours_build.clone(),
            dpdk: vec![Method::new("rte_fib6_add", build)],
            ours_bytes,
            dpdk_bytes: bytes,
        });
        // The AVX-512 lookup where the CPU and EAL allow it; the scalar one always.
        let mut lookups = vec![Fib6Lookup::Scalar];
        match fib.select(Fib6Lookup::Avx512) {
            Ok(()) => lookups.push(Fib6Lookup::Avx512),
            Err(e) => ctx.log(format!("  rte_fib6: no AVX-512 lookup ({e})")),
        }
        for k in [&cold, &hot] {
            let mut ours_t = [f64::INFINITY; 2];
            let mut dpdk_m = Vec::new();
            for &how in &lookups {
                fib.select(how)?;
                let mut out = vec![0u32; k.wide.len()];
                fib.bulk(&k.wide, Some(&mut out));
                let name = format!(
                    "rte_fib6_lookup_bulk ({})",
                    if how == Fib6Lookup::Avx512 {
                        "AVX-512"
                    } else {
                        "scalar"
                    }
                );
                same(
                    &name,
                    &k.vrf_ip,
                    &routes_of(&ids, &k.vrf_ip, &out)?,
                    &k.answers,
                )?;
                let t = race(
                    s.passes,
                    k.vrf_ip.len(),
                    &mut [
                        &mut || ours::lpm_single(&rt, &k.vrf_ip),
                        &mut || ours::lpm_batch(&rt, &k.vrf_ip),
                        &mut || fib.bulk(&k.wide, None),
                    ],
                );
                ours_t[0] = ours_t[0].min(t[0]);
                ours_t[1] = ours_t[1].min(t[1]);
                dpdk_m.push(Method::new(name, t[2]));
            }
            rows.push(Row {
                work: all_work(k, "rte_fib6 (TRIE, 4-byte next hops)"),
                kind: Kind::Lookup,
                ours: vec![
                    Method::new("lookup", ours_t[0]),
                    Method::new("lookup_batch", ours_t[1]),
                ],
                dpdk: dpdk_m,
                ours_bytes,
                dpdk_bytes: bytes,
            });
        }
    }

    // One rte_lpm per cache-warm VRF.
    {
        let before = dpdk::allocated();
        let (set, build) = seconds(|| -> Result<LpmSet, String> {
            let mut tables = Vec::with_capacity(s.hot_vrfs);
            for (t, routes) in ids.tables.iter().enumerate().take(s.hot_vrfs) {
                let tbl8s = trie_groups(routes.iter().map(|r| (ipv4_as_u128(r.prefix), r.len)));
                let mut l = Lpm::new(routes.len() as u32, tbl8s as u32)?;
                // No /0 in rte_lpm: the default route is the answer on a miss
                // (check::default_on_miss).
                for (i, r) in routes.iter().enumerate().filter(|(_, r)| r.len > 0) {
                    l.add(r.prefix, r.len, ids.id(t, i) as u32)?;
                }
                tables.push(l);
            }
            Ok(LpmSet::new(tables))
        });
        let set = set?;
        let bytes = dpdk::allocated().saturating_sub(before);
        ctx.log(format!(
            "  {} x rte_lpm: built in {build:.2} s, {bytes} bytes",
            s.hot_vrfs
        ));
        let keys = VrfKeys::new(&hot.vrf_ip);
        let mut out = vec![0u32; keys.len()];
        set.single(&keys, Some(&mut out));
        check::default_on_miss(&ids, &hot.vrf_ip, &mut out);
        same(
            "rte_lpm_lookup per VRF",
            &hot.vrf_ip,
            &routes_of(&ids, &hot.vrf_ip, &out)?,
            &hot.answers,
        )?;
        let t = race(
            s.passes,
            keys.len(),
            &mut [
                &mut || ours::lpm_single(&rt, &hot.vrf_ip),
                &mut || ours::lpm_batch(&rt, &hot.vrf_ip),
                &mut || set.single(&keys, None),
            ],
        );
        rows.push(Row {
            work: format!(
                "LPM, {} VRFs, {}: {} x rte_lpm (one per VRF)",
                thousands(s.vrfs),
                hot.name,
                s.hot_vrfs
            ),
            kind: Kind::Lookup,
            ours: vec![
                Method::new("lookup", t[0]),
                Method::new("lookup_batch", t[1]),
            ],
            dpdk: vec![Method::new("rte_lpm_lookup in the key's table", t[2])],
            ours_bytes,
            dpdk_bytes: bytes,
        });
    }
    Ok(rows)
}

/// Our answers to `keys`: single and batched lookups agree on every key, and the oracle on
/// every `check_every`th.
fn our_answers(
    ctx: &Ctx,
    rt: &RouteTables<'_>,
    oracle: &LpmOracle,
    name: String,
    keys: Vec<(u16, u32)>,
) -> Result<Keys, String> {
    let answers = ours::lpm_answers(rt, &keys, true);
    same(
        "lookup against lookup_batch",
        &keys,
        &ours::lpm_answers(rt, &keys, false),
        &answers,
    )?;
    let checked = check::oracle(&name, oracle, &keys, &answers, ctx.scale.check_every)?;
    ctx.log(format!(
        "  {name}: {} keys, {} checked against the oracle",
        thousands(keys.len()),
        thousands(checked)
    ));
    let wide = keys.iter().map(|&(t, ip)| vrf_key(t, ip)).collect();
    Ok(Keys {
        name,
        vrf_ip: keys,
        wide,
        answers,
    })
}
