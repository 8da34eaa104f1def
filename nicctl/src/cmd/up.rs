//! `nicctl up FILE`: the VPC as real namespaces on simulated NICs, served on a control
//! socket until SIGINT or SIGTERM.
use crate::Cli;
use nicctl::config::Limits;
use nicctl::control::server::Server;
use nicctl::up::cluster::ClusterUp;
use nicctl::up::console::UpConsole;
use nicctl::up::{Deployment, UpOptions};
use nicctl::{CliError, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn run(cli: &Cli, file: &Path, dhcp: bool) -> Result<String> {
    let signals = super::block_stop_signals();
    let config = super::load(file, &Limits::vfs(u32::from(hw_sim::MAX_VFS)))?;
    let mut console = UpConsole::default();
    let opts = UpOptions {
        dhcp,
        state_dir: None,
        source: file.display().to_string(),
    };
    let failed = |e: &dyn std::fmt::Display| CliError::Up {
        file: file.display().to_string(),
        reason: e.to_string(),
    };
    if let Some(urls) = &cli.etcd {
        if dhcp {
            return Err(CliError::Usage(
                "--dhcp is not offered with --etcd yet: the cluster's VMs are addressed \
                 statically"
                    .into(),
            ));
        }
        return cluster(&config, urls, &opts, &signals, &mut console).map_err(|e| failed(&e));
    }
    let deployment = Deployment::up(&config, &opts, &mut |p| console.show(p), &mut |_| None)
        .map_err(|e| failed(&e))?;
    let socket = match &cli.socket {
        Some(s) => s.clone(),
        None => deployment
            .state_file()
            .map(|f| f.with_extension("sock"))
            .unwrap_or_else(|| PathBuf::from("/run/vpcnic/nicctl.sock")),
    };
    let server = Server::start(deployment, &socket).map_err(|e| failed(&e))?;
    if let Some(mut d) = server.deployment() {
        d.record_socket(Some(socket.clone()))
            .map_err(|e| failed(&e))?;
    }
    eprintln!(
        "up: nicctl diff, apply, stats, show, trace and capture talk to it at {}",
        socket.display()
    );
    println!("ready");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let sig = super::wait_for_stop(&signals);
    eprintln!("up: {sig}: removing every namespace and device");
    drop(server);
    Ok(String::new())
}

/// `up FILE --etcd URLS`: a board and an agent process per host, fed through etcd; the VMs
/// follow the store until SIGINT or SIGTERM.
fn cluster(
    config: &nicctl::config::Config,
    urls: &str,
    opts: &UpOptions,
    signals: &libc::sigset_t,
    console: &mut UpConsole,
) -> std::result::Result<String, nicctl::up::UpError> {
    let mut up = ClusterUp::up(config, urls, opts, &mut |p| console.show(p))?;
    for (host, socket) in up.agent_sockets() {
        eprintln!(
            "up: host {host}'s agent serves its NIC at {} (nicctl --socket PATH show)",
            socket.display()
        );
    }
    eprintln!("up: change it with nicctl apply FILE --etcd {urls}; nicctl status --etcd {urls}");
    println!("ready");
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let sig = loop {
        if let Some(sig) = super::stop_within(signals, Duration::from_millis(200)) {
            break sig;
        }
        match up.follow() {
            Ok(done) => {
                for c in done {
                    eprintln!("up: {} {c}", c.kind().sign());
                }
            }
            // etcd away: the VMs and NICs go on as they are.
            Err(e) => eprintln!("up: {e}"),
        }
    };
    eprintln!("up: {sig}: removing every namespace, agent and board");
    drop(up);
    Ok(String::new())
}
