//! `nicctl capture INSTANCE -w FILE.pcap`: what an instance's VF sends and receives.
use crate::Cli;
use nicctl::control::client::Client;
use nicctl::control::{CaptureReply, ControlError, Request};
use nicctl::{pcap, CliError, Result};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn run(
    cli: &Cli,
    instance: &str,
    write: &Path,
    count: Option<u64>,
    seconds: Option<f64>,
) -> Result<String> {
    // Checked before anything is made: a refused command leaves no file.
    const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;
    let seconds = seconds
        .map(|s| {
            if (0.0..=MAX_SECONDS).contains(&s) {
                Ok(Duration::from_secs_f64(s))
            } else {
                Err(CliError::Usage(format!(
                    "--seconds {s}: a number of seconds from 0 to {MAX_SECONDS} (a year)"
                )))
            }
        })
        .transpose()?;
    let signals = super::block_stop_signals();
    let Some(path) = super::running(cli)? else {
        return Err(CliError::Usage(
            "no `nicctl up` is running to capture from (start one with `nicctl up FILE`)".into(),
        ));
    };
    let mut client = Client::connect(&path)?;
    let reply: CaptureReply = client.call(&Request::Capture {
        instance: instance.to_string(),
    })?;
    let io_error = |e: std::io::Error| CliError::File {
        path: write.display().to_string(),
        source: e,
    };
    let mut out = std::fs::File::create(write).map_err(io_error)?;
    out.write_all(&pcap::global_header()).map_err(io_error)?;
    eprintln!(
        "capturing {} (vf{} of host {}) into {}; Ctrl-C to stop",
        reply.instance,
        reply.vf,
        reply.host,
        write.display()
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        super::wait_for_stop(&signals);
        s.store(true, Ordering::Relaxed);
    });
    let deadline = seconds.and_then(|s| Instant::now().checked_add(s));
    let mut reader = client.into_reader();
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(ControlError::from)?;
    let (mut pending, mut chunk, mut frames) = (Vec::new(), vec![0u8; 1 << 16], 0u64);
    let done = |frames: u64| count.is_some_and(|c| frames >= c);
    while !done(frames)
        && !stop.load(Ordering::Relaxed)
        && deadline.is_none_or(|d| Instant::now() < d)
    {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(ControlError::from(e).into()),
        }
        while let Some(len) = pcap::record_len(&pending) {
            if done(frames) {
                break;
            }
            out.write_all(&pending[..len]).map_err(io_error)?;
            pending.drain(..len);
            frames += 1;
        }
    }
    Ok(format!(
        "{frames} frame{} of {instance} written to {}\n",
        if frames == 1 { "" } else { "s" },
        write.display()
    ))
}
