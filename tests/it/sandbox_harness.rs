//! Shared set-up of the emulator tests: an emulator with fast knobs, a client and token
//! manager pointing at it, a logged-in account, and a tiny HTTPS media server with an rcgen
//! self-signed certificate (the emulator trusts its PEM) that counts its hits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokdrop::tiktok::{Client, ClientConfig, Secret, TokenManager, TokenStore};
use tokdrop_sandbox::{Calls, Sandbox, SandboxConfig, SandboxHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Upper bound for waiting on an emulator event.
pub const WAIT: Duration = Duration::from_secs(10);

/// Emulator knobs for tests: no processing or moderation delay, and an app that passed
/// TikTok's audit posting for a public account, so public posts and their ids can be tested
/// (the emulator's default is a new, unaudited app: see `unaudited_app_posts_self_only`).
pub fn fast_config() -> SandboxConfig {
    let mut config = SandboxConfig {
        processing_delay_ms: 0,
        moderation_delay_ms: 0,
        audited: true,
        // These tests move patterned bytes, not media.
        check_media: false,
        ..SandboxConfig::default()
    };
    config.accounts[0].private_account = false;
    config
}

/// A client for the emulator with short retry waits and budget windows of `window`.
pub fn client_for(sandbox: &SandboxHandle, window: Duration) -> Client {
    let c = sandbox.config();
    let mut config = ClientConfig::new(
        sandbox.base_url(),
        c.client_key,
        Secret::new(c.client_secret),
    );
    config.request_timeout = Duration::from_secs(2);
    config.retry.base_delay = Duration::from_millis(5);
    config.retry.max_delay = Duration::from_millis(50);
    config.retry.rate_limited_wait = Duration::from_millis(20);
    config.budget.window = window;
    config.budget.margin = Duration::from_millis(20);
    Client::new(config).expect("client")
}

/// An emulator, a token folder and a manager; `account` "default" logged in when `login`.
pub struct Env {
    pub sandbox: SandboxHandle,
    pub tokens: TokenManager,
    pub _dir: tempfile::TempDir,
}

impl Env {
    pub async fn start(config: SandboxConfig) -> Self {
        let sandbox = Sandbox::start(config).await.expect("sandbox");
        let dir = tempfile::tempdir().expect("tempdir");
        let tokens = TokenManager::new(
            client_for(&sandbox, Duration::from_secs(60)),
            TokenStore::new(dir.path().join("tokens")),
        );
        Self {
            sandbox,
            tokens,
            _dir: dir,
        }
    }

    /// Started, with the default account logged in through `issue_token`.
    pub async fn logged_in(config: SandboxConfig) -> Self {
        let env = Self::start(config).await;
        let grant = serde_json::from_value::<tokdrop::tiktok::wire::TokenResponse>(
            env.sandbox.issue_token(None).expect("grant"),
        )
        .expect("the emulator\'s token answer parses");
        env.tokens
            .store_grant("default", &grant)
            .await
            .expect("store");
        env
    }

    pub fn client(&self) -> &Client {
        self.tokens.client()
    }

    pub async fn token(&self) -> Secret {
        self.tokens.access_token("default").await.expect("token")
    }

    /// Waits until `check` holds on the emulator's records.
    pub async fn until<T>(&self, check: impl FnMut(&Calls) -> Option<T>) -> T {
        self.sandbox.wait_until(WAIT, check).await.expect("event")
    }
}

/// A tiny HTTPS file server: `/m/<name>` serves registered files, `/moved/<name>` redirects
/// to `/m/<name>`, anything else is 404.
pub struct MediaServer {
    /// `https://localhost:PORT`.
    pub base: String,
    /// The self-signed certificate, for the emulator's `extra_ca_pem`.
    pub ca_pem: String,
    pub hits: Arc<AtomicUsize>,
    /// `/slow/<name>` sends the first half of the file, then waits for this.
    pub release: Arc<Notify>,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
}

#[derive(Clone)]
struct Media {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<AtomicUsize>,
    release: Arc<Notify>,
}

impl MediaServer {
    pub async fn start() -> Self {
        let key = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )
            .expect("tls config");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        let media = Media {
            files: Arc::default(),
            hits: Arc::default(),
            release: Arc::default(),
        };
        let app = Router::new()
            .route("/m/{name}", get(serve_file))
            .route("/moved/{name}", get(moved))
            .route("/slow/{name}", get(slow))
            .with_state(media.clone());
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("https://localhost:{port}"),
            ca_pem: key.cert.pem(),
            hits: media.hits,
            release: media.release,
            files: media.files,
        }
    }

    /// Serves `data` at `/m/<name>`; returns its URL.
    pub fn add(&self, name: &str, data: Vec<u8>) -> String {
        self.files.lock().expect("lock").insert(name.into(), data);
        format!("{}/m/{name}", self.base)
    }

    /// The emulator knobs that let it pull from here: trust the certificate, verify `/m/`.
    pub fn trust(&self, config: &mut SandboxConfig) {
        config.extra_ca_pem = Some(self.ca_pem.clone());
        config.verified_url_prefixes = vec![
            format!("{}/m/", self.base),
            format!("{}/moved/", self.base),
            format!("{}/slow/", self.base),
        ];
    }
}

async fn serve_file(State(media): State<Media>, Path(name): Path<String>) -> Response {
    media.hits.fetch_add(1, Ordering::SeqCst);
    match media.files.lock().expect("lock").get(&name) {
        Some(data) => ([(header::CONTENT_TYPE, "video/mp4")], data.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn moved(State(media): State<Media>, Path(name): Path<String>) -> Response {
    media.hits.fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::FOUND,
        [(header::LOCATION, format!("/m/{name}"))],
    )
        .into_response()
}

async fn slow(State(media): State<Media>, Path(name): Path<String>) -> Response {
    media.hits.fetch_add(1, Ordering::SeqCst);
    let Some(data) = media.files.lock().expect("lock").get(&name).cloned() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let half = data.len() / 2;
    let (first, rest) = (data[..half].to_vec(), data[half..].to_vec());
    let release = media.release.clone();
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(first)]).chain(
        futures_util::stream::once(async move {
            release.notified().await;
            Ok(rest)
        }),
    );
    (
        [(header::CONTENT_LENGTH, data.len().to_string())],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// `n` bytes of a recognisable pattern.
pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// Hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}
