//! Binding (address or systemd socket), the accept loop with its connection
//! cap, the TLS file watcher, and shutdown: stop accepting, let connections
//! finish for `shutdown_grace`, then drop whatever is left.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::conn::{self, Limits};
use super::router::AppState;
use super::slots::Slots;
use super::tls::{self, TlsHandle};
use super::{Listen, Registry, ServeConfig, ServeError};

/// Pause after an accept error such as "too many open files".
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Least time between two "connection limit reached" warnings.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(10);

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<(TlsAcceptor, TlsHandle)>,
    config: ServeConfig,
}

impl Server {
    /// Binds the socket and loads (or creates) the TLS certificate.
    pub async fn bind(config: ServeConfig) -> Result<Server, ServeError> {
        if config.max_connections == 0 {
            return Err(ServeError::Config(
                "max_connections must be at least 1".into(),
            ));
        }
        // Bind first: a self-signed certificate is written to disk only by the process that
        // got the port (`auth login` probing whether the service runs must not replace it).
        let listener = match config.listen {
            Listen::Addr(addr) => TcpListener::bind(addr)
                .await
                .map_err(|source| ServeError::Bind { addr, source })?,
            Listen::Systemd => systemd_listener()?,
        };
        let tls = config.tls.as_ref().map(tls::setup).transpose()?;
        let local_addr = listener.local_addr()?;
        Ok(Server {
            listener,
            local_addr,
            tls,
            config,
        })
    }

    /// The address actually bound (the real port when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The certificate reload handle, when serving TLS.
    pub fn tls_handle(&self) -> Option<TlsHandle> {
        self.tls.as_ref().map(|(_, h)| h.clone())
    }

    /// Serves until `cancel`, then shuts down within `shutdown_grace`.
    pub async fn run(
        self,
        registry: Registry,
        cancel: CancellationToken,
    ) -> Result<(), ServeError> {
        let Server {
            listener,
            local_addr,
            tls,
            config,
        } = self;
        let state = Arc::new(AppState {
            registry,
            verification_dir: config.verification_dir.clone(),
            oauth_callback: config.oauth_callback.clone(),
        });
        let limits = Limits {
            handshake_timeout: config.handshake_timeout,
            header_timeout: config.header_timeout,
            idle_timeout: config.idle_timeout,
        };
        let (acceptor, handle) = tls.unzip();
        let watcher = handle.map(|h| {
            tokio::spawn(tls::watch_files(
                h,
                config.tls_poll_interval,
                cancel.clone(),
            ))
        });
        let slots = Slots::new(config.max_connections, config.max_per_ip);
        let conn_shutdown = CancellationToken::new();
        let mut conns = JoinSet::new();
        let mut last_cap_warning: Option<Instant> = None;
        tracing::info!(addr = %local_addr, tls = acceptor.is_some(), "serving media");

        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                Some(done) = conns.join_next(), if !conns.is_empty() => {
                    if let Err(e) = done && e.is_panic() {
                        tracing::error!(error = %e, "connection task panicked");
                    }
                }
                accepted = listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let Ok(slot) = slots.admit(peer.ip()) else {
                        drop(tcp); // every slot serves media: close at once
                        if last_cap_warning.is_none_or(|t| t.elapsed() >= CAP_WARNING_EVERY) {
                            last_cap_warning = Some(Instant::now());
                            tracing::warn!(max = config.max_connections, per_address = config.max_per_ip, "connection limit reached by media downloads; closing new connections");
                        }
                        continue;
                    };
                    conns.spawn(conn::serve(tcp, peer, acceptor.clone(), state.clone(), limits, conn_shutdown.clone(), slot));
                }
            }
        }

        drop(listener);
        conn_shutdown.cancel();
        let open = conns.len();
        let drained = tokio::time::timeout(config.shutdown_grace, async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = conns.len(),
                of = open,
                "shutdown grace period over; dropping remaining connections"
            );
            conns.shutdown().await;
        }
        if let Some(w) = watcher {
            let _ = w.await;
        }
        tracing::info!("media server stopped");
        Ok(())
    }
}

/// The TCP socket passed by systemd as fd 3 (checks `LISTEN_PID`).
fn systemd_listener() -> Result<TcpListener, ServeError> {
    let mut fds = listenfd::ListenFd::from_env();
    let std_listener = fds
        .take_tcp_listener(0)
        .map_err(|e| ServeError::Systemd(format!("fd 3 is not a TCP listening socket: {e}")))?
        .ok_or_else(|| {
            ServeError::Systemd(
                "no socket was passed (LISTEN_FDS/LISTEN_PID are not set for this process); \
                 is tokdrop started by a .socket unit?"
                    .into(),
            )
        })?;
    std_listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(std_listener)?)
}
