//! Listening sockets only their owner can connect to.
//!
//! Connecting to a Unix socket takes write permission on its file, and `bind` creates that
//! file with the process's umask: under umask 000 any local user could write the PF's
//! registers or put frames on the uplink. So the socket's mode is set before `bind` (Linux
//! creates the file with the mode of the socket's inode, less the umask, which can only
//! take bits away): the file is 0600 from the moment it exists. A chmod after `bind` would
//! leave a moment in which another user could connect, and a connection outlives a chmod.
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// The mode of every socket: the owner's alone.
pub(super) const MODE: u32 = 0o600;

/// Pending connections the kernel queues while the server is busy with its client.
const BACKLOG: libc::c_int = 16;

/// A listening Unix stream socket at `path` (which must not exist yet) with mode
/// [`MODE`] from the moment it exists.
pub(super) fn listen_private(path: &Path) -> io::Result<UnixListener> {
    let (addr, len) = sockaddr(path)?;
    // SAFETY: socket(2) takes no pointers; it returns a new descriptor or -1.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socket(2) has just returned this descriptor, and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fchmod(2) on a descriptor we own; it takes no pointers.
    if unsafe { libc::fchmod(fd.as_raw_fd(), MODE) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `addr` is an initialised sockaddr_un, and `len` is no more than its size.
    let bound = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast::<libc::sockaddr>(),
            len,
        )
    };
    if bound < 0 {
        return Err(io::Error::last_os_error());
    }
    // Nobody can connect before listen(2): a kernel that did not carry the mode over is
    // caught here, before the socket is reachable.
    let mode = std::fs::symlink_metadata(path)?.permissions().mode() & 0o7777;
    if mode & !MODE != 0 {
        let _ = std::fs::remove_file(path);
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("the socket came up with mode {mode:o}, open to other users: not served"),
        ));
    }
    if mode != MODE {
        // A umask that takes the owner's own bits away: give them back, nobody else's.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE))?;
    }
    // SAFETY: listen(2) on a descriptor we own; it takes no pointers.
    if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } < 0 {
        let e = io::Error::last_os_error();
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(UnixListener::from(fd))
}

/// `path` as a socket address, and the address's length.
fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    let mut addr = libc::sockaddr_un {
        sun_family: libc::AF_UNIX as libc::sa_family_t,
        sun_path: [0; 108],
    };
    let bytes = path.as_os_str().as_bytes();
    // The path and its NUL must fit.
    if bytes.is_empty() || bytes.contains(&0) || bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "a socket path is 1 to {} bytes without NUL; this one is {}",
                addr.sun_path.len() - 1,
                bytes.len()
            ),
        ));
    }
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::offset_of!(libc::sockaddr_un, sun_path) + bytes.len() + 1;
    // At most the size of sockaddr_un (checked above), which fits a socklen_t.
    Ok((addr, len as libc::socklen_t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_too_long_for_a_socket_is_refused_by_length() {
        let long = Path::new("/tmp").join("s".repeat(200));
        let e = listen_private(&long).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("205"), "{e}");
        assert!(!long.exists());
    }
}
