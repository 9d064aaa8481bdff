//! The systemd notification protocol (`sd_notify(3)`): datagrams of
//! `KEY=VALUE` lines sent to the socket named by `NOTIFY_SOCKET`. Written here
//! rather than taken from a crate: it is one datagram per call, and doing it
//! ourselves keeps `unsafe` (which `sd-notify` needs for its fd helpers) out.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where systemd listens, if it does. Without `NOTIFY_SOCKET` every call is a
/// no-op, so the daemon runs the same under a terminal.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    address: Address,
}

#[derive(Debug, Clone)]
enum Address {
    /// A path in the file system.
    Path(PathBuf),
    /// `@name`: Linux's abstract namespace.
    Abstract(Vec<u8>),
}

impl Notifier {
    /// Reads `NOTIFY_SOCKET` and `WATCHDOG_USEC` (and `WATCHDOG_PID`, which
    /// must be ours when set). An unusable socket is an error, so a unit that
    /// waits for `READY=1` is not left waiting for nothing.
    pub fn from_env() -> io::Result<Self> {
        let target = match std::env::var_os("NOTIFY_SOCKET") {
            Some(name) if !name.is_empty() => {
                let socket = UnixDatagram::unbound()?;
                // Never wait on systemd from the async threads: a full
                // queue is an error to log, not a stall.
                socket.set_nonblocking(true)?;
                Some(Target {
                    socket,
                    address: Address::parse(name.as_encoded_bytes()),
                })
            }
            _ => None,
        };
        Ok(Notifier {
            target,
            watchdog: watchdog_from_env(),
        })
    }

    /// A notifier that sends nothing (tests, `sync --once`).
    pub fn disabled() -> Self {
        Notifier {
            target: None,
            watchdog: None,
        }
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, as
    /// `sd_watchdog_enabled(3)` advises; `None` when systemd asked for none.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|d| d / 2)
    }

    /// `READY=1` (after start-up and after a reload), with a status line.
    pub fn ready(&self, status: &str) -> io::Result<()> {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)))
    }

    /// `RELOADING=1` before a reload; [`Notifier::ready`] ends it.
    pub fn reloading(&self) -> io::Result<()> {
        self.send("RELOADING=1\nSTATUS=reloading the configuration")
    }

    /// `STOPPING=1` when shutdown begins.
    pub fn stopping(&self) -> io::Result<()> {
        self.send("STOPPING=1\nSTATUS=stopping")
    }

    /// `STATUS=…`: one free-form line `systemctl status` shows.
    pub fn status(&self, status: &str) -> io::Result<()> {
        self.send(&format!("STATUS={}", one_line(status)))
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog(&self) -> io::Result<()> {
        self.send("WATCHDOG=1")
    }

    fn send(&self, message: &str) -> io::Result<()> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let sent = match &target.address {
            Address::Path(path) => target.socket.send_to(message.as_bytes(), path),
            Address::Abstract(name) => send_abstract(&target.socket, name, message.as_bytes()),
        }?;
        if sent != message.len() {
            return Err(io::Error::other("the notification was sent in part"));
        }
        Ok(())
    }
}

impl Address {
    fn parse(name: &[u8]) -> Address {
        match name.split_first() {
            Some((b'@', rest)) => Address::Abstract(rest.to_vec()),
            _ => Address::Path(PathBuf::from(String::from_utf8_lossy(name).into_owned())),
        }
    }
}

fn send_abstract(socket: &UnixDatagram, name: &[u8], message: &[u8]) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    socket.send_to_addr(message, &address)
}

/// `WATCHDOG_USEC`, if set, positive and meant for this process.
fn watchdog_from_env() -> Option<Duration> {
    if let Some(pid) = std::env::var_os("WATCHDOG_PID") {
        if pid.to_str()?.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// A status value must not break the `KEY=VALUE` lines.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (tempfile::TempDir, UnixDatagram, Notifier) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).expect("bind");
        let notifier = Notifier {
            target: Some(Target {
                socket: UnixDatagram::unbound().expect("socket"),
                address: Address::Path(path),
            }),
            watchdog: Some(Duration::from_secs(10)),
        };
        (dir, listener, notifier)
    }

    fn received(listener: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = listener.recv(&mut buf).expect("recv");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_and_status_arrive_as_one_datagram_each() {
        let (_dir, listener, notifier) = pair();
        notifier.ready("2 sources\nscheduled").expect("send");
        assert_eq!(received(&listener), "READY=1\nSTATUS=2 sources scheduled");
        notifier.stopping().expect("send");
        assert!(received(&listener).starts_with("STOPPING=1"));
    }

    #[test]
    fn watchdog_interval_is_half_of_what_systemd_asked() {
        let (_dir, _listener, notifier) = pair();
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn an_abstract_socket_name_is_recognised() {
        assert!(
            matches!(Address::parse(b"@liaison/test"), Address::Abstract(n) if n == b"liaison/test")
        );
        assert!(matches!(
            Address::parse(b"/run/systemd/notify"),
            Address::Path(_)
        ));
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let notifier = Notifier::disabled();
        notifier.ready("x").expect("no-op");
        assert_eq!(notifier.watchdog_interval(), None);
    }
}
