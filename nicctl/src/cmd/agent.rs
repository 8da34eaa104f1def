//! `nicctl agent --etcd URLS --host NAME`: this host's NIC kept at the desired state in etcd
//! ([`nicctl::cluster::agent`]), until SIGINT or SIGTERM.
use crate::Cli;
use nicctl::cluster::agent::{Agent, AgentOptions};
use nicctl::control::server::Server;
use nicctl::nics::Local;
use nicctl::{CliError, Result};
use tokio::signal::unix::{signal, SignalKind};

pub fn run(cli: &Cli, host: &str) -> Result<String> {
    let urls = super::etcd(cli, "nicctl agent")?;
    // Structured lines on stderr: time, level, message, then fields (revision among them).
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
    let driver = super::open_device(cli)?;
    let device = driver.info().device.clone();
    let shared = std::sync::Arc::new(driver);
    let server = match &cli.socket {
        Some(path) => Some(
            Server::start_nics(
                Local::shared(host, shared.clone()),
                &format!("the desired state in etcd at {urls}"),
                path,
            )
            .map_err(|e| CliError::File {
                path: path.display().to_string(),
                source: e,
            })?,
        ),
        None => None,
    };
    let mut agent = Agent::new(
        AgentOptions {
            urls,
            host: host.to_string(),
            device,
        },
        shared,
    );
    if let Some(server) = server {
        agent.on_change(move |nics| server.set_nics(nics));
    }
    tracing::info!(host, "agent starting");
    super::block_on(async move {
        let stop = async {
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        };
        agent.run(stop).await;
        tracing::info!("agent stopping; the NIC keeps its tables");
        Ok(String::new())
    })
}
