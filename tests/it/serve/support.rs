//! Shared helpers for the media-server integration tests: a running server
//! in a temp dir, random files, raw HTTP/1.1 requests, TLS clients.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokdrop::serve::{
    ItemId, Listen, PublishedFile, Registry, ServeConfig, ServeError, ServedFile, Server, TlsHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound for any single awaited step in a test.
pub const STEP: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test if it takes longer than [`STEP`].
pub async fn bounded<T>(fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("test step timed out")
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A server running on 127.0.0.1 with its own temp dir and registry.
pub struct TestServer {
    pub addr: SocketAddr,
    pub registry: Registry,
    pub cancel: CancellationToken,
    pub task: JoinHandle<Result<(), ServeError>>,
    pub tls: Option<TlsHandle>,
    pub dir: tempfile::TempDir,
}

pub fn config() -> ServeConfig {
    ServeConfig::new(Listen::Addr(SocketAddr::from(([127, 0, 0, 1], 0))))
}

/// Starts a server; `tweak` adjusts the config (it gets the temp dir).
pub async fn start(tweak: impl FnOnce(&mut ServeConfig, &Path)) -> TestServer {
    start_with_registry(Registry::new(Duration::from_secs(3600)), tweak).await
}

pub async fn start_with_registry(
    registry: Registry,
    tweak: impl FnOnce(&mut ServeConfig, &Path),
) -> TestServer {
    init_tracing();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config();
    tweak(&mut cfg, dir.path());
    let server = Server::bind(cfg).await.expect("bind");
    let addr = server.local_addr();
    let tls = server.tls_handle();
    let cancel = CancellationToken::new();
    let task = tokio::spawn(server.run(registry.clone(), cancel.clone()));
    TestServer {
        addr,
        registry,
        cancel,
        task,
        tls,
        dir,
    }
}

impl TestServer {
    pub fn http(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn https(&self, path: &str) -> String {
        format!(
            "https://localhost:{}/{}",
            self.addr.port(),
            path.trim_start_matches('/')
        )
    }

    /// Writes `size` random bytes to `<dir>/<file>` and publishes it as `name`.
    pub fn publish(&self, item: &str, name: &str, size: usize) -> (PublishedFile, Vec<u8>) {
        let (path, data) = random_file(self.dir.path(), &format!("src-{item}"), size);
        let file = ServedFile::snapshot(name, &path).expect("snapshot");
        let mut out = self
            .registry
            .register(ItemId::from(item), vec![file])
            .expect("register");
        (out.remove(0), data)
    }

    /// Cancels the server and awaits its task.
    pub async fn stop(self) {
        self.cancel.cancel();
        bounded(self.task)
            .await
            .expect("server task")
            .expect("server result");
    }
}

/// `size` pseudo-random bytes (xorshift; reproducible, incompressible).
pub fn random_file(dir: &Path, file: &str, size: usize) -> (PathBuf, Vec<u8>) {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ size as u64;
    let data: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let path = dir.join(file);
    std::fs::write(&path, &data).expect("write test file");
    (path, data)
}

/// Sends a raw HTTP/1.1 request target and returns the whole response
/// head (status line and headers) as text.
pub async fn raw_request(addr: SocketAddr, method: &str, target: &[u8]) -> String {
    let mut stream = bounded(TcpStream::connect(addr)).await.expect("connect");
    let mut req = Vec::new();
    req.extend_from_slice(method.as_bytes());
    req.push(b' ');
    req.extend_from_slice(target);
    req.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(&req).await.expect("write");
    let mut resp = Vec::new();
    let _ = bounded(stream.read_to_end(&mut resp)).await;
    let text = String::from_utf8_lossy(&resp).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

/// The status code of a raw response head (0 if none).
pub fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A reqwest client that trusts only the certificate(s) in `pem`, and
/// resolves `localhost` to `addr`.
pub fn tls_client(pem: &[u8], addr: SocketAddr) -> reqwest::Client {
    crate::harness::http()
        .tls_certs_only(reqwest::Certificate::from_pem_bundle(pem).expect("pem"))
        .resolve("localhost", addr)
        .build()
        .expect("client")
}

/// A self-signed certificate for localhost: (cert PEM, key PEM).
pub fn make_cert() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// Replaces `path` with `data` by rename, as certbot-like tools do.
pub fn replace_file(path: &Path, data: &[u8]) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).expect("write tmp");
    std::fs::rename(&tmp, path).expect("rename");
}
