//! `nicctl vfs`: a PF's SR-IOV VFs through sysfs, and its VF token.
use crate::{Cli, VfsCommand};
use host_driver::backend::vfio::{parse_bdf, VfioBackend};
use host_driver::sriov::{self, Sysfs};
use host_driver::vf_token::VfTokens;
use nicctl::control::client::Client;
use nicctl::control::{Request, StatusReply};
use nicctl::render::sriov::list_text;
use nicctl::{CliError, Result};
use std::collections::HashMap;

pub fn run(cli: &Cli, action: &VfsCommand) -> Result<String> {
    let sys = Sysfs::default();
    match action {
        VfsCommand::Enable { count, pf } => {
            let pf = parse_bdf(pf)?;
            let vfs = sriov::enable(&sys, &pf, *count)?;
            let mut out = format!(
                "{pf}: {count} VF{} bound to vfio-pci\n",
                if *count == 1 { "" } else { "s" }
            );
            out.push_str(&list_text(&vfs, |_| None));
            if *count > 0 && sriov::pf_driver(&sys, &pf).as_deref() == Some(sriov::VFIO_PCI) {
                out.push_str(&set_vf_token(&pf)?);
            }
            Ok(out)
        }
        VfsCommand::List { pf } => {
            let pf = pf.as_deref().map(parse_bdf).transpose()?;
            let vfs = sriov::list(&sys, pf.as_deref())?;
            let served = served_instances(cli);
            let mut out = list_text(&vfs, |v| served.get(&v.index).cloned());
            let mut pfs: Vec<&str> = vfs.iter().map(|v| v.pf.as_str()).collect();
            pfs.dedup();
            for pf in pfs {
                if let Some(token) = VfTokens::default().get(pf).map_err(CliError::VfToken)? {
                    out.push_str(&format!("VF token of {pf}: {token}\n"));
                }
            }
            Ok(out)
        }
    }
}

/// The instances of the running `nicctl up` by VF number (its first host's), if one runs.
fn served_instances(cli: &Cli) -> HashMap<u32, String> {
    let Ok(Some(path)) = super::running(cli) else {
        return HashMap::new();
    };
    let Ok(status) =
        Client::connect(&path).and_then(|mut c| c.call::<StatusReply>(&Request::Status))
    else {
        return HashMap::new();
    };
    status
        .hosts
        .first()
        .map(|h| {
            h.vfs
                .iter()
                .map(|(n, v)| (u32::from(*v), n.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// Makes the VF token of a PF vfio-pci owns and sets it in the kernel by opening the PF
/// with it (no VF is in use yet); says how a VMM presents it.
fn set_vf_token(pf: &str) -> Result<String> {
    let tokens = VfTokens::default();
    let token = tokens.get_or_create(pf).map_err(CliError::VfToken)?;
    let how = format!(
        "a VMM opens each VF as \"<VF address> vf_token={token}\" (DPDK: --vfio-vf-token={token})"
    );
    Ok(match VfioBackend::open(pf) {
        Ok(_) => format!(
            "VF token of {pf}: {token} (kept in {}, set on the PF); {how}\n",
            tokens.path(pf).display()
        ),
        Err(e) => format!(
            "VF token of {pf}: {token} (kept in {}); not yet set on the PF ({e}): the next \
             nicctl that opens the PF sets it; {how}\n",
            tokens.path(pf).display()
        ),
    })
}
