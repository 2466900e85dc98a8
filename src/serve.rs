//! The internet-facing HTTPS file server that TikTok pulls media from
//! (`PULL_FROM_URL`): configuration, errors and the public surface of the
//! `serve` module.
//!
//! Routes (everything else is a plain 404, never a redirect or listing):
//! - `GET|HEAD /media/<token>/<name>`: a file registered in the [`Registry`];
//! - `GET|HEAD /healthz`: `200 ok`;
//! - `GET|HEAD /<file>`: a regular file directly inside `verification_dir`.
//!
//! Use: [`Server::bind`] (gives the bound address), then [`Server::run`]
//! until the [`CancellationToken`](tokio_util::sync::CancellationToken) fires.

mod body;
mod conn;
mod files;
pub mod handoff;
mod identity;
mod range;
mod registry;
mod router;
mod server;
mod slots;
mod stats;
mod tls;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use registry::{
    FileStats, ItemId, ItemStats, PublishedFile, RegisterError, Registry, ServedFile, url_path,
};
pub use server::Server;
pub use tls::TlsHandle;

/// Where the server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// Bind this address (port 0 picks a free port; see [`Server::local_addr`]).
    Addr(SocketAddr),
    /// Take the TCP socket systemd passed as fd 3 (`LISTEN_FDS`/`LISTEN_PID`).
    Systemd,
}

/// Where the TLS certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM certificate chain and private key; reloaded when either file
    /// changes and on [`TlsHandle::reload`].
    Files { cert: PathBuf, key: PathBuf },
    /// A fresh self-signed certificate for these names (DNS names or IP
    /// addresses); its PEM is written atomically to `write_pem_to` so
    /// clients can trust it.
    SelfSigned {
        hostnames: Vec<String>,
        write_pem_to: PathBuf,
    },
}

/// Server settings. Build with [`ServeConfig::new`] and adjust fields.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: Listen,
    /// `None` = plain HTTP (the caller guarantees a loopback address).
    pub tls: Option<TlsSource>,
    /// Root-level verification files are served from here (no subpaths).
    pub verification_dir: Option<PathBuf>,
    /// The Web-platform login's redirect path (`/oauth/callback/`) and the `state_dir` whose
    /// `login/` folder hands it to the waiting `auth login` ([`crate::serve::handoff`]).
    pub oauth_callback: Option<(String, PathBuf)>,
    /// Most connections at once; when full, a new connection takes the slot of the oldest
    /// one that has not asked for media with a valid token (see `slots`), or is closed.
    pub max_connections: usize,
    /// Most connections from one address, by the same rule.
    pub max_per_ip: usize,
    /// Time allowed for the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time allowed for the TLS handshake and for each request's headers.
    /// HTTP/1 keep-alive idle time is capped by this too, because hyper
    /// starts the header timer as soon as it waits for the next request.
    pub header_timeout: Duration,
    /// A connection with no bytes read or written for this long is closed.
    pub idle_timeout: Duration,
    /// After cancellation, running responses may finish for this long;
    /// then every connection is dropped.
    pub shutdown_grace: Duration,
    /// How often the certificate files are checked for changes.
    pub tls_poll_interval: Duration,
}

impl ServeConfig {
    /// Defaults: no TLS, no verification dir, 512 connections (64 per address), 5 s
    /// handshake timeout, 10 s header timeout, 60 s idle timeout, 10 s shutdown grace, 3 s TLS poll.
    pub fn new(listen: Listen) -> Self {
        ServeConfig {
            listen,
            tls: None,
            verification_dir: None,
            oauth_callback: None,
            max_connections: 512,
            max_per_ip: 64,
            handshake_timeout: Duration::from_secs(5),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            tls_poll_interval: Duration::from_secs(3),
        }
    }
}

/// Why the server could not start (or a TLS reload failed).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}{}", bind_hint(.source))]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("systemd socket activation: {0}")]
    Systemd(String),
    #[error("TLS file {}: {reason}", path.display())]
    TlsFile { path: PathBuf, reason: String },
    #[error("cannot create the self-signed certificate: {0}")]
    SelfSigned(String),
    #[error("cannot write the certificate to {}: {source}", path.display())]
    WritePem { path: PathBuf, source: io::Error },
    #[error("TLS configuration: {0}")]
    TlsConfig(#[from] rustls::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("listener: {0}")]
    Io(#[from] io::Error),
}

fn bind_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::AddrInUse => {
            " (address already in use: another process, maybe another tokdrop or a \
             web server, already listens on this port; stop it or pick another port)"
        }
        io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; use systemd socket \
             activation or a higher port)"
        }
        io::ErrorKind::AddrNotAvailable => " (this machine has no such address)",
        _ => "",
    }
}
