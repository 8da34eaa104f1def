//! [`apply`]: changes made on a NIC, in order, stopping at the first one refused.
use super::Change;
use crate::error::DriverError;
use crate::nic::PfDriver;

/// A change the NIC refused. Those before it are applied; it and those after are not, so
/// the NIC is in a state the next reconciliation (which reads it back) repairs.
#[derive(Debug, thiserror::Error)]
#[error("{} {change}: {error} ({applied} change{} applied before it)", change.kind().sign(), if *.applied == 1 { "" } else { "s" })]
pub struct ApplyError {
    /// Changes applied before the refused one.
    pub applied: usize,
    pub change: Change,
    #[source]
    pub error: DriverError,
}

/// Makes `changes` on the NIC in order; `progress(done, total)` after each.
pub fn apply(
    driver: &PfDriver,
    changes: &[Change],
    mut progress: impl FnMut(usize, usize),
) -> Result<(), Box<ApplyError>> {
    for (i, change) in changes.iter().enumerate() {
        make(driver, change).map_err(|error| {
            Box::new(ApplyError {
                applied: i,
                change: change.clone(),
                error,
            })
        })?;
        progress(i + 1, changes.len());
    }
    Ok(())
}

/// One change's admin command: a replace is the ADD with `REPLACE` (ABI 1.3), made in
/// place by the firmware.
fn make(d: &PfDriver, change: &Change) -> Result<(), DriverError> {
    use Change::*;
    match change {
        SetUplink(u) => d.set_uplink(u),
        AddVpc(v) => d.add_vpc(v),
        ReplaceVpc(v) => d.replace_vpc(v),
        DelVpc(id) => d.del_vpc(*id),
        AddGateway(g) => d.add_gateway(g),
        ReplaceGateway(g) => d.replace_gateway(g),
        DelGateway(id) => d.del_gateway(*id),
        AddRouteTable { id, vpc_id } => d.add_route_table(*id, *vpc_id),
        DelRouteTable(id) => d.del_route_table(*id),
        AddRoute {
            table,
            dest,
            target,
        } => d.add_route(*table, *dest, *target),
        ReplaceRoute {
            table,
            dest,
            target,
        } => d.replace_route(*table, *dest, *target),
        DelRoute { table, dest } => d.del_route(*table, *dest),
        AddSubnet(s) => d.add_subnet(s),
        ReplaceSubnet(s) => d.replace_subnet(s),
        DelSubnet(id) => d.del_subnet(*id),
        SetVf(v) => d.set_vf(v),
        ReplaceVf(v) => d.replace_vf(v),
        SetVfFlags { vf, src_dst_check } => d.set_vf_flags(*vf, *src_dst_check),
        ClearVf(vf) => d.clear_vf(*vf),
        AddVfAddr { vf, ip } => d.add_vf_addr(*vf, *ip),
        DelVfAddr { vf, ip } => d.del_vf_addr(*vf, *ip),
        AddMapping {
            vni,
            ip,
            mac,
            location,
        } => d.add_mapping(*vni, *ip, *mac, *location),
        ReplaceMapping {
            vni,
            ip,
            mac,
            location,
        } => d.replace_mapping(*vni, *ip, *mac, *location),
        DelMapping { vni, ip } => d.del_mapping(*vni, *ip),
    }
}
