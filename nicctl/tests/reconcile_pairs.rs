//! `apply` between VPC files on a running NIC: after it, the NIC's `TABLE_READ` equals that
//! of a fresh NIC programmed from the new file, and applying the new file again changes
//! nothing. Every pair of the example files, and hand-made variants of each kind of change.
//! In-process simulated NICs; no root needed.
use host_driver::backend::sim::SimBackend;
use host_driver::table_read::NicTables;
use host_driver::PfDriver;
use nicctl::config::{self, Config, Limits};

fn nic() -> PfDriver {
    let backend = SimBackend::start(hw_sim::SimConfig::default()).expect("simulator starts");
    PfDriver::open(Box::new(backend)).expect("driver opens")
}

fn parse(what: &str, text: &str) -> Config {
    config::parse(text, &Limits::vfs(8)).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn example(name: &str) -> String {
    let path = format!("{}/../examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What a fresh NIC holds once `config`'s plan for its first host is applied.
fn fresh(config: &Config) -> NicTables {
    let d = nic();
    let plan = config::plan(config, &config.hosts[0].name).unwrap();
    config::apply(&d, &plan, |_, _| {}).unwrap();
    d.read_tables().unwrap()
}

/// Programs a NIC from `from`, applies `to`, and checks the result and that a second apply
/// is a no-op. Returns how many changes the apply made.
fn check(what: &str, from: &Config, to: &Config) -> usize {
    let d = nic();
    let first = config::plan(from, &from.hosts[0].name).unwrap();
    config::apply(&d, &first, |_, _| {}).unwrap();
    let held = config::held(&d).unwrap();
    let next = config::plan_against(to, &to.hosts[0].name, &held, 8).unwrap();
    let changes = config::apply(&d, &next, |_, _| {}).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (now, fresh) = (d.read_tables().unwrap(), fresh(to));
    assert_eq!(
        NicTables::canonical(&now),
        NicTables::canonical(&fresh),
        "{what}: {changes:#?}"
    );
    let held = config::held(&d).unwrap();
    let again = config::plan_against(to, &to.hosts[0].name, &held, 8).unwrap();
    assert_eq!(again.desired(), next.desired(), "{what}: the IDs moved");
    let again = config::apply(&d, &again, |_, _| {}).unwrap();
    assert!(
        again.is_empty(),
        "{what}: a second apply changed {again:#?}"
    );
    changes.len()
}

#[test]
fn every_pair_of_example_files() {
    let files = ["three-tier.toml", "peering.toml", "two-hosts.toml"];
    let configs: Vec<Config> = files.iter().map(|f| parse(f, &example(f))).collect();
    for (i, a) in configs.iter().enumerate() {
        for (j, b) in configs.iter().enumerate() {
            let n = check(&format!("{} -> {}", files[i], files[j]), a, b);
            assert_eq!(n == 0, i == j, "{} -> {}: {n} changes", files[i], files[j]);
        }
    }
}

/// Variants of three-tier.toml, one kind of change each: (what, text to find, replacement).
const VARIANTS: &[(&str, &str, &str)] = &[
    (
        "a route's target",
        r#"{ dest = "0.0.0.0/0", target = "igw" },"#,
        r#"{ dest = "0.0.0.0/0", target = "natgw" },"#,
    ),
    (
        "a route added",
        r#"{ dest = "10.0.8.0/24", target = "blackhole" },"#,
        r#"{ dest = "10.0.8.0/24", target = "blackhole" },
  { dest = "10.0.7.0/24", target = "blackhole" },"#,
    ),
    (
        "a route removed",
        r#"  { dest = "10.0.8.0/24", target = "blackhole" },
"#,
        "",
    ),
    (
        "a secondary address added",
        r#"secondary_ips = ["10.0.2.21"]"#,
        r#"secondary_ips = ["10.0.2.21", "10.0.2.22"]"#,
    ),
    (
        "a secondary address removed",
        r#"secondary_ips = ["10.0.2.21"]"#,
        "secondary_ips = []",
    ),
    (
        "an instance added at the end",
        "[host.h1]",
        "[instance.web3]\nsubnet = \"web\"\nip = \"10.0.1.12\"\nhost = \"h1\"\n\n[host.h1]",
    ),
    (
        "an instance added on the other host",
        "[host.h1]",
        "[instance.web4]\nsubnet = \"web\"\nip = \"10.0.1.13\"\nhost = \"h2\"\n\n[host.h1]",
    ),
    (
        "source/destination check turned off",
        "[instance.web1]\nsubnet = \"web\"\nip = \"10.0.1.10\"\n",
        "[instance.web1]\nsubnet = \"web\"\nip = \"10.0.1.10\"\nsrc_dst_check = false\n",
    ),
    (
        "a subnet added at the end",
        "[instance.web1]",
        "[subnet.extra]\nvpc = \"prod\"\ncidr = \"10.0.4.0/24\"\n\n[instance.web1]",
    ),
];

#[test]
fn each_kind_of_change_and_back() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/three-tier.toml"
    ))
    .unwrap();
    let base = parse("three-tier", &text);
    for (what, find, replace) in VARIANTS {
        assert!(text.contains(find), "{what}: the base has no {find:?}");
        let variant = parse(what, &text.replacen(find, replace, 1));
        assert!(check(what, &base, &variant) > 0, "{what}: nothing changed");
        assert!(check(&format!("{what}, back"), &variant, &base) > 0);
    }
}

/// SplitMix64: a small, seeded generator for the generated files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A random valid VPC file of one host: up to 3 VPCs (VNIs and CIDRs from a small pool so
/// that two files share some), gateways, route tables with every kind of target, subnets,
/// instances with secondary addresses and checks on or off.
fn generated(rng: &mut Rng) -> String {
    let mut f = String::new();
    let vpcs: Vec<usize> = (0..4).filter(|_| rng.chance(60)).collect();
    let vpcs = if vpcs.is_empty() { vec![0] } else { vpcs };
    for &v in &vpcs {
        f += &format!(
            "[vpc.v{v}]\nvni = {}\ncidr = \"10.{v}.0.0/16\"\n\n",
            100 + v
        );
    }
    let gateways: Vec<usize> = (0..3).filter(|_| rng.chance(50)).collect();
    for &g in &gateways {
        let kind = ["internet", "vpn", "nat"][g];
        f += &format!("[gateway.g{g}]\nkind = \"{kind}\"\n\n");
    }
    // Instances first (routes may point at them), kept to the subnets below.
    let mut subnets = Vec::new();
    for &v in &vpcs {
        for s in 0..3 {
            if rng.chance(60) {
                subnets.push((v, s));
            }
        }
    }
    let mut instances = Vec::new();
    for (k, &(v, s)) in subnets.iter().enumerate() {
        for i in 0..2 {
            if instances.len() < 7 && rng.chance(55) {
                instances.push((k, v, s, 10 + i));
            }
        }
    }
    let mut tables = Vec::new();
    for &v in &vpcs {
        if rng.chance(70) {
            let mut routes = Vec::new();
            for (n, dest) in ["0.0.0.0/0", "192.168.0.0/16", "172.16.0.0/12"]
                .iter()
                .enumerate()
            {
                if !rng.chance(60) {
                    continue;
                }
                let others: Vec<usize> = vpcs.iter().copied().filter(|&o| o != v).collect();
                let eni: Vec<&(usize, usize, usize, usize)> =
                    instances.iter().filter(|i| i.1 == v).collect();
                let target = match rng.below(4) {
                    0 if !gateways.is_empty() => {
                        format!("g{}", gateways[rng.below(gateways.len())])
                    }
                    1 if !eni.is_empty() => {
                        let (_, iv, is, ii) = eni[rng.below(eni.len())];
                        format!("eni:i{iv}{is}{ii}")
                    }
                    2 if !others.is_empty() && n > 0 => {
                        // A peering route's prefix must be the peer's CIDR.
                        let o = others[rng.below(others.len())];
                        routes.push(format!(
                            "{{ dest = \"10.{o}.0.0/16\", target = \"pcx:v{o}\" }}"
                        ));
                        continue;
                    }
                    _ => "blackhole".to_string(),
                };
                routes.push(format!("{{ dest = \"{dest}\", target = \"{target}\" }}"));
            }
            f += &format!(
                "[route_table.t{v}]\nvpc = \"v{v}\"\nroutes = [{}]\n\n",
                routes.join(", ")
            );
            tables.push(v);
        }
    }
    for &(v, s) in &subnets {
        f += &format!("[subnet.s{v}{s}]\nvpc = \"v{v}\"\ncidr = \"10.{v}.{s}.0/24\"\n");
        if tables.contains(&v) && rng.chance(50) {
            f += &format!("route_table = \"t{v}\"\n");
        }
        f += "\n";
    }
    for &(_, v, s, i) in &instances {
        f += &format!("[instance.i{v}{s}{i}]\nsubnet = \"s{v}{s}\"\nip = \"10.{v}.{s}.{i}\"\n");
        if rng.chance(40) {
            f += &format!("secondary_ips = [\"10.{v}.{s}.{}\"]\n", i + 100);
        }
        if rng.chance(20) {
            f += "src_dst_check = false\n";
        }
        f += "\n";
    }
    f
}

#[test]
fn random_pairs_of_generated_files() {
    let mut rng = Rng(0x5EED_0010);
    let mut changed = 0;
    for round in 0..40 {
        let (a, b) = (generated(&mut rng), generated(&mut rng));
        let (a, b) = (
            parse(&format!("round {round} a:\n{a}"), &a),
            parse(&format!("round {round} b:\n{b}"), &b),
        );
        if check(&format!("round {round}"), &a, &b) > 0 {
            changed += 1;
        }
    }
    assert!(
        changed > 30,
        "the generator makes different files: {changed}"
    );
}
