//! # nicctl
//!
//! The operator's tool on top of the vpcnic PF driver (`host-driver`): the VPC file
//! ([`config`]: parse, validate, plan), rendering as text and JSON ([`render`]), the control
//! socket of a running deployment ([`control`]: protocol, client and server), [`nics`] (one
//! view of "the NICs a command talks to", whether opened here or served by a running `up`),
//! and `nicctl up` ([`up`]: namespaces, TAPs, the underlay, gateways). The commands
//! themselves are in the binary, one file each under `cmd/`.
pub mod cluster;
pub mod config;
pub mod control;
pub mod error;
pub mod flow;
pub mod nics;
pub mod pcap;
pub mod render;
pub mod up;

pub use error::{CliError, Result};
