//! [`apply`]: changes made on a NIC in order, many per doorbell, stopping at the first one
//! refused.
use super::Change;
use crate::batch::Batch;
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

/// Makes `changes` on the NIC in order, as batches of admin commands (a replace is the ADD
/// with `REPLACE`, ABI 1.3, made in place by the firmware); `progress(done, total)` as
/// they complete.
pub fn apply(
    driver: &PfDriver,
    changes: &[Change],
    mut progress: impl FnMut(usize, usize),
) -> Result<(), Box<ApplyError>> {
    let total = changes.len();
    let refused = |at: usize, error: DriverError| {
        Box::new(ApplyError {
            applied: at,
            change: changes[at].clone(),
            error,
        })
    };
    let mut start = 0;
    while start < total {
        // A VPC replaced goes alone (its domain travels in the indirect buffer).
        if let Change::ReplaceVpc(v) = &changes[start] {
            driver.replace_vpc(v).map_err(|e| refused(start, e))?;
            start += 1;
            progress(start, total);
            continue;
        }
        let end = changes[start..]
            .iter()
            .position(|c| matches!(c, Change::ReplaceVpc(_)))
            .map_or(total, |n| start + n);
        let mut batch = driver.batch();
        for (i, change) in changes[start..end].iter().enumerate() {
            queue(&mut batch, change).map_err(|e| refused(start + i, e))?;
        }
        batch
            .run_with_progress(|done, _| progress(start + done, total))
            .map_err(|e| match e {
                DriverError::Batch { applied, error, .. } => refused(start + applied, *error),
                other => refused(start, other),
            })?;
        start = end;
    }
    Ok(())
}

/// Queues one change's admin command.
fn queue(b: &mut Batch<'_>, change: &Change) -> Result<(), DriverError> {
    use Change::*;
    match change {
        SetUplink(u) => {
            b.set_uplink(u);
        }
        AddVpc(v) => {
            b.add_vpc(v)?;
        }
        // Its domain travels in the indirect buffer: `apply` sends it alone, never here.
        ReplaceVpc(v) => {
            return Err(DriverError::InvalidArgument(format!(
                "replace {} cannot be batched",
                v.describe()
            )))
        }
        DelVpc(id) => {
            b.del_vpc(*id);
        }
        AddGateway(g) => {
            b.add_gateway(g);
        }
        ReplaceGateway(g) => {
            b.replace_gateway(g)?;
        }
        DelGateway(id) => {
            b.del_gateway(*id);
        }
        AddRouteTable { id, vpc_id } => {
            b.add_route_table(*id, *vpc_id);
        }
        DelRouteTable(id) => {
            b.del_route_table(*id);
        }
        AddRoute {
            table,
            dest,
            target,
        } => {
            b.add_route(*table, *dest, *target);
        }
        ReplaceRoute {
            table,
            dest,
            target,
        } => {
            b.replace_route(*table, *dest, *target)?;
        }
        DelRoute { table, dest } => {
            b.del_route(*table, *dest);
        }
        AddSubnet(s) => {
            b.add_subnet(s);
        }
        ReplaceSubnet(s) => {
            b.replace_subnet(s)?;
        }
        DelSubnet(id) => {
            b.del_subnet(*id);
        }
        SetVf(v) => {
            b.set_vf(v);
        }
        ReplaceVf(v) => {
            b.replace_vf(v)?;
        }
        SetVfFlags { vf, src_dst_check } => {
            b.set_vf_flags(*vf, *src_dst_check);
        }
        ClearVf(vf) => {
            b.clear_vf(*vf);
        }
        AddVfAddr { vf, ip } => {
            b.add_vf_addr(*vf, *ip);
        }
        DelVfAddr { vf, ip } => {
            b.del_vf_addr(*vf, *ip);
        }
        AddMapping {
            vni,
            ip,
            mac,
            location,
        } => {
            b.add_mapping(*vni, *ip, *mac, *location);
        }
        ReplaceMapping {
            vni,
            ip,
            mac,
            location,
        } => {
            b.replace_mapping(*vni, *ip, *mac, *location)?;
        }
        DelMapping { vni, ip } => {
            b.del_mapping(*vni, *ip);
        }
    }
    Ok(())
}
