//! Fixtures: typed shortcuts to program VPCs, subnets, instances, gateways and routes
//! through the real driver, and [`standard`], the topology most conformance tests share.
//!
//! ```text
//! uplink 02:aa::01 -> next hop 02:bb::01, this host 192.0.2.1, MTU 9216
//! gateways  0 igw 192.0.2.100   1 vgw 192.0.2.101   2 natgw 192.0.2.102
//!
//! VPC A  (id 0, VNI 100, 10.0.0.0/16, main table 0, DNS default, domain vpc-a.internal)
//!   subnet web 10.0.1.0/24 (id 0, table 0)   VF0 .10, VF1 .11; remote .40 on 192.0.2.2
//!   subnet db  10.0.2.0/24 (id 1, table 1)   VF2 .20, VF3 .21 (check off: the middlebox);
//!                                            remote .30 on 192.0.2.2, .31 on 192.0.2.3
//!   table 0: 198.51.100.0/24 igw, 192.168.0.0/16 vgw, 203.0.113.0/24 natgw,
//!            10.0.8.0/24 blackhole, 10.1.0.0/16 pcx:C, 10.99.0.0/16 eni:10.0.2.21
//!            (no default route)
//!   table 1: 0.0.0.0/0 natgw, 10.1.0.0/16 pcx:C
//! VPC B  (id 1, VNI 200, 10.0.0.0/16 again, main table 2)
//!   subnet web 10.0.1.0/24 (id 2)            VF4 .10, VF6 .11 (the addresses of VF0, VF1);
//!                                            remote .40 on 192.0.2.2
//! VPC C  (id 2, VNI 300, 10.1.0.0/16, main table 3, DNS 10.1.0.53 and 10.1.0.54)
//!   subnet app 10.1.1.0/24 (id 3)            VF5 .10; remote .40 on 192.0.2.2
//!   table 3: 10.0.0.0/16 pcx:A
//! VF7 is left unassigned.
//! ```
use crate::Testbed;
use host_driver::{
    Cidr, GatewayKind, GatewaySpec, Mac, MappingLocationSpec, RouteTarget, StatsFunction,
    SubnetSpec, UplinkSpec, VfSpec, VpcSpec,
};
use hw_sim::SimConfig;
use std::net::Ipv4Addr;

/// `a.b.c.d` as an address.
pub const fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// `(base, len)`.
pub const fn cidr(base: Ipv4Addr, len: u8) -> Cidr {
    (base, len)
}

/// The counters of VF `n`.
pub const fn vf(n: u16) -> StatsFunction {
    StatsFunction::Vf(n)
}

/// The uplink's counters.
pub const UPLINK: StatsFunction = StatsFunction::Uplink;

// The underlay.
pub const UPLINK_MAC: Mac = [0x02, 0xaa, 0, 0, 0, 0x01];
pub const NEXT_HOP_MAC: Mac = [0x02, 0xbb, 0, 0, 0, 0x01];
pub const HOST: Ipv4Addr = ip(192, 0, 2, 1);
pub const HOST2: Ipv4Addr = ip(192, 0, 2, 2);
pub const HOST3: Ipv4Addr = ip(192, 0, 2, 3);
pub const UPLINK_MTU: u16 = 9216;

// Gateways.
pub const IGW: u16 = 0;
pub const VGW: u16 = 1;
pub const NATGW: u16 = 2;
pub const IGW_HOST: Ipv4Addr = ip(192, 0, 2, 100);
pub const VGW_HOST: Ipv4Addr = ip(192, 0, 2, 101);
pub const NATGW_HOST: Ipv4Addr = ip(192, 0, 2, 102);
pub const IGW_MAC: Mac = [0x02, 0xcc, 0, 0, 0, 0x01];
pub const VGW_MAC: Mac = [0x02, 0xcc, 0, 0, 0, 0x02];
pub const NATGW_MAC: Mac = [0x02, 0xcc, 0, 0, 0, 0x03];

// VPC A.
pub const VPC_A: u16 = 0;
pub const VNI_A: u32 = 100;
pub const DOMAIN_A: &str = "vpc-a.internal";
pub const WEB: u16 = 0;
pub const DB: u16 = 1;
pub const TABLE_A_MAIN: u16 = 0;
pub const TABLE_DB: u16 = 1;
pub const GW_WEB: Mac = [0x02, 0xfe, 0, 0, 0x01, 0x01];
pub const GW_WEB_IP: Ipv4Addr = ip(10, 0, 1, 1);
pub const GW_DB: Mac = [0x02, 0xfe, 0, 0, 0x02, 0x01];
pub const GW_DB_IP: Ipv4Addr = ip(10, 0, 2, 1);
pub const MAC0: Mac = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0a];
pub const IP0: Ipv4Addr = ip(10, 0, 1, 10);
pub const MAC1: Mac = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x0b];
pub const IP1: Ipv4Addr = ip(10, 0, 1, 11);
pub const MAC2: Mac = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x14];
pub const IP2: Ipv4Addr = ip(10, 0, 2, 20);
/// VF3, the middlebox: source/destination check off.
pub const MAC3: Mac = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x15];
pub const IP3: Ipv4Addr = ip(10, 0, 2, 21);
/// A web instance on HOST2.
pub const R_WEB_MAC: Mac = [0x02, 0x00, 0x0a, 0x00, 0x01, 0x28];
pub const R_WEB_IP: Ipv4Addr = ip(10, 0, 1, 40);
/// A db instance on HOST2.
pub const R_DB_MAC: Mac = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x1e];
pub const R_DB_IP: Ipv4Addr = ip(10, 0, 2, 30);
/// A db instance on HOST3.
pub const R_DB3_MAC: Mac = [0x02, 0x00, 0x0a, 0x00, 0x02, 0x1f];
pub const R_DB3_IP: Ipv4Addr = ip(10, 0, 2, 31);
/// Routed by table 0 to the internet gateway, the VPN gateway, the NAT gateway.
pub const INTERNET: Ipv4Addr = ip(198, 51, 100, 7);
pub const ON_PREMISES: Ipv4Addr = ip(192, 168, 4, 4);
pub const VIA_NAT: Ipv4Addr = ip(203, 0, 113, 9);
/// Blackholed by table 0.
pub const BLACKHOLED: Ipv4Addr = ip(10, 0, 8, 5);
/// Routed by table 0 to the middlebox VF3.
pub const VIA_MIDDLEBOX: Ipv4Addr = ip(10, 99, 0, 5);
/// No route in table 0.
pub const NOWHERE: Ipv4Addr = ip(8, 8, 8, 8);

// VPC B: the same CIDR as VPC A.
pub const VPC_B: u16 = 1;
pub const VNI_B: u32 = 200;
pub const B_WEB: u16 = 2;
pub const TABLE_B_MAIN: u16 = 2;
pub const GW_B: Mac = [0x02, 0xfe, 0, 0x0b, 0x01, 0x01];
pub const MAC4: Mac = [0x02, 0x00, 0x0b, 0x00, 0x01, 0x0a];
pub const IP4: Ipv4Addr = IP0;
pub const MAC6: Mac = [0x02, 0x00, 0x0b, 0x00, 0x01, 0x0b];
pub const IP6: Ipv4Addr = IP1;
pub const R_B_MAC: Mac = [0x02, 0x00, 0x0b, 0x00, 0x01, 0x28];
pub const R_B_IP: Ipv4Addr = R_WEB_IP;

// VPC C: peered with VPC A.
pub const VPC_C: u16 = 2;
pub const VNI_C: u32 = 300;
pub const C_APP: u16 = 3;
pub const TABLE_C_MAIN: u16 = 3;
pub const GW_C: Mac = [0x02, 0xfe, 0, 0x0c, 0x01, 0x01];
pub const GW_C_IP: Ipv4Addr = ip(10, 1, 1, 1);
pub const DNS_C: [Ipv4Addr; 2] = [ip(10, 1, 0, 53), ip(10, 1, 0, 54)];
pub const MAC5: Mac = [0x02, 0x00, 0x0c, 0x00, 0x01, 0x0a];
pub const IP5: Ipv4Addr = ip(10, 1, 1, 10);
pub const R_C_MAC: Mac = [0x02, 0x00, 0x0c, 0x00, 0x01, 0x28];
pub const R_C_IP: Ipv4Addr = ip(10, 1, 1, 40);

/// Typed shortcuts over the driver calls, each of which must succeed.
impl Testbed {
    /// A VPC and its main route table `main_table`.
    pub fn add_vpc(&self, id: u16, vni: u32, net: Cidr, main_table: u16, dns: &[Ipv4Addr]) {
        self.add_vpc_with_domain(id, vni, net, main_table, dns, None);
    }

    /// A VPC with a DNS domain name (DHCP option 15), and its main route table.
    pub fn add_vpc_with_domain(
        &self,
        id: u16,
        vni: u32,
        net: Cidr,
        main_table: u16,
        dns: &[Ipv4Addr],
        domain: Option<&str>,
    ) {
        self.driver
            .add_vpc(&VpcSpec {
                id,
                vni,
                cidr: net,
                main_route_table: Some(main_table),
                dns: dns.to_vec(),
                domain: domain.map(str::to_string),
            })
            .expect("VPC_ADD");
        self.add_route_table(main_table, id);
    }

    /// A route table of `vpc`.
    pub fn add_route_table(&self, id: u16, vpc: u16) {
        self.driver
            .add_route_table(id, vpc)
            .expect("ROUTE_TABLE_ADD");
    }

    /// A subnet with its gateway MAC, on `table` or the VPC's main table.
    pub fn add_subnet(&self, id: u16, vpc: u16, net: Cidr, gateway_mac: Mac, table: Option<u16>) {
        self.driver
            .add_subnet(&SubnetSpec {
                id,
                vpc_id: vpc,
                cidr: net,
                route_table: table,
                gateway_mac,
            })
            .expect("SUBNET_ADD");
    }

    /// An instance on VF `vf`: the VF assigned, its mapping in `vni`, and a VM booted on it.
    pub fn add_instance(&mut self, vf: u16, subnet: u16, vni: u32, mac: Mac, addr: Ipv4Addr) {
        self.driver
            .set_vf(&VfSpec {
                vf,
                subnet_id: subnet,
                mac,
                primary_ip: addr,
                src_dst_check: true,
            })
            .expect("VF_SET");
        self.driver
            .add_mapping(vni, addr, mac, MappingLocationSpec::LocalVf(vf))
            .expect("MAPPING_ADD");
        let vm = self.attach_vm(vf);
        assert!(vm.link_up(), "VF{vf} link is up once assigned");
        assert_eq!(vm.mac(), mac, "the VM reads its MAC from the VF BAR");
    }

    /// A secondary address of VF `vf`, with its mapping so that it can be reached.
    pub fn add_secondary(&self, vf: u16, vni: u32, mac: Mac, addr: Ipv4Addr) {
        self.driver.add_vf_addr(vf, addr).expect("VF_ADDR_ADD");
        self.driver
            .add_mapping(vni, addr, mac, MappingLocationSpec::LocalVf(vf))
            .expect("MAPPING_ADD");
    }

    /// An instance on another host.
    pub fn add_remote(&self, vni: u32, addr: Ipv4Addr, mac: Mac, host: Ipv4Addr) {
        self.driver
            .add_mapping(vni, addr, mac, MappingLocationSpec::Remote(host))
            .expect("MAPPING_ADD");
    }

    /// A gateway endpoint.
    pub fn add_gateway(&self, id: u16, kind: GatewayKind, underlay_ip: Ipv4Addr, mac: Mac) {
        self.driver
            .add_gateway(&GatewaySpec {
                id,
                kind,
                underlay_ip,
                mac,
            })
            .expect("GATEWAY_ADD");
    }

    /// A route.
    pub fn add_route(&self, table: u16, dest: Cidr, target: RouteTarget) {
        self.driver
            .add_route(table, dest, target)
            .expect("ROUTE_ADD");
    }

    /// The uplink with the standard addresses and `mtu`.
    pub fn set_uplink(&self, mtu: u16) {
        self.driver
            .set_uplink(&UplinkSpec {
                mac: UPLINK_MAC,
                next_hop_mac: NEXT_HOP_MAC,
                underlay_ip: HOST,
                mtu,
            })
            .expect("UPLINK_SET");
    }
}

/// The standard topology of the module documentation, with a VM on VF0 to VF6.
pub fn standard() -> Testbed {
    let mut tb = Testbed::start(SimConfig::default()).expect("NIC comes up");
    tb.set_uplink(UPLINK_MTU);
    tb.add_gateway(IGW, GatewayKind::Internet, IGW_HOST, IGW_MAC);
    tb.add_gateway(VGW, GatewayKind::Vpn, VGW_HOST, VGW_MAC);
    tb.add_gateway(NATGW, GatewayKind::Nat, NATGW_HOST, NATGW_MAC);

    let (a_net, c_net) = (cidr(ip(10, 0, 0, 0), 16), cidr(ip(10, 1, 0, 0), 16));
    tb.add_vpc_with_domain(VPC_A, VNI_A, a_net, TABLE_A_MAIN, &[], Some(DOMAIN_A));
    tb.add_route_table(TABLE_DB, VPC_A);
    tb.add_vpc(VPC_B, VNI_B, a_net, TABLE_B_MAIN, &[]);
    tb.add_vpc(VPC_C, VNI_C, c_net, TABLE_C_MAIN, &DNS_C);

    tb.add_subnet(WEB, VPC_A, cidr(ip(10, 0, 1, 0), 24), GW_WEB, None);
    tb.add_subnet(DB, VPC_A, cidr(ip(10, 0, 2, 0), 24), GW_DB, Some(TABLE_DB));
    tb.add_subnet(B_WEB, VPC_B, cidr(ip(10, 0, 1, 0), 24), GW_B, None);
    tb.add_subnet(C_APP, VPC_C, cidr(ip(10, 1, 1, 0), 24), GW_C, None);

    tb.add_instance(0, WEB, VNI_A, MAC0, IP0);
    tb.add_instance(1, WEB, VNI_A, MAC1, IP1);
    tb.add_instance(2, DB, VNI_A, MAC2, IP2);
    tb.add_instance(3, DB, VNI_A, MAC3, IP3);
    tb.driver.set_vf_flags(3, false).expect("VF_FLAGS_SET");
    tb.add_instance(4, B_WEB, VNI_B, MAC4, IP4);
    tb.add_instance(5, C_APP, VNI_C, MAC5, IP5);
    tb.add_instance(6, B_WEB, VNI_B, MAC6, IP6);

    tb.add_remote(VNI_A, R_WEB_IP, R_WEB_MAC, HOST2);
    tb.add_remote(VNI_A, R_DB_IP, R_DB_MAC, HOST2);
    tb.add_remote(VNI_A, R_DB3_IP, R_DB3_MAC, HOST3);
    tb.add_remote(VNI_B, R_B_IP, R_B_MAC, HOST2);
    tb.add_remote(VNI_C, R_C_IP, R_C_MAC, HOST2);

    let t = TABLE_A_MAIN;
    tb.add_route(t, cidr(ip(198, 51, 100, 0), 24), RouteTarget::Gateway(IGW));
    tb.add_route(t, cidr(ip(192, 168, 0, 0), 16), RouteTarget::Gateway(VGW));
    tb.add_route(t, cidr(ip(203, 0, 113, 0), 24), RouteTarget::Gateway(NATGW));
    tb.add_route(t, cidr(ip(10, 0, 8, 0), 24), RouteTarget::Blackhole);
    tb.add_route(t, cidr(ip(10, 1, 0, 0), 16), RouteTarget::Peering(VPC_C));
    tb.add_route(t, cidr(ip(10, 99, 0, 0), 16), RouteTarget::Instance(IP3));
    tb.add_route(
        TABLE_DB,
        cidr(ip(0, 0, 0, 0), 0),
        RouteTarget::Gateway(NATGW),
    );
    tb.add_route(
        TABLE_DB,
        cidr(ip(10, 1, 0, 0), 16),
        RouteTarget::Peering(VPC_C),
    );
    tb.add_route(
        TABLE_C_MAIN,
        cidr(ip(10, 0, 0, 0), 16),
        RouteTarget::Peering(VPC_A),
    );
    tb
}
