//! One client connection: TLS handshake under a deadline, HTTP/1.1 or
//! HTTP/2 (by ALPN) through hyper, an idle watchdog fed by every byte read
//! or written, and graceful shutdown when the server stops.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::router::{self, AppState};
use super::slots::Slot;

/// Most concurrent HTTP/2 streams per connection (each may buffer up to
/// 1 MiB of send data plus two 256 KiB chunks; only valid tokens get there).
const H2_MAX_STREAMS: u32 = 16;

/// Per-connection limits, copied from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) handshake_timeout: Duration,
    pub(crate) header_timeout: Duration,
    pub(crate) idle_timeout: Duration,
}

/// Serves one accepted TCP connection until it ends, idles out, loses its
/// `slot` to another connection, or `shutdown` asks it to finish.
pub(crate) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    state: Arc<AppState>,
    limits: Limits,
    shutdown: CancellationToken,
    slot: Slot,
) {
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        let builder = auto::Builder::new(TokioExecutor::new());
        return drive(builder, tcp, peer, state, limits, shutdown, slot).await;
    };
    let handshake = tokio::select! {
        r = tokio::time::timeout(limits.handshake_timeout, tls.accept(tcp)) => r,
        () = shutdown.cancelled() => return,
        () = slot.evict.cancelled() => return,
    };
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
    };
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let builder = auto::Builder::new(TokioExecutor::new());
    let builder = if h2 {
        builder.http2_only()
    } else {
        builder.http1_only()
    };
    drive(builder, stream, peer, state, limits, shutdown, slot).await;
}

async fn drive<S>(
    mut builder: auto::Builder<TokioExecutor>,
    stream: S,
    peer: SocketAddr,
    state: Arc<AppState>,
    limits: Limits,
    shutdown: CancellationToken,
    slot: Slot,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_STREAMS)
        .max_header_list_size(32 * 1024)
        .max_send_buf_size(1024 * 1024);
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let valued = slot.valued.clone();
    let service = service_fn(move |req| {
        let state = state.clone();
        let valued = valued.clone();
        async move { Ok::<_, Infallible>(router::handle(&state, req, peer, &valued).await) }
    });
    let mut conn = pin!(builder.serve_connection(io, service));
    let mut draining = false;
    loop {
        let idle_deadline = activity.last() + limits.idle_timeout;
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = slot.evict.cancelled() => {
                tracing::debug!(%peer, "closing a connection whose slot another one took");
                return;
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                if activity.last() + limits.idle_timeout <= Instant::now() {
                    tracing::debug!(%peer, "closing idle connection");
                    return;
                }
            }
        }
    }
}

/// When the connection last moved a byte.
struct Activity {
    origin: Instant,
    millis: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            origin: Instant::now(),
            millis: AtomicU64::new(0),
        }
    }
    fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.millis.store(ms, Ordering::Relaxed);
    }
    fn last(&self) -> Instant {
        self.origin + Duration::from_millis(self.millis.load(Ordering::Relaxed))
    }
}

/// An I/O stream that records activity on every successful read or write.
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
