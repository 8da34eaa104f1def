//! Make-before-break (ABI 1.3): a route's target replaced with `ROUTE_ADD`+`REPLACE` while
//! frames flow through it. Every frame lands on the route's old target or its new one:
//! none falls to the shorter route that covers the prefix, none is dropped, none is lost.
use host_driver::RouteTarget;
use shared_regs::stats::Counter;
use std::net::Ipv4Addr;
use std::time::Duration;
use tests::topo::*;
use tests::wire::{udp_frame, Vxlan};

/// Where a frame landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Landed {
    Igw,
    Vgw,
    Middlebox,
    Other(Ipv4Addr),
}

fn landing(target: RouteTarget) -> Landed {
    match target {
        RouteTarget::Gateway(IGW) => Landed::Igw,
        RouteTarget::Gateway(VGW) => Landed::Vgw,
        RouteTarget::Instance(IP3) => Landed::Middlebox,
        t => panic!("no landing for {t}"),
    }
}

/// The sequence number a test frame carries after its IPv4 and UDP headers.
fn seq_of(frame: &[u8]) -> u32 {
    let at = 14 + 20 + 8;
    u32::from_be_bytes(frame[at..at + 4].try_into().unwrap())
}

#[test]
fn a_route_replaced_while_frames_flow_sends_each_to_its_old_or_new_target() {
    const ROUNDS: usize = 60;
    const PER_ROUND: u32 = 8;
    let mut tb = standard();
    let dest = cidr(ip(10, 77, 0, 0), 16);
    let dst = ip(10, 77, 0, 5);
    // The shorter route a delete-then-add would let the prefix fall to.
    tb.add_route(
        TABLE_A_MAIN,
        cidr(ip(10, 64, 0, 0), 10),
        RouteTarget::Gateway(NATGW),
    );
    let targets = [
        RouteTarget::Gateway(IGW),
        RouteTarget::Gateway(VGW),
        RouteTarget::Instance(IP3),
    ];
    tb.add_route(TABLE_A_MAIN, dest, targets[0]);
    tb.mark();

    // Round i's frames go out while the route leads to targets[i % 3]; the replace to
    // targets[(i + 1) % 3] follows them at once, without waiting for them to arrive. What
    // has arrived is taken after each round, so no receiver's ring overflows.
    let total = ROUNDS * PER_ROUND as usize;
    let mut round_of = Vec::new();
    let mut landed: Vec<Option<Landed>> = vec![None; total];
    let mut got = 0;
    let mut drain = |tb: &mut tests::Testbed, got: &mut usize| {
        let mut note = |seq: u32, at: Landed| {
            let slot = &mut landed[seq as usize];
            assert_eq!(*slot, None, "frame {seq} arrived twice");
            *slot = Some(at);
            *got += 1;
        };
        while let Some(f) = tb.uplink.recv(Duration::ZERO) {
            let v = Vxlan::parse(&f);
            let at = match v.outer.dst {
                IGW_HOST => Landed::Igw,
                VGW_HOST => Landed::Vgw,
                other => Landed::Other(other),
            };
            note(seq_of(&v.inner), at);
        }
        while let Some(f) = tb.vm(3).try_recv() {
            note(seq_of(&f), Landed::Middlebox);
        }
    };
    for round in 0..ROUNDS {
        for _ in 0..PER_ROUND {
            let seq = round_of.len() as u32;
            round_of.push(round);
            tb.send(0, &udp_frame(GW_WEB, MAC0, IP0, dst, &seq.to_be_bytes()));
        }
        let next = targets[(round + 1) % targets.len()];
        tb.driver
            .replace_route(TABLE_A_MAIN, dest, next)
            .expect("ROUTE_ADD with REPLACE");
        drain(&mut tb, &mut got);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got < total {
        assert!(
            std::time::Instant::now() < deadline,
            "{got} of {total} frames arrived; VF0: {:?}",
            tb.counters(vf(0))
        );
        std::thread::sleep(Duration::from_millis(1));
        drain(&mut tb, &mut got);
    }
    for (seq, (at, &round)) in landed.iter().zip(&round_of).enumerate() {
        let old = landing(targets[round % targets.len()]);
        let new = landing(targets[(round + 1) % targets.len()]);
        let at = at.expect("every frame arrived");
        assert!(
            at == old || at == new,
            "frame {seq} of round {round} landed on {at:?}, neither the old target {old:?} \
             nor the new {new:?}"
        );
    }
    for t in targets {
        assert!(landed.contains(&Some(landing(t))), "no frame reached {t}");
    }
    let c = tb.counters(vf(0));
    assert_eq!(c.get(Counter::TxPackets), total as u64);
    assert_eq!(c.get(Counter::DropNoRoute), 0);
    tb.assert_no_drops();
    tb.assert_nothing_out();
}
