//! The in-process simulator as a device: hw-sim's PF, reached only through what a PCI
//! function offers (BAR0 accesses, DMA mappings, interrupt eventfds).
use crate::device::Device;
use crate::dma::DmaMemory;
use crate::error::{DriverError, Result};
use hw_sim::{FunctionPort, Nic, SimConfig};
use vmm_sys_util::eventfd::EventFd;

/// The built-in simulated NIC as the driver sees it: only its PF. Whatever plays the VMs
/// and the wire takes the board's other ports from hw-sim's own API ([`Nic::vf`],
/// [`Nic::uplink`]) before handing the board to [`SimBackend::on`].
pub struct SimBackend {
    /// Held so the board (its device thread) lives as long as the driver.
    #[cfg_attr(not(test), allow(dead_code))]
    nic: Nic,
    pf: FunctionPort,
}

impl SimBackend {
    /// Starts a simulated NIC (its device thread runs the firmware).
    pub fn start(cfg: SimConfig) -> Result<SimBackend> {
        let nic = Nic::start(cfg).map_err(|e| DriverError::Backend {
            device: "simulated NIC (in-process)".into(),
            reason: format!("could not start the simulator: {e}"),
        })?;
        Ok(SimBackend::on(nic))
    }

    /// The PF of a simulated NIC already started; the backend keeps the board running for
    /// as long as the driver holds it.
    pub fn on(nic: Nic) -> SimBackend {
        let pf = nic.pf();
        SimBackend { nic, pf }
    }

    /// The simulated board, for this crate's tests: fault injection and the LED pins.
    #[cfg(test)]
    fn nic(&self) -> &Nic {
        &self.nic
    }
}

impl Device for SimBackend {
    fn describe(&self) -> String {
        "simulated NIC (in-process)".into()
    }

    fn bar0_size(&self) -> u64 {
        self.pf.bar_size()
    }

    fn read32(&self, offset: u32) -> Result<u32> {
        self.pf
            .bar_read32(u64::from(offset))
            .map_err(|e| DriverError::register(self, "read", offset, e))
    }

    fn write32(&self, offset: u32, value: u32) -> Result<()> {
        self.pf
            .bar_write32(u64::from(offset), value)
            .map_err(|e| DriverError::register(self, "write", offset, e))
    }

    fn dma_map(&self, mem: &DmaMemory) -> Result<()> {
        self.pf
            .dma_map(mem.iova(), mem.size(), mem.file(), 0)
            .map_err(|e| DriverError::dma_map(self, "map", mem, e))
    }

    fn dma_unmap(&self, mem: &DmaMemory) -> Result<()> {
        self.pf
            .dma_unmap(mem.iova(), mem.size())
            .map_err(|e| DriverError::dma_map(self, "unmap", mem, e))
    }

    fn set_irq(&self, vector: u32, fd: Option<&EventFd>) -> Result<()> {
        let irq_err = |reason: String| DriverError::Irq {
            device: self.describe(),
            vector,
            reason,
        };
        let fd = fd
            .map(|f| f.try_clone())
            .transpose()
            .map_err(|e| irq_err(format!("cannot duplicate the eventfd: {e}")))?;
        self.pf
            .set_irq(vector, fd)
            .map_err(|e| irq_err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adminq::raw_command;
    use crate::bringup::Options;
    use crate::nic::PfDriver;
    use crate::tables::{
        MappingLocationSpec, RouteTarget, StatsFunction, SubnetSpec, UplinkSpec, VfSpec, VpcSpec,
    };
    use shared_regs::admin::{AdminCmd, Opcode, Status};
    use shared_regs::entry::IdParam;
    use shared_regs::pf::{self, Caps};
    use shared_regs::stats::Counter;
    use std::net::Ipv4Addr;
    use std::sync::Arc;
    use std::time::Duration;

    fn small() -> SimConfig {
        SimConfig {
            num_vfs: 3,
            vpcs: 5,
            subnets: 7,
            route_tables: 9,
            routes_per_table: 11,
            mapping_buckets: 128,
            ..SimConfig::default()
        }
    }

    fn open(cfg: SimConfig, opts: Options) -> (Arc<SimBackend>, PfDriver) {
        let sim = Arc::new(SimBackend::start(cfg).unwrap());
        let drv = PfDriver::open_with(Box::new(sim.clone()), opts).unwrap();
        (sim, drv)
    }

    fn vpc(id: u16, vni: u32) -> VpcSpec {
        VpcSpec {
            id,
            vni,
            cidr: (Ipv4Addr::new(10, 0, 0, 0), 16),
            main_route_table: None,
            dns: vec![],
            domain: None,
        }
    }

    #[test]
    fn info_matches_the_simulator_config() {
        let (_sim, drv) = open(small(), Options::default());
        let info = drv.info();
        assert_eq!(info.device, "simulated NIC (in-process)");
        assert_eq!(
            (info.abi_major, info.abi_minor),
            (
                shared_regs::ABI_VERSION_MAJOR,
                shared_regs::ABI_VERSION_MINOR
            )
        );
        assert_eq!(info.num_vfs, 3);
        assert_eq!(
            (
                info.vpcs,
                info.subnets,
                info.route_tables,
                info.routes_per_table
            ),
            (5, 7, 9, 11)
        );
        assert!(info.mappings >= 64, "{info:?}");
        assert!(info.adminq_entries >= 2);
        assert!(info.caps.contains(Caps::MULTI_VRF), "{info:?}");
        let hb = drv.heartbeat().unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_ne!(drv.heartbeat().unwrap(), hb, "the firmware runs");
    }

    #[test]
    fn nop_succeeds_and_bad_commands_get_their_status() {
        let (_sim, drv) = open(small(), Options::default());
        for _ in 0..3 * 64 {
            drv.nop().unwrap(); // wraps the 64-entry queue three times
        }
        let err = drv.add_vpc(&vpc(0, 0)).unwrap_err();
        assert!(
            matches!(
                err,
                crate::DriverError::Command {
                    opcode: Opcode::VpcAdd,
                    status: Status::BadArgument,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "VPC_ADD (vpc 0, vni 0, 10.0.0.0/16) failed: bad argument"
        );
        let done = drv.submit(raw_command(0xbeef)).unwrap();
        assert_eq!(done.completion(), Some(Err(Status::BadOpcode)));
        let past_end = AdminCmd::new(Opcode::VpcDel, &IdParam { id: 5.into() });
        assert_eq!(
            drv.submit(past_end).unwrap().completion(),
            Some(Err(Status::BadArgument))
        );
    }

    #[test]
    fn a_vpc_is_programmed_and_torn_down() {
        let (_sim, drv) = open(small(), Options::default());
        let gw_mac = [0x02, 0, 0, 0, 0xfe, 1];
        drv.add_vpc(&vpc(1, 100)).unwrap();
        let dup = drv.add_vpc(&vpc(1, 100)).unwrap_err();
        assert_eq!(
            dup.to_string(),
            "VPC_ADD (vpc 1, vni 100, 10.0.0.0/16) failed: already exists"
        );
        drv.add_route_table(2, 1).unwrap();
        drv.add_subnet(&SubnetSpec {
            id: 0,
            vpc_id: 1,
            cidr: (Ipv4Addr::new(10, 0, 1, 0), 24),
            route_table: Some(2),
            gateway_mac: gw_mac,
        })
        .unwrap();
        let vf = VfSpec {
            vf: 0,
            subnet_id: 0,
            mac: [0x02, 0, 0, 0, 0, 0x10],
            primary_ip: Ipv4Addr::new(10, 0, 1, 10),
            src_dst_check: true,
        };
        drv.set_vf(&vf).unwrap();
        drv.add_mapping(100, vf.primary_ip, vf.mac, MappingLocationSpec::LocalVf(0))
            .unwrap();
        drv.add_route(
            2,
            (Ipv4Addr::new(192, 168, 0, 0), 16),
            RouteTarget::Blackhole,
        )
        .unwrap();
        drv.set_uplink(&UplinkSpec {
            mac: [0x02, 0, 0, 0, 0xaa, 1],
            next_hop_mac: [0x02, 0, 0, 0, 0xaa, 2],
            underlay_ip: Ipv4Addr::new(192, 0, 2, 1),
            mtu: 9216,
        })
        .unwrap();
        let in_use = drv.del_subnet(0).unwrap_err();
        assert_eq!(
            in_use.to_string(),
            "SUBNET_DEL (subnet 0) failed: still in use"
        );

        let c = drv.stats(StatsFunction::Vf(0)).unwrap();
        assert_eq!(c.get(Counter::TxPackets), 0);
        drv.stats(StatsFunction::Uplink).unwrap();
        drv.clear_stats(StatsFunction::Vf(0)).unwrap();
        let no_vf = drv.stats(StatsFunction::Vf(3)).unwrap_err();
        assert_eq!(no_vf.to_string(), "GET_STATS (vf3) failed: bad argument");

        drv.del_route(2, (Ipv4Addr::new(192, 168, 0, 0), 16))
            .unwrap();
        drv.del_mapping(100, vf.primary_ip).unwrap();
        drv.clear_vf(0).unwrap();
        drv.del_subnet(0).unwrap();
        drv.del_route_table(2).unwrap();
        drv.del_vpc(1).unwrap();
        let gone = drv.del_vpc(1).unwrap_err();
        assert_eq!(gone.to_string(), "VPC_DEL (vpc 1) failed: not found");
    }

    #[test]
    fn a_stalled_firmware_is_reported_as_not_answering() {
        let opts = Options {
            command_timeout: Duration::from_millis(200),
            ..Options::default()
        };
        let (sim, drv) = open(small(), opts);
        sim.nic().faults().stall_firmware(true);
        let err = drv.del_vpc(4).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("VPC_DEL (vpc 4): the firmware did not answer within"),
            "{msg}"
        );
        assert!(msg.contains("the firmware is not running"), "{msg}");
        sim.nic().faults().stall_firmware(false);
        // The late completion lands; the next command goes to the next entry.
        drv.nop().unwrap();
    }

    #[test]
    fn port_reports_the_simulated_module_and_the_link_led_follows_uplink_set() {
        use crate::port::ModuleStatus;
        let module = hw_sim::SfpEeprom::new(0x03, "ACME OPTICS", "SFP-25G-LR", "AC-0042");
        let (sim, drv) = open(
            SimConfig {
                sfp: Some(module),
                ..small()
            },
            Options::default(),
        );
        let p = drv.port().unwrap();
        assert_eq!(
            p.module,
            ModuleStatus::Present {
                identifier: 0x03,
                kind: "SFP/SFP+/SFP28".into(),
                vendor: "ACME OPTICS".into(),
                part: "SFP-25G-LR".into(),
                serial: "AC-0042".into(),
                checksum_ok: true,
            }
        );
        assert!(!p.link_up && !p.link_led);
        assert!(!sim.nic().leds().link);

        drv.set_uplink(&UplinkSpec {
            mac: [0x02, 0, 0, 0, 0xaa, 1],
            next_hop_mac: [0x02, 0, 0, 0, 0xaa, 2],
            underlay_ip: Ipv4Addr::new(192, 0, 2, 1),
            mtu: 9216,
        })
        .unwrap();
        let p = drv.port().unwrap();
        assert!(p.link_up && p.link_led, "{p:?}");
        assert!(sim.nic().leds().link, "the simulated pin is lit");

        sim.nic().faults().sfp_absent(true);
        assert_eq!(drv.port().unwrap().module, ModuleStatus::Absent);
        sim.nic().faults().sfp_absent(false);
        assert!(matches!(
            drv.port().unwrap().module,
            ModuleStatus::Present { .. }
        ));
    }

    #[test]
    fn the_default_simulator_has_the_default_module_and_an_empty_cage_is_absent() {
        use crate::port::ModuleStatus;
        let (_sim, drv) = open(small(), Options::default());
        let ModuleStatus::Present {
            vendor,
            part,
            serial,
            ..
        } = drv.port().unwrap().module
        else {
            panic!("no module");
        };
        assert_eq!(
            (&*vendor, &*part, &*serial),
            ("VPCNIC SIM", "SFP-10G-SR", "SIM0001")
        );
        let (_sim, drv) = open(
            SimConfig {
                sfp: None,
                ..small()
            },
            Options::default(),
        );
        assert_eq!(drv.port().unwrap().module, ModuleStatus::Absent);
    }

    #[test]
    fn reopening_takes_the_device_over_as_it_is_unless_asked_to_reset() {
        use crate::tables::MappingLocationSpec;
        let sim = Arc::new(SimBackend::start(small()).unwrap());
        let drv = PfDriver::open(Box::new(sim.clone())).unwrap();
        drv.add_vpc(&vpc(1, 100)).unwrap();
        drop(drv);
        // A driver that ends cleanly: the next one finds the tables as they were.
        let drv = PfDriver::open(Box::new(sim.clone())).unwrap();
        let vpcs = drv.read_tables().unwrap().vpcs;
        assert_eq!(vpcs.len(), 1, "{vpcs:?}");
        let exists = drv.add_vpc(&vpc(1, 100)).unwrap_err();
        assert!(exists.to_string().contains("already exists"), "{exists}");
        // A queue left enabled (as a killed driver leaves it, its memory gone with its
        // process): the next driver stops it, starts its own and goes on.
        drv.add_vpc(&vpc(2, 200)).unwrap();
        drop(drv);
        sim.write32(pf::CONTROL, pf::Control::ADMINQ_ENABLE.bits())
            .unwrap();
        let drv = PfDriver::open(Box::new(sim.clone())).unwrap();
        assert_eq!(drv.read_tables().unwrap().vpcs.len(), 2);
        for i in 0..200u8 {
            let ip = Ipv4Addr::new(10, 0, 1, i);
            drv.add_mapping(100, ip, [2, 0, 0, 0, 1, i], MappingLocationSpec::Remote(ip))
                .unwrap();
        }
        drop(drv);
        // Asked to reset: empty tables.
        let opts = Options {
            reset: true,
            ..Options::default()
        };
        let drv = PfDriver::open_with(Box::new(sim.clone()), opts).unwrap();
        assert_eq!(
            drv.read_tables().unwrap(),
            crate::table_read::NicTables {
                domains_read: true,
                ..Default::default()
            }
        );
    }

    #[test]
    fn abi_1_1_calls_reach_the_firmware() {
        use crate::tables::{GatewayKind, GatewaySpec};
        use crate::trace::Verdict;
        let (_sim, drv) = open(small(), Options::default());
        assert!(drv.info().gateways > 0, "{:?}", drv.info());
        drv.add_vpc(&VpcSpec {
            domain: Some("lab.internal".into()),
            ..vpc(1, 100)
        })
        .unwrap();
        let bad = drv
            .add_vpc(&VpcSpec {
                domain: Some("a b".into()),
                ..vpc(2, 200)
            })
            .unwrap_err();
        assert_eq!(
            bad.to_string(),
            "VPC_ADD (vpc 2, vni 200, 10.0.0.0/16, domain a b) failed: bad argument"
        );
        let gw = GatewaySpec {
            id: 0,
            kind: GatewayKind::Internet,
            underlay_ip: Ipv4Addr::new(203, 0, 113, 1),
            mac: [0x0a, 0, 0, 0, 0, 1],
        };
        drv.add_gateway(&gw).unwrap();
        assert!(drv
            .add_gateway(&gw)
            .unwrap_err()
            .to_string()
            .ends_with("already exists"));
        drv.add_route_table(0, 1).unwrap();
        drv.add_route(0, (Ipv4Addr::UNSPECIFIED, 0), RouteTarget::Gateway(0))
            .unwrap();
        assert!(
            drv.del_gateway(0)
                .unwrap_err()
                .to_string()
                .ends_with("still in use"),
            "a route names it"
        );
        drv.add_subnet(&SubnetSpec {
            id: 0,
            vpc_id: 1,
            cidr: (Ipv4Addr::new(10, 0, 1, 0), 24),
            route_table: Some(0),
            gateway_mac: [0x06, 0, 0, 0, 0, 1],
        })
        .unwrap();
        let no_vf = drv.add_vf_addr(0, Ipv4Addr::new(10, 0, 1, 11)).unwrap_err();
        assert!(
            matches!(
                no_vf,
                crate::DriverError::Command {
                    opcode: Opcode::VfAddrAdd,
                    ..
                }
            ),
            "{no_vf}"
        );
        let mac = [0x02, 0, 0, 0, 0, 0x10];
        drv.set_vf(&VfSpec {
            vf: 0,
            subnet_id: 0,
            mac,
            primary_ip: Ipv4Addr::new(10, 0, 1, 10),
            src_dst_check: true,
        })
        .unwrap();
        drv.add_vf_addr(0, Ipv4Addr::new(10, 0, 1, 11)).unwrap();
        drv.set_vf_flags(0, false).unwrap();
        drv.del_vf_addr(0, Ipv4Addr::new(10, 0, 1, 11)).unwrap();

        // A frame with another ethertype is dropped by F1, and the trace says so.
        let mut frame = vec![0xff; 6];
        frame.extend_from_slice(&mac);
        frame.extend_from_slice(&[0x86, 0xdd]);
        frame.resize(60, 0);
        let r = drv.trace(StatsFunction::Vf(0), &frame).unwrap();
        assert_eq!(
            r.verdict,
            Verdict::Drop {
                counter: Counter::DropEthertype,
                port: StatsFunction::Vf(0)
            }
        );
        assert!(r.steps.iter().any(|s| s.rule == 1), "{r:?}");
        assert_eq!(
            drv.stats(StatsFunction::Vf(0)).unwrap().drops(),
            0,
            "a trace counts nothing"
        );
        let err = drv.trace(StatsFunction::Vf(7), &frame).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TRACE (60-byte frame on vf7) failed: bad argument"
        );
    }
}
