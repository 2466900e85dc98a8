//! Service-manager notifications (`sd_notify(3)`): `READY=1`, `STATUS=`, `WATCHDOG=1`,
//! `RELOADING=1` + `MONOTONIC_USEC=`, `STOPPING=1`, sent as datagrams to `$NOTIFY_SOCKET`.
//!
//! This module only speaks the protocol. *When* to say what belongs to the caller (`app`,
//! `pipeline`): `READY=1` after the folders are watched and the media server listens,
//! `WATCHDOG=1` from the publish loop's own heartbeat so a stuck pipeline gets restarted.
//! Without `NOTIFY_SOCKET` (a terminal, a test, another init system) every call is a no-op.
//! Taking the listening socket from socket activation (`LISTEN_FDS`) is `serve`'s job.
//!
//! The messages are formatted by the `sd-notify` crate; the socket handling is ours so a
//! notifier can target an explicit socket ([`Notifier::with_socket`]) in tests instead of
//! reading the process environment, and so abstract sockets (`@name`) work too.
//! Protocol: <https://www.freedesktop.org/software/systemd/man/latest/sd_notify.html>.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

/// Environment variable naming the service manager's notification socket.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";
/// Environment variable holding the watchdog timeout in microseconds (`WatchdogSec=`).
pub const WATCHDOG_USEC: &str = "WATCHDOG_USEC";
/// Environment variable naming the process the watchdog applies to.
pub const WATCHDOG_PID: &str = "WATCHDOG_PID";

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{NOTIFY_SOCKET}={value:?} is not an absolute socket path or an @abstract name")]
    BadAddress { value: String },
    #[error("cannot create a socket for service-manager notifications: {0}")]
    Socket(#[source] io::Error),
    #[error("cannot read the monotonic clock for MONOTONIC_USEC: {0}")]
    Clock(#[source] io::Error),
    #[error("cannot notify the service manager at {socket} ({message:?}): {source}")]
    Send {
        socket: String,
        message: String,
        #[source]
        source: io::Error,
    },
}

/// Sends notifications to the service manager; a no-op when there is none.
///
/// Cheap to clone: clones share one unbound datagram socket, so the publish loop and the
/// signal handler can each hold one.
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    /// `None` when no service manager listens; lives as long as any clone.
    target: Option<Arc<Target>>,
    /// The full `WATCHDOG_USEC` when the watchdog applies to this process.
    watchdog: Option<Duration>,
}

#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    /// For messages: the address as given (`/run/systemd/notify`, `@name`).
    label: String,
    socket: UnixDatagram,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// The notifier systemd asks for: `$NOTIFY_SOCKET`, with the watchdog from
    /// `$WATCHDOG_USEC` when `$WATCHDOG_PID` is unset or names this process.
    /// No `NOTIFY_SOCKET` (or an empty one) gives a [disabled](Self::disabled) notifier.
    pub fn from_env() -> Result<Self, NotifyError> {
        let Some(socket) = std::env::var_os(NOTIFY_SOCKET).filter(|s| !s.is_empty()) else {
            return Ok(Self::disabled());
        };
        let mut notifier = Self::with_address(&socket)?;
        notifier.watchdog = parse_watchdog(
            std::env::var(WATCHDOG_USEC).ok().as_deref(),
            std::env::var(WATCHDOG_PID).ok().as_deref(),
            std::process::id(),
        );
        Ok(notifier)
    }

    /// A notifier sending to the datagram socket at `path`, without a watchdog. For tests
    /// and for callers that got the path elsewhere; the environment is not read.
    pub fn with_socket(path: impl AsRef<Path>) -> Result<Self, NotifyError> {
        Self::with_address(path.as_ref().as_os_str())
    }

    /// Sets the watchdog timeout (what `WATCHDOG_USEC` would say); `None` turns it off.
    pub fn with_watchdog(mut self, timeout: Option<Duration>) -> Self {
        self.watchdog = timeout.filter(|t| !t.is_zero());
        self
    }

    /// `value` as `NOTIFY_SOCKET` spells it: an absolute path, or `@name` for a socket in
    /// the abstract namespace (what `systemd-run --user` and containers often pass).
    fn with_address(value: &OsStr) -> Result<Self, NotifyError> {
        let bytes = value.as_bytes();
        let bad = || NotifyError::BadAddress {
            value: value.to_string_lossy().into_owned(),
        };
        let addr = match bytes.split_first() {
            Some((b'@', name)) => SocketAddr::from_abstract_name(name).map_err(|_| bad())?,
            Some((b'/', _)) => SocketAddr::from_pathname(value).map_err(|_| bad())?,
            _ => return Err(bad()),
        };
        let socket = UnixDatagram::unbound().map_err(NotifyError::Socket)?;
        // Never block the runtime on a service manager that stopped reading: a full socket
        // drops the message (and logs it) instead.
        socket.set_nonblocking(true).map_err(NotifyError::Socket)?;
        Ok(Self {
            target: Some(Arc::new(Target {
                addr,
                label: value.to_string_lossy().into_owned(),
                socket,
            })),
            watchdog: None,
        })
    }

    /// Whether a service manager is listening (`NOTIFY_SOCKET` was set).
    pub fn is_enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send [`watchdog`](Self::watchdog): half the timeout, as `sd_watchdog_enabled(3)`
    /// recommends. `None` when there is no watchdog or no one to notify, so an idle daemon
    /// schedules no wake-up for it.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.target.as_ref()?;
        self.watchdog.map(|t| t / 2)
    }

    /// Sends `states` as one datagram, one `KEY=value` per line. `Ok` without sending when
    /// disabled. Prefer the named methods; this is for combinations they do not cover.
    pub fn send(&self, states: &[NotifyState<'_>]) -> Result<(), NotifyError> {
        let Some(target) = &self.target else {
            return Ok(());
        };
        let message: String = states.iter().map(|s| format!("{s}\n")).collect();
        let sent = target
            .socket
            .send_to_addr(message.as_bytes(), &target.addr)
            .and_then(|n| {
                if n == message.len() {
                    Ok(())
                } else {
                    Err(io::Error::new(
                        io::ErrorKind::WriteZero,
                        "datagram truncated",
                    ))
                }
            });
        sent.map_err(|source| NotifyError::Send {
            socket: target.label.clone(),
            message: message.trim_end().to_string(),
            source,
        })
    }

    /// `READY=1`: start-up (or a reload) is complete.
    pub fn ready(&self) {
        self.send_logged(&[NotifyState::Ready]);
    }

    /// `STATUS=…`: one line for `systemctl status`. Line breaks become spaces, so a file
    /// name cannot smuggle in another `KEY=value`.
    pub fn status(&self, status: &str) {
        if !self.is_enabled() {
            return;
        }
        let line = one_line(status);
        self.send_logged(&[NotifyState::Status(&line)]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (required since systemd 253 for
    /// `Type=notify-reload`, harmless before). Follow with [`ready`](Self::ready) once
    /// the new configuration is in effect, or was refused.
    pub fn reloading(&self) {
        if !self.is_enabled() {
            return;
        }
        match NotifyState::monotonic_usec_now() {
            Ok(now) => self.send_logged(&[NotifyState::Reloading, now]),
            Err(e) => tracing::warn!("{}", NotifyError::Clock(e)),
        }
    }

    /// `STOPPING=1`: shutdown has begun (sent on SIGTERM, before draining).
    pub fn stopping(&self) {
        self.send_logged(&[NotifyState::Stopping]);
    }

    /// `WATCHDOG=1`: the service is alive. Send every [`watchdog_interval`](Self::watchdog_interval).
    pub fn watchdog(&self) {
        self.send_logged(&[NotifyState::Watchdog]);
    }

    /// A failed notification must not stop the service; it is logged where it happens.
    fn send_logged(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = self.send(states) {
            tracing::warn!("{e}");
        }
    }
}

/// `sd_watchdog_enabled(3)`: the timeout applies when `WATCHDOG_PID` is unset or names
/// `own_pid`; unset, zero or unparsable values mean no watchdog.
fn parse_watchdog(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    let usec: u64 = usec?.trim().parse().ok().filter(|&u| u > 0)?;
    match pid {
        None => Some(Duration::from_micros(usec)),
        Some(p) => (p.trim().parse::<u32>().ok()? == own_pid).then(|| Duration::from_micros(usec)),
    }
}

fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Env var telling the re-executed test binary that it is the child of `child_process_*`.
    const CHILD_FLAG: &str = "TOKDROP_TEST_NOTIFY_CHILD";

    fn listener(dir: &Path) -> (UnixDatagram, std::path::PathBuf) {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).expect("bind");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        (sock, path)
    }

    fn recv(sock: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).expect("a datagram within 10 s");
        String::from_utf8(buf[..n].to_vec()).expect("utf-8")
    }

    /// Each named method sends exactly its datagram to the socket it was given.
    #[test]
    fn sends_exact_datagrams() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sock, path) = listener(dir.path());
        let n = Notifier::with_socket(&path).expect("notifier");
        n.ready();
        assert_eq!(recv(&sock), "READY=1\n");
        n.status("idle, 3 queued");
        assert_eq!(recv(&sock), "STATUS=idle, 3 queued\n");
        n.watchdog();
        assert_eq!(recv(&sock), "WATCHDOG=1\n");
        n.stopping();
        assert_eq!(recv(&sock), "STOPPING=1\n");
    }

    /// RELOADING=1 and MONOTONIC_USEC travel in one datagram, with the current monotonic time.
    #[test]
    fn reloading_carries_monotonic_usec() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sock, path) = listener(dir.path());
        let n = Notifier::with_socket(&path).expect("notifier");
        let NotifyState::MonotonicUsec(before) = NotifyState::monotonic_usec_now().expect("clock")
        else {
            unreachable!()
        };
        n.reloading();
        let msg = recv(&sock);
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines.len(), 2, "{msg:?}");
        assert_eq!(lines[0], "RELOADING=1");
        let usec: i128 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .expect("MONOTONIC_USEC line")
            .parse()
            .expect("a number");
        assert!(
            usec >= before && usec < before + 60_000_000,
            "{usec} vs {before}"
        );
        assert!(msg.ends_with('\n'));
    }

    /// A status with line breaks (e.g. from a hostile file name) stays one STATUS field.
    #[test]
    fn status_cannot_inject_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sock, path) = listener(dir.path());
        let n = Notifier::with_socket(&path).expect("notifier");
        n.status("publishing a\nREADY=1\r.mp4");
        assert_eq!(recv(&sock), "STATUS=publishing a READY=1 .mp4\n");
    }

    /// `@name` addresses a socket in the abstract namespace.
    #[test]
    fn abstract_socket() {
        let name = format!(
            "tokdrop-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
        let sock = UnixDatagram::bind_addr(&addr).expect("bind abstract");
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let n = Notifier::with_address(OsStr::new(&format!("@{name}"))).expect("notifier");
        n.ready();
        assert_eq!(recv(&sock), "READY=1\n");
    }

    /// A disabled notifier sends nothing, succeeds, and asks for no watchdog wake-ups.
    #[test]
    fn disabled_is_a_no_op() {
        let n = Notifier::disabled().with_watchdog(Some(Duration::from_secs(60)));
        assert!(!n.is_enabled());
        assert!(n.send(&[NotifyState::Ready]).is_ok());
        n.ready();
        n.reloading();
        assert_eq!(n.watchdog_interval(), None);
    }

    /// Sending to a socket nobody listens on is an error naming the socket and message.
    #[test]
    fn send_error_names_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("gone.sock");
        let n = Notifier::with_socket(&path).expect("notifier");
        let err = n.send(&[NotifyState::Ready]).expect_err("no listener");
        let text = err.to_string();
        assert!(
            text.contains("gone.sock") && text.contains("READY=1"),
            "{text}"
        );
        n.ready(); // logged, not fatal
    }

    /// Relative paths and empty names are rejected, as sd_notify(3) does.
    #[test]
    fn bad_addresses() {
        for bad in ["relative.sock", "", "x@y"] {
            assert!(
                matches!(
                    Notifier::with_address(OsStr::new(bad)),
                    Err(NotifyError::BadAddress { .. })
                ),
                "{bad:?}"
            );
        }
    }

    /// WATCHDOG_USEC/WATCHDOG_PID follow sd_watchdog_enabled(3); the interval is half the timeout.
    #[test]
    fn watchdog_table() {
        let cases: &[(Option<&str>, Option<&str>, Option<Duration>)] = &[
            (None, None, None),
            (Some("60000000"), None, Some(Duration::from_secs(60))),
            (Some("60000000"), Some("42"), Some(Duration::from_secs(60))),
            (Some("60000000"), Some("43"), None),
            (Some("60000000"), Some("x"), None),
            (Some("0"), None, None),
            (Some("soon"), None, None),
            (None, Some("42"), None),
        ];
        for &(usec, pid, want) in cases {
            assert_eq!(parse_watchdog(usec, pid, 42), want, "{usec:?} {pid:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let n = Notifier::with_socket(dir.path().join("s"))
            .expect("notifier")
            .with_watchdog(Some(Duration::from_secs(60)));
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(30)));
    }

    /// A child process started with NOTIFY_SOCKET and WATCHDOG_USEC (as systemd starts the
    /// service) finds them through `from_env` and sends the whole lifecycle.
    #[test]
    fn child_process_reads_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (sock, path) = listener(dir.path());
        let exe = std::env::current_exe().expect("test binary");
        let out = Command::new(exe)
            .args([
                "--exact",
                "service::systemd::tests::child_sends_lifecycle",
                "--ignored",
                "--nocapture",
            ])
            .env(CHILD_FLAG, "1")
            .env(NOTIFY_SOCKET, &path)
            .env(WATCHDOG_USEC, "4000000")
            .env_remove(WATCHDOG_PID)
            .output()
            .expect("run child");
        assert!(out.status.success(), "{out:?}");
        assert_eq!(recv(&sock), "STATUS=watchdog every 2s\n");
        assert_eq!(recv(&sock), "READY=1\n");
        assert_eq!(recv(&sock), "WATCHDOG=1\n");
        assert!(recv(&sock).starts_with("RELOADING=1\nMONOTONIC_USEC="));
        assert_eq!(recv(&sock), "READY=1\n");
        assert_eq!(recv(&sock), "STOPPING=1\n");
    }

    /// Child half of `child_process_reads_environment` (does nothing when run directly).
    #[test]
    #[ignore = "run by child_process_reads_environment"]
    fn child_sends_lifecycle() {
        if std::env::var_os(CHILD_FLAG).is_none() {
            return;
        }
        let n = Notifier::from_env().expect("notifier");
        assert!(n.is_enabled());
        let every = n.watchdog_interval().expect("watchdog");
        n.status(&format!("watchdog every {}s", every.as_secs()));
        n.ready();
        n.watchdog();
        n.reloading();
        n.ready();
        n.stopping();
    }
}
