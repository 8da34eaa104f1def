//! The client's side of the control socket: [`Client`] sends one request and reads its
//! answer; [`Remote`] is [`Nics`] over it.
use super::{
    from_hex, to_hex, ControlError, DescribeReply, Reply, Request, StatsReply, StatusReply,
    TraceReply,
};
use crate::config::{self, Config};
use crate::error::{CliError, Result};
use crate::nics::{NicHost, Nics};
use host_driver::port::PortStatus;
use host_driver::table_read::NicTables;
use host_driver::tables::{Port, StatsFunction};
use serde::de::DeserializeOwned;
use shared_regs::stats::Counters;
use std::cell::RefCell;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

/// How long a client waits for an answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client waits for an `apply` (which may wait for DHCP leases).
pub const APPLY_TIMEOUT: Duration = Duration::from_secs(180);

/// A connection to a running `nicctl up`.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> std::result::Result<Client, ControlError> {
        let stream = UnixStream::connect(path).map_err(|e| ControlError::Connect {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Waits up to `timeout` for each answer from now on.
    pub fn set_timeout(&mut self, timeout: Duration) -> std::result::Result<(), ControlError> {
        Ok(self.reader.get_ref().set_read_timeout(Some(timeout))?)
    }

    /// Sends `request` and reads its answer.
    pub fn call<T: DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> std::result::Result<T, ControlError> {
        let mut line =
            serde_json::to_string(request).map_err(|e| ControlError::Protocol(e.to_string()))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        let mut answer = String::new();
        if self.reader.read_line(&mut answer)? == 0 {
            return Err(ControlError::Protocol(
                "the server closed the connection".into(),
            ));
        }
        match serde_json::from_str::<Reply<T>>(&answer) {
            Ok(Reply::Ok(v)) => Ok(v),
            Ok(Reply::Error(e)) => Err(ControlError::Refused(e)),
            Err(e) => Err(ControlError::Protocol(format!("{e}: {}", answer.trim()))),
        }
    }

    /// The connection, for what follows a `capture` answer (the reader may hold bytes
    /// already read).
    pub fn into_reader(self) -> BufReader<UnixStream> {
        self.reader
    }
}

/// A running `nicctl up`'s NICs, through its control socket.
pub struct Remote {
    client: RefCell<Client>,
    config: Config,
    hosts: Vec<NicHost>,
}

impl Remote {
    /// Connects to the deployment at `path` and learns its VPC file.
    pub fn connect(path: &Path) -> Result<Remote> {
        let mut client = Client::connect(path)?;
        let DescribeReply { config, ids } = client.call(&Request::Describe)?;
        // The hosts whose NICs it serves (an agent serves one host of the file).
        let StatusReply { hosts: served, .. } = client.call(&Request::Status)?;
        let hosts = served
            .iter()
            .map(|h| {
                // The IDs the NICs hold (a server that sends none programmed file order).
                let plan = match ids.get(&h.name) {
                    Some(ids) => config::plan::plan_with(&config, &h.name, ids.clone())?,
                    None => config::plan(&config, &h.name)?,
                };
                Ok(NicHost {
                    name: h.name.clone(),
                    plan: Some(plan),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Remote {
            client: RefCell::new(client),
            config,
            hosts,
        })
    }

    fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T> {
        Ok(self.client.borrow_mut().call(request)?)
    }

    fn host_name(&self, host: usize) -> Result<String> {
        self.hosts
            .get(host)
            .map(|h| h.name.clone())
            .ok_or_else(|| CliError::Usage(format!("there is no host {host}")))
    }
}

impl Nics for Remote {
    fn config(&self) -> Option<&Config> {
        Some(&self.config)
    }

    fn hosts(&self) -> &[NicHost] {
        &self.hosts
    }

    fn stats(
        &self,
        host: usize,
        vfs: &[u16],
        uplink: bool,
    ) -> Result<Vec<(StatsFunction, Counters)>> {
        let reply: StatsReply = self.call(&Request::Stats {
            host: self.host_name(host)?,
            vfs: vfs.to_vec(),
            uplink,
        })?;
        Ok(reply
            .columns
            .iter()
            .map(|c| c.decode())
            .collect::<std::result::Result<_, _>>()?)
    }

    fn tables(&self, host: usize) -> Result<NicTables> {
        self.call(&Request::Tables {
            host: self.host_name(host)?,
        })
    }

    fn port(&self, host: usize) -> Result<PortStatus> {
        self.call(&Request::Port {
            host: self.host_name(host)?,
        })
    }

    fn trace_bytes(&self, host: usize, port: Port, frame: &[u8]) -> Result<Vec<u8>> {
        let reply: TraceReply = self.call(&Request::Trace {
            host: self.host_name(host)?,
            port: port.to_string(),
            frame: to_hex(frame),
        })?;
        from_hex(&reply.report)
            .map_err(|why| CliError::Protocol(format!("the server's trace report: {why}")))
    }
}
