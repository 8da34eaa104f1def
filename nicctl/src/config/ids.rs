//! [`Ids`]: which NIC table ID each object of a VPC file gets on one host's NIC.
//!
//! On a fresh NIC IDs follow file order. On a NIC that already holds a plan, an object the
//! NIC already has keeps its ID, recognised by what it is rather than where it stands in
//! the file: a VPC by its VNI, a gateway by its underlay address, a subnet by its VPC and
//! CIDR, a VPC's main route table through its VPC, another route table by its routes (or
//! the subnets that use it), an instance's VF by its MAC (or its address). New objects get
//! the lowest IDs neither held nor taken. So adding or removing an object changes that
//! object only, and an instance never changes VF (its VM stays plugged into it).
use super::model::Config;
use host_driver::reconcile::State;
use std::collections::{BTreeSet, HashMap};

/// The IDs of one host's plan, indexed like the [`Config`]'s vectors.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ids {
    pub vpcs: Vec<u16>,
    /// The main route table of each VPC.
    pub main_tables: Vec<u16>,
    pub route_tables: Vec<u16>,
    pub subnets: Vec<u16>,
    pub gateways: Vec<u16>,
    /// The VF of each instance of this host, by instance index.
    pub vfs: HashMap<usize, u16>,
}

/// IDs in use, and the next free one.
struct Pool {
    taken: BTreeSet<u16>,
    /// Held IDs given to a new object.
    reused: BTreeSet<u16>,
}

impl Pool {
    fn new(held: impl IntoIterator<Item = u16>) -> Pool {
        Pool {
            taken: held.into_iter().collect(),
            reused: BTreeSet::new(),
        }
    }

    /// Takes `id` (one the NIC holds for the same object).
    fn keep(&mut self, id: u16) -> u16 {
        self.taken.insert(id);
        id
    }

    /// The lowest ID below `limit` not taken; else the lowest of `reusable` not taken (an ID
    /// held by an object that goes); else `limit` (which the NIC refuses, naming it).
    fn fresh_below(&mut self, limit: u16, reusable: &BTreeSet<u16>) -> u16 {
        let id = (0..limit)
            .find(|i| !self.taken.contains(i))
            .or_else(|| reusable.iter().copied().find(|i| !self.reused.contains(i)))
            .unwrap_or(limit);
        self.taken.insert(id);
        self.reused.insert(id);
        id
    }

    /// The lowest ID not taken.
    fn fresh(&mut self) -> u16 {
        let id = (0..=u16::MAX)
            .find(|i| !self.taken.contains(i))
            .unwrap_or(u16::MAX);
        self.taken.insert(id);
        id
    }
}

impl Ids {
    /// Whether these are IDs for host `h` of `config`: one per object, a VF for each of
    /// the host's instances and none for another host's.
    pub fn fit(&self, config: &Config, h: usize) -> bool {
        self.vpcs.len() == config.vpcs.len()
            && self.main_tables.len() == config.vpcs.len()
            && self.route_tables.len() == config.route_tables.len()
            && self.subnets.len() == config.subnets.len()
            && self.gateways.len() == config.gateways.len()
            && config
                .instances
                .iter()
                .enumerate()
                .all(|(i, inst)| (inst.host == h) == self.vfs.contains_key(&i))
    }

    /// The IDs for host `h` of `config` on a NIC holding `held` that has `num_vfs` VFs. VFs
    /// are few: when none is free, one whose instance goes is given to a new one (the
    /// reconciler moves the old instance's mappings off it first).
    pub fn allocate(config: &Config, h: usize, held: &State, num_vfs: u16) -> Ids {
        let mut ids = Ids::default();
        let mut vpc_pool = Pool::new(held.vpcs.keys().copied());
        let mut claimed_vpcs = BTreeSet::new();
        for v in &config.vpcs {
            let same = held
                .vpcs
                .values()
                .find(|h| h.vni == v.vni && !claimed_vpcs.contains(&h.id));
            ids.vpcs.push(match same {
                Some(h) => {
                    claimed_vpcs.insert(h.id);
                    vpc_pool.keep(h.id)
                }
                None => vpc_pool.fresh(),
            });
        }

        let mut gateway_pool = Pool::new(held.gateways.keys().copied());
        let mut claimed_gateways = BTreeSet::new();
        for g in 0..config.gateways.len() {
            let underlay = config.gateways[g].underlay;
            let same = held
                .gateways
                .values()
                .find(|h| h.underlay_ip == underlay && !claimed_gateways.contains(&h.id));
            ids.gateways.push(match same {
                Some(h) => {
                    claimed_gateways.insert(h.id);
                    gateway_pool.keep(h.id)
                }
                None => gateway_pool.fresh(),
            });
        }

        let mut table_pool = Pool::new(held.route_tables.keys().copied());
        let mut claimed_tables = BTreeSet::new();
        for &vpc in &ids.vpcs {
            let main = held
                .vpcs
                .get(&vpc)
                .filter(|h| claimed_vpcs.contains(&h.id))
                .and_then(|h| h.main_route_table)
                .filter(|t| held.route_tables.get(t) == Some(&vpc));
            ids.main_tables.push(match main {
                Some(t) => {
                    claimed_tables.insert(t);
                    table_pool.keep(t)
                }
                None => table_pool.fresh(),
            });
        }
        // The held tables of a VPC that no VPC calls its main table.
        let held_mains: BTreeSet<u16> = held
            .vpcs
            .values()
            .filter_map(|v| v.main_route_table)
            .collect();
        for (j, t) in config.route_tables.iter().enumerate() {
            let vpc = ids.vpcs[t.vpc];
            let dests: BTreeSet<_> = t.routes.iter().map(|r| r.dest).collect();
            let candidates: Vec<u16> = held
                .route_tables
                .iter()
                .filter(|&(id, &v)| {
                    v == vpc && !held_mains.contains(id) && !claimed_tables.contains(id)
                })
                .map(|(&id, _)| id)
                .collect();
            let held_dests = |id: u16| -> BTreeSet<_> {
                held.routes
                    .keys()
                    .filter(|(t, _)| *t == id)
                    .map(|&(_, d)| d)
                    .collect()
            };
            // The subnets (by CIDR) of the file that use this table, and of each candidate.
            let users: BTreeSet<_> = config
                .subnets
                .iter()
                .filter(|s| s.route_table == Some(j))
                .map(|s| s.cidr)
                .collect();
            let held_users = |id: u16| -> BTreeSet<_> {
                held.subnets
                    .values()
                    .filter(|s| s.route_table == Some(id))
                    .map(|s| s.cidr)
                    .collect()
            };
            let chosen = candidates
                .iter()
                .copied()
                .find(|&c| held_dests(c) == dests)
                .or_else(|| {
                    candidates
                        .iter()
                        .copied()
                        .filter(|&c| !users.is_empty() && held_users(c) == users)
                        .max_by_key(|&c| held_users(c).len())
                });
            ids.route_tables.push(match chosen {
                Some(c) => {
                    claimed_tables.insert(c);
                    table_pool.keep(c)
                }
                None => table_pool.fresh(),
            });
        }

        let mut subnet_pool = Pool::new(held.subnets.keys().copied());
        let mut claimed_subnets = BTreeSet::new();
        for s in &config.subnets {
            let vpc = ids.vpcs[s.vpc];
            let same = held
                .subnets
                .values()
                .find(|h| h.vpc_id == vpc && h.cidr == s.cidr && !claimed_subnets.contains(&h.id));
            ids.subnets.push(match same {
                Some(h) => {
                    claimed_subnets.insert(h.id);
                    subnet_pool.keep(h.id)
                }
                None => subnet_pool.fresh(),
            });
        }

        let mut vf_pool = Pool::new(held.vfs.keys().copied());
        let mut claimed_vfs = BTreeSet::new();
        let mine: Vec<usize> = (0..config.instances.len())
            .filter(|&i| config.instances[i].host == h)
            .collect();
        // Two passes: every instance the NIC already serves keeps its VF first, so a new
        // instance earlier in the file cannot take it.
        for &i in &mine {
            let inst = &config.instances[i];
            let same = held
                .vfs
                .values()
                .find(|v| v.mac == inst.mac && !claimed_vfs.contains(&v.vf))
                .or_else(|| {
                    held.vfs
                        .values()
                        .find(|v| v.primary_ip == inst.ip && !claimed_vfs.contains(&v.vf))
                });
            if let Some(v) = same {
                claimed_vfs.insert(v.vf);
                ids.vfs.insert(i, vf_pool.keep(v.vf));
            }
        }
        let departing: BTreeSet<u16> = held
            .vfs
            .keys()
            .copied()
            .filter(|v| !claimed_vfs.contains(v))
            .collect();
        for &i in &mine {
            ids.vfs
                .entry(i)
                .or_insert_with(|| vf_pool.fresh_below(num_vfs, &departing));
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, plan, plan_against, Limits};

    const VFS: u16 = 8;

    const BASE: &str = r#"
[vpc.a]
vni = 10
cidr = "10.1.0.0/16"

[vpc.b]
vni = 20
cidr = "10.2.0.0/16"

[route_table.rt]
vpc = "a"
routes = [{ dest = "10.9.0.0/16", target = "blackhole" }]

[subnet.s1]
vpc = "a"
cidr = "10.1.1.0/24"
route_table = "rt"

[subnet.s2]
vpc = "a"
cidr = "10.1.2.0/24"

[subnet.s3]
vpc = "b"
cidr = "10.2.3.0/24"

[instance.i1]
subnet = "s1"
ip = "10.1.1.10"

[instance.i2]
subnet = "s2"
ip = "10.1.2.10"

[instance.i3]
subnet = "s3"
ip = "10.2.3.10"
"#;

    fn vfs(p: &crate::config::Plan) -> Vec<(String, u16)> {
        let mut v = p.vfs.clone();
        v.sort();
        v
    }

    #[test]
    fn what_the_nic_holds_keeps_its_ids_whatever_the_file_order() {
        let base = parse(BASE, &Limits::default()).unwrap();
        let host = base.hosts[0].name.clone();
        let first = plan(&base, &host).unwrap();
        let held = first.desired();
        // A VPC, a subnet and an instance added at the top of the file, s2 removed, and i2
        // with it.
        let text = BASE
            .replace("[vpc.a]", "[vpc.z]\nvni = 5\ncidr = \"10.5.0.0/16\"\n\n[subnet.z1]\nvpc = \"z\"\ncidr = \"10.5.1.0/24\"\n\n[instance.z9]\nsubnet = \"z1\"\nip = \"10.5.1.9\"\n\n[vpc.a]")
            .replace("[subnet.s2]\nvpc = \"a\"\ncidr = \"10.1.2.0/24\"\n", "")
            .replace("[instance.i2]\nsubnet = \"s2\"\nip = \"10.1.2.10\"\n", "");
        let next = parse(&text, &Limits::default()).unwrap();
        let p = plan_against(&next, &host, &held, VFS).unwrap();
        let d = p.desired();
        // Held objects keep their IDs: VPCs by VNI, subnets by CIDR, VFs by instance.
        let vpc_of = |vni| d.vpcs.values().find(|v| v.vni == vni).unwrap().id;
        assert_eq!((vpc_of(10), vpc_of(20)), (0, 1));
        assert_eq!(vpc_of(5), 2, "the new VPC takes an ID nobody holds");
        let subnet_of = |net: &str| {
            let net: std::net::Ipv4Addr = net.parse().unwrap();
            d.subnets.values().find(|s| s.cidr.0 == net).unwrap().id
        };
        assert_eq!((subnet_of("10.1.1.0"), subnet_of("10.2.3.0")), (0, 2));
        assert_eq!(
            subnet_of("10.5.1.0"),
            3,
            "s2's ID 1 is still held until it goes"
        );
        assert_eq!(
            vfs(&p),
            [
                ("i1".to_string(), 0),
                ("i3".to_string(), 2),
                ("z9".to_string(), 3)
            ]
        );
        // The route table keeps its ID, and so do the main tables.
        assert_eq!(d.route_tables, {
            let mut t = held.route_tables.clone();
            t.insert(3, 2);
            t
        });
        // Planned against itself, nothing moves.
        assert_eq!(plan_against(&next, &host, &d, VFS).unwrap().desired(), d);
        assert_eq!(plan_against(&base, &host, &held, VFS).unwrap(), first);
    }
}
