//! Results: each method measured, each workload's best of both sides, and the markdown
//! table the issue uses (`| work | vpcnic | DPDK | ratio | memory |`).
use std::fmt::Write;

/// One measured way of doing a workload: a lookup method (ns per lookup) or a build
/// (seconds for the whole table).
#[derive(Clone, Debug)]
pub struct Method {
    pub name: String,
    /// ns per lookup, or seconds for a build.
    pub cost: f64,
}

impl Method {
    pub fn new(name: impl Into<String>, cost: f64) -> Self {
        Method {
            name: name.into(),
            cost,
        }
    }
}

/// The cheapest of `methods`.
pub fn best(methods: &[Method]) -> Option<&Method> {
    methods.iter().min_by(|a, b| a.cost.total_cmp(&b.cost))
}

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ns per lookup.
    Lookup,
    /// Seconds to build the table.
    Build,
}

/// One workload, both sides.
#[derive(Clone, Debug)]
pub struct Row {
    pub work: String,
    pub kind: Kind,
    pub ours: Vec<Method>,
    pub dpdk: Vec<Method>,
    /// Bytes of our structure and of DPDK's.
    pub ours_bytes: usize,
    pub dpdk_bytes: usize,
}

impl Row {
    /// Our speed over DPDK's, best method against best method: above 1, ours is faster.
    pub fn ratio(&self) -> Option<f64> {
        Some(best(&self.dpdk)?.cost / best(&self.ours)?.cost)
    }
}

fn cost(kind: Kind, m: &Method) -> String {
    match kind {
        Kind::Lookup => format!("{}: {:.1} ns, {:.1} M/s", m.name, m.cost, 1e3 / m.cost),
        Kind::Build => format!("{}: {}", m.name, seconds(m.cost)),
    }
}

fn seconds(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.2} s")
    } else {
        format!("{:.1} ms", s * 1e3)
    }
}

/// Bytes in MB (10^6) or GB (10^9).
pub fn bytes(b: usize) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

/// Lookup rows first, then builds, each in the order measured.
fn ordered(rows: &[Row]) -> impl Iterator<Item = &Row> {
    let of = move |k: Kind| rows.iter().filter(move |r| r.kind == k);
    of(Kind::Lookup).chain(of(Kind::Build))
}

/// The table: each row's best method on each side, the ratio, the memory.
pub fn markdown(rows: &[Row]) -> String {
    let mut s = String::from(
        "| work | vpcnic | DPDK | ratio | memory |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in ordered(rows) {
        let ours = best(&r.ours).map_or("-".into(), |m| cost(r.kind, m));
        let dpdk = best(&r.dpdk).map_or("-".into(), |m| cost(r.kind, m));
        let ratio = r.ratio().map_or("-".into(), |x| format!("{x:.2}x"));
        let _ = writeln!(
            s,
            "| {} | {ours} | {dpdk} | {ratio} | {} vs {} |",
            r.work,
            bytes(r.ours_bytes),
            bytes(r.dpdk_bytes)
        );
    }
    s
}

/// Every method of every row, for the record.
pub fn details(rows: &[Row]) -> String {
    let mut s = String::from("| work | side | method | cost |\n| --- | --- | --- | --- |\n");
    for r in ordered(rows) {
        for (side, ms) in [("vpcnic", &r.ours), ("DPDK", &r.dpdk)] {
            for m in ms.iter() {
                let c = match r.kind {
                    Kind::Lookup => format!("{:.2} ns/lookup, {:.1} M/s", m.cost, 1e3 / m.cost),
                    Kind::Build => seconds(m.cost),
                };
                let _ = writeln!(s, "| {} | {side} | {} | {c} |", r.work, m.name);
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_is_our_speed_over_dpdks_best_against_best() {
        let row = Row {
            work: "w".into(),
            kind: Kind::Lookup,
            ours: vec![Method::new("a", 40.0), Method::new("b", 20.0)],
            dpdk: vec![Method::new("c", 10.0), Method::new("d", 30.0)],
            ours_bytes: 65_536_000,
            dpdk_bytes: 2_200_000_000,
        };
        assert_eq!(row.ratio(), Some(0.5));
        let md = markdown(&[row]);
        assert!(md.starts_with("| work | vpcnic | DPDK | ratio | memory |\n"));
        assert!(md.contains(
            "| w | b: 20.0 ns, 50.0 M/s | c: 10.0 ns, 100.0 M/s | 0.50x | 65.5 MB vs 2.20 GB |"
        ));
    }
}
