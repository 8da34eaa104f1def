//! The configuration the model decides on: what the PF driver programmed, as plain lists.
//! Addresses are host-order `u32`s, so that prefix arithmetic stays readable.

/// A MAC address in wire order.
pub type Mac = [u8; 6];

/// An IPv4 prefix: base (host bits zero) and length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub base: u32,
    pub len: u8,
}

impl Prefix {
    pub fn mask(self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.len))
        }
    }

    pub fn contains(self, ip: u32) -> bool {
        ip & self.mask() == self.base
    }

    /// The last address: a subnet's broadcast address.
    pub fn last(self) -> u32 {
        self.base | !self.mask()
    }
}

#[derive(Clone, Debug)]
pub struct Vpc {
    pub id: u16,
    pub vni: u32,
    pub cidr: Prefix,
    pub main_table: u16,
}

#[derive(Clone, Debug)]
pub struct Subnet {
    pub id: u16,
    pub vpc: u16,
    pub cidr: Prefix,
    /// Its own route table; `None` uses the VPC's main table.
    pub table: Option<u16>,
    pub gateway_mac: Mac,
}

impl Subnet {
    /// base+1.
    pub fn gateway_ip(&self) -> u32 {
        self.cidr.base + 1
    }
}

/// A VF and the instance (ENI) it serves.
#[derive(Clone, Debug)]
pub struct Vf {
    pub vf: u16,
    pub subnet: u16,
    pub mac: Mac,
    pub primary: u32,
    pub secondaries: Vec<u32>,
    /// Source/destination check (F5).
    pub check: bool,
}

impl Vf {
    pub fn owns(&self, ip: u32) -> bool {
        self.primary == ip || self.secondaries.contains(&ip)
    }
}

/// An instance on another host.
#[derive(Clone, Debug)]
pub struct Remote {
    pub vni: u32,
    pub ip: u32,
    pub mac: Mac,
    pub host: u32,
}

#[derive(Clone, Debug)]
pub struct Gateway {
    pub id: u16,
    pub underlay: u32,
    pub mac: Mac,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Local,
    Blackhole,
    Gateway(u16),
    /// `pcx:<vpc id>`.
    Peering(u16),
    /// `eni:<primary IPv4>`.
    Instance(u32),
}

#[derive(Clone, Debug)]
pub struct Route {
    pub table: u16,
    pub dest: Prefix,
    pub target: Target,
}

#[derive(Clone, Debug)]
pub struct Uplink {
    pub mac: Mac,
    pub next_hop_mac: Mac,
    /// This host's underlay address.
    pub host: u32,
    pub mtu: u16,
}

/// Everything programmed into the NIC.
#[derive(Clone, Debug)]
pub struct Topology {
    pub uplink: Uplink,
    pub gateways: Vec<Gateway>,
    pub vpcs: Vec<Vpc>,
    /// (route table, its VPC).
    pub tables: Vec<(u16, u16)>,
    pub subnets: Vec<Subnet>,
    pub vfs: Vec<Vf>,
    pub remotes: Vec<Remote>,
    /// The routes the PF added (the `local` route of each table is implied).
    pub routes: Vec<Route>,
}

/// Where a mapping says an address lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    LocalVf(u16),
    Remote(u32),
}

impl Topology {
    pub fn vpc(&self, id: u16) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| v.id == id)
    }

    pub fn vpc_of_vni(&self, vni: u32) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| v.vni == vni)
    }

    pub fn subnet(&self, id: u16) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.id == id)
    }

    pub fn vf(&self, vf: u16) -> Option<&Vf> {
        self.vfs.iter().find(|v| v.vf == vf)
    }

    pub fn gateway(&self, id: u16) -> Option<&Gateway> {
        self.gateways.iter().find(|g| g.id == id)
    }

    /// The VPC a VF's instance is in.
    pub fn vpc_of_vf(&self, vf: &Vf) -> Option<&Vpc> {
        self.subnet(vf.subnet).and_then(|s| self.vpc(s.vpc))
    }

    /// The mapping (VNI, IPv4) -> (MAC, location): every VF address and remote instance,
    /// scanned in full.
    pub fn mapping(&self, vni: u32, ip: u32) -> Option<(Mac, Location)> {
        for vf in &self.vfs {
            let in_vni = self.vpc_of_vf(vf).is_some_and(|v| v.vni == vni);
            if in_vni && vf.owns(ip) {
                return Some((vf.mac, Location::LocalVf(vf.vf)));
            }
        }
        self.remotes
            .iter()
            .find(|r| r.vni == vni && r.ip == ip)
            .map(|r| (r.mac, Location::Remote(r.host)))
    }

    /// The route table a subnet uses.
    pub fn table_of(&self, subnet: &Subnet) -> Option<u16> {
        subnet
            .table
            .or_else(|| self.vpc(subnet.vpc).map(|v| v.main_table))
    }

    /// Longest-prefix match in `table`, whose implied `local` route covers its VPC's CIDR.
    pub fn lookup(&self, table: u16, dst: u32) -> Option<Target> {
        let vpc = self.tables.iter().find(|t| t.0 == table)?.1;
        let local = self.vpc(vpc).map(|v| (v.cidr, Target::Local));
        let routes = self
            .routes
            .iter()
            .filter(|r| r.table == table)
            .map(|r| (r.dest, r.target));
        local
            .into_iter()
            .chain(routes)
            .filter(|(p, _)| p.contains(dst))
            .max_by_key(|(p, _)| p.len)
            .map(|(_, t)| t)
    }
}
