//! Network namespaces and links, through iproute2's `ip`: the same commands a person would
//! type, so what `nicctl up` builds can be inspected and repaired by hand.
use std::process::Command;

/// A failed network command (`ip`, `tc`, `bridge`, ...), with what it printed.
#[derive(Debug, thiserror::Error)]
#[error("`{command}` failed: {reason}")]
pub struct IpError {
    /// The command line, tool first.
    pub command: String,
    pub reason: String,
}

/// Runs `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<String, IpError> {
    iproute2("ip", args)
}

/// Runs iproute2's `tool ARGS` (`ip`, `tc`, `bridge`): what it printed.
pub fn iproute2(tool: &str, args: &[&str]) -> Result<String, IpError> {
    let fail = |reason: String| IpError {
        command: format!("{tool} {}", args.join(" ")),
        reason,
    };
    let out = Command::new(tool).args(args).output().map_err(|e| {
        fail(format!(
            "could not run {tool}: {e} (is iproute2 installed?)"
        ))
    })?;
    if !out.status.success() {
        return Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `ip ARGS` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<String, IpError> {
    iproute2_in("ip", ns, args)
}

/// Runs `tc ARGS` inside namespace `ns`.
pub fn tc_in(ns: &str, args: &[&str]) -> Result<String, IpError> {
    iproute2_in("tc", ns, args)
}

/// Runs iproute2's `tool -n NS ARGS`: the tool in namespace `ns`.
pub fn iproute2_in(tool: &str, ns: &str, args: &[&str]) -> Result<String, IpError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    iproute2(tool, &full)
}

/// Creates namespace `name`, with its loopback up.
pub fn add(name: &str) -> Result<(), IpError> {
    ip(&["netns", "add", name])?;
    ip_in(name, &["link", "set", "lo", "up"])?;
    Ok(())
}

/// Deletes namespace `name` (and every device in it) after ending the processes still in
/// it, which would otherwise keep the network namespace alive unnamed; a missing one is not
/// an error.
pub fn delete(name: &str) {
    end_processes(name);
    let _ = ip(&["netns", "delete", name]);
}

/// The processes whose network namespace is `name`.
pub fn pids(name: &str) -> Vec<i32> {
    if !exists(name) {
        return Vec::new();
    }
    ip(&["netns", "pids", name])
        .map(|out| {
            out.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Ends every process in namespace `name`: SIGTERM, then SIGKILL for those still there
/// after a second.
pub fn end_processes(name: &str) {
    let signal_all = |sig| {
        let pids = pids(name);
        for &pid in &pids {
            // SAFETY: kill has no memory effects; `pid` was listed in the namespace.
            unsafe { libc::kill(pid, sig) };
        }
        !pids.is_empty()
    };
    if !signal_all(libc::SIGTERM) {
        return;
    }
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(50));
        if pids(name).is_empty() {
            return;
        }
    }
    signal_all(libc::SIGKILL);
}

/// True when namespace `name` exists.
pub fn exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_command_is_named_tool_first_with_what_it_printed() {
        let e = tc_in("vpcnic-no-such-namespace", &["qdisc", "show"]).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.starts_with("`tc -n vpcnic-no-such-namespace qdisc show` failed: "),
            "{shown}"
        );
        assert!(!e.reason.is_empty(), "{shown}");
        let e = ip(&["link", "show", "vpcnic-no-such-dev"]).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("`ip link show vpcnic-no-such-dev` failed: "),
            "{e}"
        );
    }
}
