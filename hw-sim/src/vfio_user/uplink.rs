//! The uplink cable between processes: `PATH.uplink`, a Unix stream socket carrying frames,
//! each a little-endian `u32` length and the frame's bytes. The far end (the top-of-rack
//! switch, in tests) connects as an [`UplinkClient`] and has what an in-process
//! [`crate::UplinkPort`] has: `send` and `recv`. One far end at a time; frames the NIC sends
//! while nobody is connected are lost, as on an unplugged cable.
use crate::{SimError, UplinkPort};
use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Longest frame the cable carries (a jumbo frame with VXLAN headroom, rounded up).
const MAX_FRAME: usize = 16 * 1024;
/// How often the forwarding thread looks again when the NIC sends nothing.
const POLL: Duration = Duration::from_millis(50);

pub(super) fn write_frame(stream: &mut UnixStream, frame: &[u8]) -> io::Result<()> {
    let len = u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too long"))?;
    let mut msg = Vec::with_capacity(frame.len() + 4);
    msg.extend_from_slice(&len.to_le_bytes());
    msg.extend_from_slice(frame);
    stream.write_all(&msg)
}

pub(super) fn read_frame(stream: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::other(format!(
            "a {len}-byte frame is longer than {MAX_FRAME}"
        )));
    }
    let mut frame = vec![0u8; len];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

/// Binds the uplink's socket at `path`, which must not exist yet, for its owner alone.
pub(super) fn listen(path: &Path) -> Result<UnixListener, SimError> {
    super::socket::listen_private(path)
        .map_err(|e| SimError::io(format!("serving the uplink at {}", path.display()), e))
}

/// Carries frames between `uplink` and whoever is connected to `listener`.
pub(super) fn serve(
    listener: UnixListener,
    uplink: UplinkPort,
) -> Result<JoinHandle<()>, SimError> {
    let peer: Arc<Mutex<Option<UnixStream>>> = Arc::default();
    let to_peer = Arc::clone(&peer);
    let from_nic = uplink.clone();
    std::thread::Builder::new()
        .name("uplink-out".into())
        .spawn(move || loop {
            let Some(frame) = from_nic.recv(POLL) else {
                continue;
            };
            let mut guard = to_peer.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(stream) = guard.as_mut() {
                if write_frame(stream, &frame).is_err() {
                    *guard = None;
                }
            }
        })
        .map_err(|e| SimError::io("spawning the uplink thread", e))?;
    std::thread::Builder::new()
        .name("uplink-in".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(writer) = stream.try_clone() else {
                    continue;
                };
                *peer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
                while let Ok(frame) = read_frame(&mut stream) {
                    uplink.send(&frame);
                }
                *peer.lock().unwrap_or_else(|p| p.into_inner()) = None;
            }
        })
        .map_err(|e| SimError::io("spawning the uplink thread", e))
}

/// The far end of the uplink of a `nic-sim` process.
pub struct UplinkClient {
    writer: Mutex<UnixStream>,
    frames: Mutex<Receiver<Vec<u8>>>,
}

impl UplinkClient {
    /// Plugs into the uplink socket at `path` (`PATH.uplink`).
    pub fn connect(path: &Path) -> Result<UplinkClient, SimError> {
        let what = || format!("connecting to the uplink at {}", path.display());
        let stream = UnixStream::connect(path).map_err(|e| SimError::io(what(), e))?;
        let mut reader = stream.try_clone().map_err(|e| SimError::io(what(), e))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("uplink-client".into())
            .spawn(move || {
                while let Ok(frame) = read_frame(&mut reader) {
                    if tx.send(frame).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| SimError::io("spawning the uplink reader", e))?;
        Ok(UplinkClient {
            writer: Mutex::new(stream),
            frames: Mutex::new(rx),
        })
    }

    /// Puts a frame on the wire towards the NIC (lost if the NIC is gone).
    pub fn send(&self, frame: &[u8]) {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = write_frame(&mut w, frame);
    }

    /// The next frame the NIC sent, waiting up to `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let rx = self.frames.lock().unwrap_or_else(|p| p.into_inner());
        rx.recv_timeout(timeout).ok()
    }
}

impl Drop for UplinkClient {
    fn drop(&mut self) {
        let w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let _ = w.shutdown(std::net::Shutdown::Both);
    }
}
