//! Frames on which the firmware and the reference model (tests::model) disagree and the
//! spec sides with the model. Each is ignored until the firmware is fixed; the model
//! excludes these cases from the differential run so that it stays at 0 differences.
use shared_regs::stats::Counter;
use tests::model::generate::{ethernet, ipv4};
use tests::model::nic::Nic;
use tests::model::rules::{decide, Fate, Port};
use tests::model::topology::*;

const MAC0: Mac = [0x02, 0, 0x10, 0, 0, 0x0a];
const GW: Mac = [0x02, 0xfe, 0, 0, 1, 1];
const REMOTE_MAC: Mac = [0x02, 0x0c, 0, 0, 0, 1];
const IP0: u32 = 0x0a00_010a;
const REMOTE_IP: u32 = 0x0a00_0128;
const HOST2: u32 = 0xc000_0202;

/// One VPC 10.0.0.0/16 (VNI 100), subnet 10.0.1.0/24, VF0 .10 with the check off, and a
/// remote instance .40 of the same subnet on HOST2.
fn topology() -> Topology {
    Topology {
        uplink: Uplink {
            mac: [0x02, 0xaa, 0, 0, 0, 1],
            next_hop_mac: [0x02, 0xbb, 0, 0, 0, 1],
            host: 0xc000_0201,
            mtu: 9216,
        },
        gateways: vec![],
        vpcs: vec![Vpc {
            id: 0,
            vni: 100,
            cidr: Prefix {
                base: 0x0a00_0000,
                len: 16,
            },
            main_table: 0,
        }],
        tables: vec![(0, 0)],
        subnets: vec![Subnet {
            id: 0,
            vpc: 0,
            cidr: Prefix {
                base: 0x0a00_0100,
                len: 24,
            },
            table: None,
            gateway_mac: GW,
        }],
        vfs: vec![Vf {
            vf: 0,
            subnet: 0,
            mac: MAC0,
            primary: IP0,
            secondaries: vec![],
            check: false,
        }],
        remotes: vec![Remote {
            vni: 100,
            ip: REMOTE_IP,
            mac: REMOTE_MAC,
            host: HOST2,
        }],
        routes: vec![],
    }
}

fn udp_to(dst_mac: Mac, dst: u32) -> Vec<u8> {
    let udp = [0x9c, 0x40, 0x1f, 0x90, 0, 8, 0, 0];
    ethernet(
        dst_mac,
        MAC0,
        0x0800,
        &ipv4(IP0, dst, 17, 64, 0x4000, false, &udp),
    )
}

#[test]
#[ignore = "firmware differs from spec F7: a frame to a remote same-subnet instance's MAC for another address (middlebox) is dropped drop_dst_mac, not sent to that instance"]
fn f07_frame_to_a_remote_instance_mac_for_another_address_goes_to_its_host() {
    let (mut nic, _) = Nic::program(&topology());
    let seen = nic.run(Port::Vf(0), &udp_to(REMOTE_MAC, 0x0a00_014d), None);
    assert_eq!(seen.drops, vec![], "not dropped");
    assert_eq!(
        seen.to_uplink.len(),
        1,
        "VXLAN to the remote instance's host"
    );
}

#[test]
fn f07_frame_to_its_own_mac_is_drop_dst_mac() {
    let t = topology();
    let (mut nic, _) = Nic::program(&t);
    let seen = nic.run(Port::Vf(0), &udp_to(MAC0, IP0), None);
    assert!(
        seen.to_vfs.is_empty() && seen.to_uplink.is_empty(),
        "{seen:?}"
    );
    assert_eq!(seen.drops, vec![(Port::Vf(0), Counter::DropDstMac, 1)]);
}

/// The model itself says so: it leaves the remote case out of the run, and decides the
/// own-MAC case as the firmware now does.
#[test]
fn the_model_leaves_the_remaining_case_out_of_the_run() {
    let t = topology();
    let remote = udp_to(REMOTE_MAC, 0x0a00_014d);
    assert!(matches!(
        decide(&t, Port::Vf(0), &remote),
        Fate::Unmodelled(_)
    ));
    let own = udp_to(MAC0, IP0);
    assert!(!matches!(
        decide(&t, Port::Vf(0), &own),
        Fate::Unmodelled(_)
    ));
}
