//! The conformance scenarios of spec/vpc-forwarding.md (the `conformance_*.rs` files), once
//! more with the board as a `nic-sim` process reached through vfio-user. In this binary
//! (its name starts with `vfio_user_`), `Testbed::start` starts `nic-sim`.
#[path = "conformance_dhcp.rs"]
mod conformance_dhcp;
#[path = "conformance_ipv4.rs"]
mod conformance_ipv4;
#[path = "conformance_isolation.rs"]
mod conformance_isolation;
#[path = "conformance_l2.rs"]
mod conformance_l2;
#[path = "conformance_mtu_vxlan.rs"]
mod conformance_mtu_vxlan;
#[path = "conformance_routing.rs"]
mod conformance_routing;
