use super::*;
use crate::bringup::Options;
use crate::test_utils::{FakeConfig, FakeDevice, Reply};
use shared_regs::admin::Status;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use zerocopy::IntoBytes;

fn open() -> (Arc<FakeDevice>, PfDriver) {
    let dev = Arc::new(FakeDevice::new(FakeConfig::default()));
    let opts = Options {
        ready_timeout: Duration::from_millis(100),
        command_timeout: Duration::from_millis(100),
        ..Options::default()
    };
    let drv = PfDriver::open_with(Box::new(dev.clone()), opts).unwrap();
    (dev, drv)
}

fn mapping(i: u8) -> MappingEntry {
    crate::tables::mapping_entry(
        100,
        Ipv4Addr::new(10, 0, 1, i),
        [2, 0, 0, 0, 0, i],
        crate::tables::MappingLocationSpec::LocalVf(u16::from(i)),
    )
}

/// A reply of `TABLE_READ`: the header and the entries.
fn reply<E: IntoBytes + Immutable>(entries: &[E], next: u32) -> Reply {
    let mut buf = TableReadHeader {
        count: Le32::new(entries.len() as u32),
        next_cursor: Le32::new(next),
    }
    .as_bytes()
    .to_vec();
    for e in entries {
        buf.extend_from_slice(e.as_bytes());
    }
    Reply {
        result: buf.len() as u32,
        buf: Some(buf),
        ..Reply::status(Status::Ok)
    }
}

#[test]
fn read_table_follows_the_cursor_to_the_end() {
    let (dev, drv) = open();
    let queries = Arc::new(Mutex::new(Vec::new()));
    let log = queries.clone();
    dev.set_handler(move |cmd| {
        let q: TableReadQuery = cmd.params_as().unwrap();
        assert_eq!(cmd.opcode.get(), Opcode::TableRead as u16);
        assert_eq!(cmd.buf_len.get() as usize, BUF_BYTES);
        log.lock().unwrap().push((q.table, q.cursor.get()));
        match q.cursor.get() {
            0 => reply(&[mapping(1), mapping(2)], 17),
            17 => reply(&[mapping(3)], CURSOR_END),
            c => panic!("cursor {c}"),
        }
    });
    let got: Vec<MappingEntry> = drv.read_table(TableId::Mapping, 0).unwrap();
    let ips: Vec<[u8; 4]> = got.iter().map(|m| m.ip).collect();
    assert_eq!(ips, [[10, 0, 1, 1], [10, 0, 1, 2], [10, 0, 1, 3]]);
    assert_eq!(
        *queries.lock().unwrap(),
        [(TableId::Mapping as u8, 0), (TableId::Mapping as u8, 17)]
    );
}

#[test]
fn read_table_refuses_answers_that_do_not_add_up_or_never_end() {
    let (dev, drv) = open();
    dev.set_handler(|_| {
        let mut r = reply(&[mapping(1)], CURSOR_END);
        r.result -= 1;
        r
    });
    let err = drv
        .read_table::<MappingEntry>(TableId::Mapping, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "TABLE_READ (mapping table, from 0): unexpected completion: 1 entry of 24 bytes does not \
         make the 23 bytes written after the header"
    );
    dev.set_handler(|_| reply::<MappingEntry>(&[], 0));
    let err = drv
        .read_table::<MappingEntry>(TableId::Mapping, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("returned nothing new and cursor 0"), "{err}");
    dev.set_handler(|_| Reply::status(Status::NotFound));
    let err = drv
        .read_table::<RouteEntry>(TableId::Route, 9)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "TABLE_READ (routes of route table 9, from 0) failed: not found"
    );
}

#[test]
fn entries_decode_as_the_contract_defines_them() {
    let spec = crate::tables::VfSpec {
        vf: 3,
        subnet_id: 2,
        mac: [2, 0, 0, 0, 0, 9],
        primary_ip: Ipv4Addr::new(10, 0, 2, 9),
        src_dst_check: false,
    };
    let mut e = VfReadEntry {
        entry: spec.to_entry(),
        secondary_count: 2,
        rings_enabled: 0,
        ..Default::default()
    };
    e.secondary[0] = [10, 0, 2, 10];
    e.secondary[1] = [10, 0, 2, 11];
    e.secondary[2] = [10, 0, 2, 99];
    let row = VfRow::from(&e);
    assert_eq!(
        (row.vf, row.subnet_id, row.src_dst_check, row.link_up),
        (3, 2, false, false)
    );
    assert_eq!(
        row.secondary_ips,
        [Ipv4Addr::new(10, 0, 2, 10), Ipv4Addr::new(10, 0, 2, 11)]
    );
    let r = RouteRow::from(&crate::tables::route_entry(
        1,
        (Ipv4Addr::new(10, 9, 0, 0), 16),
        RouteTarget::Peering(1),
    ));
    assert_eq!(r.target, RouteTarget::Peering(1));
    let s = SubnetRow::from(
        &crate::tables::SubnetSpec {
            id: 4,
            vpc_id: 1,
            cidr: (Ipv4Addr::new(10, 0, 3, 0), 24),
            route_table: None,
            gateway_mac: [6, 0, 0, 0, 0, 1],
        }
        .to_entry(),
    );
    assert_eq!(
        s.route_table, None,
        "MAIN_ROUTE_TABLE reads as the main table"
    );
}
