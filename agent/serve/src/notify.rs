//! systemd's service notification protocol (`sd_notify`), spoken directly over the unix datagram
//! socket named by `NOTIFY_SOCKET` (a path, or `@name` for the abstract namespace), with no
//! libsystemd: the [`Notifier`] the agent and the aggregator both use, and the watchdog interval
//! systemd asks for. Without `NOTIFY_SOCKET` it is a no-op.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// A connection to systemd's notification socket.
#[derive(Debug)]
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier named by `NOTIFY_SOCKET`, or `None` when it is unset or empty (not started
    /// by systemd with `Type=notify`). An unusable value is logged and ignored.
    pub fn from_env() -> Option<Notifier> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let value = value.to_str().unwrap_or_default();
        if value.is_empty() {
            return None;
        }
        match Notifier::new(value) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(
                    notify_socket = value,
                    "NOTIFY_SOCKET unusable, not notifying systemd: {e}"
                );
                None
            }
        }
    }

    /// A notifier for `name`: an absolute path, or `@name` for a Linux abstract socket.
    pub fn new(name: &str) -> io::Result<Notifier> {
        let addr = if let Some(abstract_name) = name.strip_prefix('@') {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(abstract_name.as_bytes())?
        } else if name.starts_with('/') {
            SocketAddr::from_pathname(name)?
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "neither an absolute path nor an @abstract name (vsock is not supported)",
            ));
        };
        let socket = UnixDatagram::unbound()?;
        // A notification must never block the runtime: drop it rather than wait.
        socket.set_nonblocking(true)?;
        Ok(Notifier { socket, addr })
    }

    /// Sends one datagram of newline-separated `KEY=VALUE` assignments.
    pub fn notify(&self, state: &str) -> io::Result<()> {
        self.socket.send_to_addr(state.as_bytes(), &self.addr)?;
        Ok(())
    }

    /// Like [`notify`](Self::notify), logging a failure instead of returning it.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.notify(state) {
            tracing::warn!(
                "sd_notify {:?} failed: {e}",
                state.lines().next().unwrap_or("")
            );
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// recommends; `None` when the watchdog is off or meant for another process (`WATCHDOG_PID`).
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.trim().parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    Some(Duration::from_micros(usec) / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_abstract_names_are_reached() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        Notifier::new(path.to_str().unwrap())
            .unwrap()
            .notify("READY=1")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("gluten-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(&format!("@{name}"))
            .unwrap()
            .notify("WATCHDOG=1")
            .unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
    }

    #[test]
    fn relative_names_are_refused() {
        assert!(Notifier::new("relative.sock").is_err());
        assert!(Notifier::new("vsock:2:1234").is_err());
    }
}
