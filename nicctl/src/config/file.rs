//! The VPC file as TOML gives it: tables in document order, text kept as text (with its
//! byte span) so that the validator can report every bad value, not only the first.
use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

/// A value and where it is in the file.
pub type Text = Spanned<String>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    #[serde(default)]
    pub vpc: IndexMap<String, RawVpc>,
    #[serde(default)]
    pub gateway: IndexMap<String, RawGateway>,
    #[serde(default)]
    pub route_table: IndexMap<String, RawRouteTable>,
    #[serde(default)]
    pub subnet: IndexMap<String, RawSubnet>,
    #[serde(default)]
    pub instance: IndexMap<String, RawInstance>,
    #[serde(default)]
    pub host: IndexMap<String, RawHost>,
}

/// `[vpc.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVpc {
    pub vni: Spanned<i64>,
    pub cidr: Text,
    pub dns: Option<Vec<Text>>,
    pub domain: Option<Text>,
}

/// `[gateway.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    pub kind: Text,
    #[serde(default)]
    pub hosts: Vec<Text>,
    /// Its underlay address (default `203.0.113.N`, N its place among the gateways).
    pub underlay: Option<Text>,
}

/// `[route_table.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRouteTable {
    pub vpc: Text,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// One entry of `routes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub dest: Text,
    pub target: Text,
}

/// `[subnet.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubnet {
    pub vpc: Text,
    pub cidr: Text,
    pub route_table: Option<Text>,
}

/// `[instance.NAME]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    pub subnet: Text,
    pub ip: Text,
    #[serde(default)]
    pub secondary_ips: Vec<Text>,
    pub mac: Option<Text>,
    pub src_dst_check: Option<bool>,
    pub host: Option<Text>,
}

/// `[host.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHost {
    /// Its underlay address (default `192.0.2.N`, N its place among the hosts).
    pub underlay: Option<Text>,
}
