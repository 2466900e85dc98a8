//! The response body type: small static bodies and a chunked file stream
//! (pread on the blocking pool, one chunk read ahead), byte accounting into
//! the registry as chunks are handed to hyper, and the access log line,
//! written when the body is finished or dropped.

use std::fs::File;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Response, StatusCode, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

/// Bytes read from disk per chunk.
const CHUNK: u64 = 256 * 1024;

/// Where a body reports what it delivered (the registry's entry of the item).
pub(crate) trait DeliveryStats: Send + Sync {
    /// `n` more body bytes of file `index` were handed to the connection.
    fn note_bytes(&self, index: usize, n: u64);
    /// A body of file `index` ended having delivered `[start, start+len)`.
    fn note_delivered(&self, index: usize, start: u64, len: u64, complete: bool);
}

/// Which registered file a body belongs to, for statistics.
pub(crate) struct Delivery {
    pub(crate) item: Arc<dyn DeliveryStats>,
    pub(crate) index: usize,
}

/// An empty response with `status`.
pub(crate) fn plain(status: StatusCode) -> Response<ServeBody> {
    let mut resp = Response::new(ServeBody::empty());
    *resp.status_mut() = status;
    resp
}

/// The access log line of one request, emitted when its body is dropped.
pub(crate) struct AccessLog {
    pub(crate) method: Method,
    /// Request path with any token shortened.
    pub(crate) path: String,
    pub(crate) range: Option<String>,
    pub(crate) peer: SocketAddr,
    pub(crate) version: Version,
    pub(crate) status: u16,
    pub(crate) started: Instant,
}

/// Every response body this server sends.
pub(crate) struct ServeBody {
    kind: Kind,
    sent: u64,
    log: Option<AccessLog>,
}

enum Kind {
    Static(Option<Bytes>),
    File(FileStream),
}

struct FileStream {
    file: Arc<File>,
    start: u64,
    /// Next offset to hand out.
    next: u64,
    end: u64,
    /// The read of the chunk at `next`, if started.
    reading: Option<JoinHandle<io::Result<Bytes>>>,
    delivery: Option<Delivery>,
}

impl ServeBody {
    pub(crate) fn empty() -> Self {
        Self::with(Kind::Static(None))
    }

    pub(crate) fn text(s: &'static str) -> Self {
        Self::with(Kind::Static(Some(Bytes::from_static(s.as_bytes()))))
    }

    /// Streams `len` bytes of `file` from `start`.
    pub(crate) fn file(file: File, start: u64, len: u64, delivery: Option<Delivery>) -> Self {
        if delivery.is_some() {
            crate::support::metrics::metrics().pull_active(true);
        }
        Self::with(Kind::File(FileStream {
            file: Arc::new(file),
            start,
            next: start,
            end: start.saturating_add(len),
            reading: None,
            delivery,
        }))
    }

    fn with(kind: Kind) -> Self {
        ServeBody {
            kind,
            sent: 0,
            log: None,
        }
    }

    /// Empties a static body (for a HEAD answer); its length, when it had one.
    pub(crate) fn drop_static(&mut self) -> Option<u64> {
        match &mut self.kind {
            Kind::Static(bytes) => bytes.take().map(|b| b.len() as u64),
            Kind::File(_) => None,
        }
    }

    pub(crate) fn set_log(&mut self, log: AccessLog) {
        self.log = Some(log);
    }
}

impl Drop for ServeBody {
    fn drop(&mut self) {
        let Some(log) = self.log.take() else { return };
        tracing::info!(
            target: "tokdrop::access",
            method = %log.method,
            path = ?log.path,
            range = ?log.range,
            status = log.status,
            bytes = self.sent,
            ms = log.started.elapsed().as_millis() as u64,
            peer = %log.peer,
            version = ?log.version,
            "request"
        );
    }
}

impl FileStream {
    fn start_read(&mut self) {
        let len = (self.end - self.next).min(CHUNK);
        let (file, offset) = (self.file.clone(), self.next);
        self.reading = Some(tokio::task::spawn_blocking(move || {
            read_exact_at(&file, offset, len as usize)
        }));
    }
}

impl Drop for FileStream {
    fn drop(&mut self) {
        if let Some(d) = &self.delivery {
            crate::support::metrics::metrics().pull_active(false);
            let sent = self.next - self.start;
            d.item
                .note_delivered(d.index, self.start, sent, self.next == self.end);
        }
    }
}

/// Reads up to `len` bytes at `offset`; short only at end of file.
fn read_exact_at(file: &File, offset: u64, len: usize) -> io::Result<Bytes> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(Bytes::from(buf))
}

impl Body for ServeBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        let stream = match &mut this.kind {
            Kind::Static(data) => {
                let data = data.take();
                if let Some(d) = &data {
                    this.sent += d.len() as u64;
                }
                return Poll::Ready(data.map(|d| Ok(Frame::data(d))));
            }
            Kind::File(stream) => stream,
        };
        if stream.next >= stream.end {
            return Poll::Ready(None);
        }
        if stream.reading.is_none() {
            stream.start_read();
        }
        let Some(reading) = stream.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let result = ready!(Pin::new(reading).poll(cx));
        stream.reading = None;
        let chunk = result.map_err(io::Error::other)??;
        let expected = (stream.end - stream.next).min(CHUNK);
        if chunk.len() as u64 != expected {
            return Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being served",
            ))));
        }
        stream.next += expected;
        this.sent += expected;
        if let Some(d) = &stream.delivery {
            d.item.note_bytes(d.index, expected);
            crate::support::metrics::metrics().served(expected);
        }
        if stream.next < stream.end {
            stream.start_read(); // read ahead while this chunk is written
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Static(data) => data.is_none(),
            Kind::File(s) => s.next >= s.end,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Static(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::File(s) => SizeHint::with_exact(s.end - s.next),
        }
    }
}
