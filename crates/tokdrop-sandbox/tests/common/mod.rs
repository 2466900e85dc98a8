//! Shared set-up of the emulator-level tests: an emulator with fast knobs, a plain reqwest
//! client that speaks TikTok's wire format the way any TikTok client would (no tokdrop code),
//! and a tiny HTTPS media server (rcgen self-signed certificate for `127.0.0.1`, trusted by the
//! emulator's puller through `extra_ca_pem`) that records every request it gets.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use sha2::Digest;
use tokdrop_sandbox::{Calls, PostRecord, Sandbox, SandboxConfig, SandboxHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// Upper bound for waiting on an emulator event (never reached when things work).
pub const WAIT: Duration = Duration::from_secs(5);

/// TikTok's paths (tiktok-api.md §3–§4), spelled out rather than taken from the emulator.
pub const AUTHORIZE: &str = "/v2/auth/authorize/";
pub const TOKEN: &str = "/v2/oauth/token/";
pub const REVOKE: &str = "/v2/oauth/revoke/";
pub const USER_INFO: &str = "/v2/user/info/";
pub const CREATOR_INFO: &str = "/v2/post/publish/creator_info/query/";
pub const VIDEO_INIT: &str = "/v2/post/publish/video/init/";
pub const INBOX_INIT: &str = "/v2/post/publish/inbox/video/init/";
pub const CONTENT_INIT: &str = "/v2/post/publish/content/init/";
pub const STATUS: &str = "/v2/post/publish/status/fetch/";
pub const CANCEL: &str = "/v2/post/publish/cancel/";
pub const CONTROL: &str = "/_sandbox/control";

/// RFC 7636 appendix B's verifier and its TikTok (hex) challenge, from tiktok-api.md §3.3.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const HEX_CHALLENGE: &str = "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3";

/// Knobs for fast tests: no processing or moderation delay, status/fetch not rate limited
/// (tests poll it on events), and no media checks (the tests send patterned bytes, not
/// videos; `media_checks` tests turn them on). Everything else is TikTok's default.
pub fn fast_config() -> SandboxConfig {
    let mut config = SandboxConfig {
        processing_delay_ms: 0,
        moderation_delay_ms: 0,
        check_media: false,
        ..SandboxConfig::default()
    };
    config.rate_limits.status_fetch = 10_000;
    config
}

/// One HTTP answer, read completely.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {:?}", self.status, self.text))
    }

    /// `error.code` of an envelope, or `error` of a flat OAuth answer, or "" for neither.
    pub fn code(&self) -> String {
        let body = self.json();
        match &body["error"] {
            Value::Object(error) => error
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            Value::String(error) => error.clone(),
            _ => String::new(),
        }
    }

    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// The `Location` of a redirect, parsed.
    pub fn location(&self) -> url::Url {
        let location = self
            .header("location")
            .unwrap_or_else(|| panic!("no Location: HTTP {} {:?}", self.status, self.text));
        url::Url::parse(&location).expect("absolute Location")
    }

    /// Asserts the envelope error (or flat OAuth error) `code` on HTTP `status`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code().as_str()),
            (status, code),
            "{}",
            self.text
        );
    }

    #[track_caller]
    pub fn assert_ok(&self) {
        self.assert_error(200, "ok");
    }
}

/// The query of a URL as a map (values decoded).
pub fn query_map(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

/// A TikTok client reduced to reqwest: the requests of tiktok-api.md, nothing more.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        Self {
            http,
            base: base.to_string(),
        }
    }

    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("answer body");
        Answer {
            status,
            headers,
            text,
        }
    }

    /// A Content Posting POST: bearer token, JSON body (§4).
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        Self::read(self.try_post(path, token, body).await.expect("request")).await
    }

    pub async fn try_post(
        &self,
        path: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(header::CONTENT_TYPE, "application/json; charset=UTF-8")
            .body(body.to_string())
            .send()
            .await
    }

    /// creator_info: documented as sending no body (or `{}`).
    pub async fn creator_info(&self, token: &str) -> Answer {
        self.post(CREATOR_INFO, token, &json!({})).await
    }

    pub async fn status(&self, token: &str, publish_id: &str) -> Answer {
        self.post(STATUS, token, &json!({ "publish_id": publish_id }))
            .await
    }

    pub async fn cancel(&self, token: &str, publish_id: &str) -> Answer {
        self.post(CANCEL, token, &json!({ "publish_id": publish_id }))
            .await
    }

    pub async fn user_info(&self, token: &str, fields: &str) -> Answer {
        let response = self
            .http
            .get(format!("{}{USER_INFO}", self.base))
            .query(&[("fields", fields)])
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }

    /// An init that must succeed; returns its `data` (publish_id, maybe upload_url).
    pub async fn init_ok(&self, path: &str, token: &str, body: &Value) -> Value {
        let answer = self.post(path, token, body).await;
        answer.assert_ok();
        answer.data()
    }

    /// An OAuth form POST (§3.4, §3.6).
    pub async fn form(&self, path: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .form(form)
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }

    /// `GET /v2/auth/authorize/` with these parameters; the answer is not followed.
    pub async fn authorize(&self, params: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .get(format!("{}{AUTHORIZE}", self.base))
            .query(params)
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }

    /// `PUT <upload_url>` of `bytes` as `Content-Range: bytes first-last/total`.
    pub async fn put_chunk(
        &self,
        upload_url: &str,
        first: u64,
        total: u64,
        bytes: &[u8],
    ) -> Answer {
        let last = first + bytes.len() as u64 - 1;
        let response = self
            .http
            .put(upload_url)
            .header(header::CONTENT_TYPE, "video/mp4")
            .header(
                header::CONTENT_RANGE,
                format!("bytes {first}-{last}/{total}"),
            )
            .body(bytes.to_vec())
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }

    /// `POST /_sandbox/control` (the emulator's own endpoint), returning the answer as is.
    pub async fn control(&self, body: &Value) -> Answer {
        let response = self
            .http
            .post(format!("{}{CONTROL}", self.base))
            .json(body)
            .send()
            .await
            .expect("request");
        Self::read(response).await
    }
}

/// An emulator on loopback, a client for it and a media server it trusts and may pull from.
pub struct Env {
    pub sandbox: SandboxHandle,
    pub api: Api,
    pub media: MediaServer,
}

impl Env {
    /// A SELF_ONLY direct video post pulled from `url`; its publish_id.
    pub async fn self_only_pull(&self, token: &str, url: &str) -> String {
        publish_id(
            &self
                .api
                .init_ok(VIDEO_INIT, token, &direct("SELF_ONLY", pull_source(url)))
                .await,
        )
    }

    /// Starts with [`fast_config`] changed by `change` (after the media server knobs are set).
    pub async fn start(change: impl FnOnce(&mut SandboxConfig)) -> Self {
        let media = MediaServer::start().await;
        let mut config = fast_config();
        media.trust(&mut config);
        change(&mut config);
        let sandbox = Sandbox::start(config).await.expect("sandbox");
        let api = Api::new(sandbox.base_url());
        Self {
            sandbox,
            api,
            media,
        }
    }

    /// `POST /_sandbox/control` over HTTP; must be accepted.
    pub async fn control(&self, body: Value) -> Value {
        let answer = self.api.control(&body).await;
        assert_eq!(answer.status, 200, "control refused: {}", answer.text);
        answer.json()
    }

    /// A login of the default account with every approved scope; the flat token answer.
    pub fn grant(&self) -> Value {
        self.sandbox.issue_token(None).expect("grant")
    }

    /// The access token of a fresh login of the default account.
    pub fn token(&self) -> String {
        access(&self.grant())
    }

    /// The access token of `open_id` asking for `scopes`.
    pub fn token_for(&self, open_id: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        access(&self.sandbox.login(Some(open_id), &scopes).expect("login"))
    }

    /// Waits until `check` finds something in the record.
    pub async fn until<T>(&self, check: impl FnMut(&Calls) -> Option<T>) -> T {
        self.sandbox.wait_until(WAIT, check).await.expect("event")
    }

    /// Waits until the post satisfies `check`; returns it.
    pub async fn post_until(
        &self,
        publish_id: &str,
        check: impl Fn(&PostRecord) -> bool,
    ) -> PostRecord {
        self.until(|c| c.post(publish_id).filter(|p| check(p)).cloned())
            .await
    }

    /// Waits until the post reached a terminal status; returns it.
    pub async fn terminal(&self, publish_id: &str) -> PostRecord {
        self.post_until(publish_id, PostRecord::is_terminal).await
    }

    pub fn post(&self, publish_id: &str) -> PostRecord {
        self.sandbox
            .calls()
            .post(publish_id)
            .cloned()
            .expect("the post is recorded")
    }

    pub async fn shutdown(self) {
        self.sandbox.shutdown().await;
    }
}

pub fn access(grant: &Value) -> String {
    grant["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no access_token in {grant}"))
        .to_string()
}

pub fn publish_id(data: &Value) -> String {
    data["publish_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no publish_id in {data}"))
        .to_string()
}

/// `post_info` of a video direct post: everything a careful client sends.
pub fn post_info(privacy: &str) -> Value {
    json!({
        "title": "emulator test #tokdrop",
        "privacy_level": privacy,
        "disable_duet": true,
        "disable_comment": true,
        "disable_stitch": true,
        "brand_content_toggle": false,
        "brand_organic_toggle": false,
        "is_aigc": false,
    })
}

pub fn upload_source(video_size: u64, chunk_size: u64, total_chunk_count: u64) -> Value {
    json!({
        "source": "FILE_UPLOAD",
        "video_size": video_size,
        "chunk_size": chunk_size,
        "total_chunk_count": total_chunk_count,
    })
}

/// A single-chunk plan for a file under 5 MB: `chunk_size == video_size`.
pub fn one_chunk(size: u64) -> Value {
    upload_source(size, size, 1)
}

pub fn pull_source(url: &str) -> Value {
    json!({ "source": "PULL_FROM_URL", "video_url": url })
}

/// A video/init body.
pub fn direct(privacy: &str, source: Value) -> Value {
    json!({ "post_info": post_info(privacy), "source_info": source })
}

/// An inbox/video/init body: only `source_info`.
pub fn inbox(source: Value) -> Value {
    json!({ "source_info": source })
}

/// A content/init photo body; `privacy` for DIRECT_POST.
pub fn photos(post_mode: &str, privacy: Option<&str>, urls: &[String]) -> Value {
    let mut post_info = json!({ "title": "photos", "description": "emulator #test" });
    if let Some(privacy) = privacy {
        post_info["privacy_level"] = privacy.into();
        post_info["disable_comment"] = true.into();
        post_info["auto_add_music"] = false.into();
        post_info["brand_content_toggle"] = false.into();
        post_info["brand_organic_toggle"] = false.into();
    }
    json!({
        "media_type": "PHOTO",
        "post_mode": post_mode,
        "post_info": post_info,
        "source_info": {
            "source": "PULL_FROM_URL",
            "photo_images": urls,
            "photo_cover_index": 0,
        },
    })
}

/// `n` bytes of a recognisable pattern, different per `seed`.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| ((i % 251) as u8).wrapping_add(seed))
        .collect()
}

/// Hex SHA-256.
pub fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// A tiny HTTPS file server on `127.0.0.1`:
/// - `/m/<name>`: the file, with `Content-Length`;
/// - `/chunked/<name>`: the file in 4 KiB pieces, without `Content-Length`;
/// - `/part/<percent>/<name>`: `Content-Length` of the whole file, `percent` % of it, then
///   the rest only after [`MediaServer::release`] of that name.
pub struct MediaServer {
    /// `https://127.0.0.1:PORT/`: the prefix to verify.
    pub prefix: String,
    pub ca_pem: String,
    state: MediaState,
}

#[derive(Clone, Default)]
struct MediaState {
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    hits: Arc<Mutex<Vec<(String, Instant)>>>,
    /// Per file name: fires when `/part/…/<name>` may send the rest.
    release: Arc<Mutex<HashMap<String, CancellationToken>>>,
}

impl MediaState {
    fn release_of(&self, name: &str) -> CancellationToken {
        self.release
            .lock()
            .expect("lock")
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    fn hit(&self, path: String) {
        self.hits.lock().expect("lock").push((path, Instant::now()));
    }

    fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.files.lock().expect("lock").get(name).cloned()
    }
}

impl MediaServer {
    pub async fn start() -> Self {
        let key =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![key.cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
            )
            .expect("tls config");
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        let state = MediaState::default();
        let app = Router::new()
            .route("/m/{name}", get(whole))
            .route("/chunked/{name}", get(chunked))
            .route("/part/{percent}/{name}", get(part))
            .with_state(state.clone());
        let listener = TlsListener {
            tcp,
            acceptor: TlsAcceptor::from(Arc::new(tls)),
        };
        // Runs until the test's runtime ends.
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            prefix: format!("https://127.0.0.1:{port}/"),
            ca_pem: key.cert.pem(),
            state,
        }
    }

    /// The emulator knobs that let it pull from here.
    pub fn trust(&self, config: &mut SandboxConfig) {
        config.extra_ca_pem = Some(self.ca_pem.clone());
        config.allow_ip_hosts = true;
        config.verified_url_prefixes = vec![self.prefix.clone()];
    }

    /// Serves `data` as `name`; returns the `/m/` URL.
    pub fn add(&self, name: &str, data: Vec<u8>) -> String {
        self.state
            .files
            .lock()
            .expect("lock")
            .insert(name.to_string(), data);
        self.url(&format!("m/{name}"))
    }

    /// `https://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.prefix)
    }

    /// The paths requested so far, with their arrival times.
    pub fn hits(&self) -> Vec<(String, Instant)> {
        self.state.hits.lock().expect("lock").clone()
    }

    /// Lets the `/part/…/<name>` answers finish.
    pub fn release(&self, name: &str) {
        self.state.release_of(name).cancel();
    }
}

async fn whole(State(media): State<MediaState>, Path(name): Path<String>) -> Response {
    media.hit(format!("/m/{name}"));
    match media.file(&name) {
        Some(data) => ([(header::CONTENT_TYPE, "video/mp4")], data).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn chunked(State(media): State<MediaState>, Path(name): Path<String>) -> Response {
    media.hit(format!("/chunked/{name}"));
    let Some(data) = media.file(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    (
        [(header::CONTENT_TYPE, "video/mp4")],
        axum::body::Body::from_stream(futures_util::stream::iter(pieces)),
    )
        .into_response()
}

async fn part(
    State(media): State<MediaState>,
    Path((percent, name)): Path<(usize, String)>,
) -> Response {
    media.hit(format!("/part/{percent}/{name}"));
    let Some(data) = media.file(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let split = data.len() * percent.min(100) / 100;
    let (first, rest) = (data[..split].to_vec(), data[split..].to_vec());
    let release = media.release_of(&name);
    let head =
        futures_util::stream::iter((!first.is_empty()).then_some(Ok::<_, std::io::Error>(first)));
    let tail = futures_util::stream::once(async move {
        release.cancelled().await;
        Ok(rest)
    });
    (
        [
            (header::CONTENT_TYPE, "video/mp4".to_string()),
            (header::CONTENT_LENGTH, data.len().to_string()),
        ],
        axum::body::Body::from_stream(futures_util::StreamExt::chain(head, tail)),
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
