//! The one-shot loopback listener of the desktop login (tiktok-api.md §3.2): listens on the
//! redirect URI's host and port (port 0 picks a free one), waits for the browser's GET of the
//! redirect path, checks `state`, answers the browser with a short plain-text page and stops.
//! Other paths (a browser's `/favicon.ico`) get 404 and do not end the wait.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Callback, LoginError, callback_from_query};

/// A bound listener for one login redirect.
#[derive(Debug)]
pub struct LoopbackListener {
    listener: TcpListener,
    /// The redirect URI with the bound port filled in.
    redirect_uri: String,
    path: String,
}

struct Waiting {
    path: String,
    state: String,
    /// The first result wins; later requests are answered but ignored.
    result: Mutex<Option<mpsc::Sender<Result<Callback, LoginError>>>>,
}

impl LoopbackListener {
    /// Binds the host and port of `redirect_uri`, which must be `http` on `127.0.0.1`,
    /// `localhost` or `[::1]` with an explicit port (0: any free port).
    pub async fn bind(redirect_uri: &str) -> Result<Self, LoginError> {
        let bad = |reason| LoginError::RedirectUri {
            uri: redirect_uri.to_string(),
            reason,
        };
        let mut url = url::Url::parse(redirect_uri).map_err(|_| bad("is not a valid URL"))?;
        if url.scheme() != "http" {
            return Err(bad(
                "is not http://; the loopback listener cannot serve TLS, use --no-listen",
            ));
        }
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) if ip.is_loopback() => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) if ip.is_loopback() => IpAddr::V6(ip),
            Some(url::Host::Domain("localhost")) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            _ => {
                return Err(bad(
                    "is not on 127.0.0.1, localhost or [::1]; use --no-listen for other redirect URIs",
                ));
            }
        };
        let port = url
            .port()
            .ok_or_else(|| bad("has no port; TikTok's desktop redirect URIs need one"))?;
        let addr = SocketAddr::new(ip, port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| LoginError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| LoginError::Bind { addr, source })?;
        // TikTok compares the redirect URI with the registered one as a string: send it as
        // configured, with only port 0 replaced by the port bound (a Desktop `*` registration).
        let exact = if port == 0 {
            let at = redirect_uri
                .match_indices(":0")
                .map(|(i, _)| i)
                .find(|&i| matches!(redirect_uri.as_bytes().get(i + 2), None | Some(b'/')))
                .ok_or_else(|| bad("cannot take a port"))?;
            format!(
                "{}:{}{}",
                &redirect_uri[..at],
                bound.port(),
                &redirect_uri[at + 2..]
            )
        } else {
            redirect_uri.to_string()
        };
        url.set_port(Some(bound.port()))
            .map_err(|()| bad("cannot take a port"))?;
        Ok(Self {
            listener,
            redirect_uri: exact,
            path: url.path().to_string(),
        })
    }

    /// The redirect URI to put on the authorize URL (the bound port filled in).
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Waits for the redirect carrying `expected_state`, at most `timeout`.
    pub async fn wait(
        self,
        expected_state: &str,
        timeout: Duration,
    ) -> Result<Callback, LoginError> {
        let (tx, mut rx) = mpsc::channel(1);
        let waiting = Arc::new(Waiting {
            path: self.path,
            state: expected_state.to_string(),
            result: Mutex::new(Some(tx)),
        });
        let app = Router::new().fallback(callback).with_state(waiting);
        let stop = CancellationToken::new();
        let server = tokio::spawn(
            axum::serve(self.listener, app)
                .with_graceful_shutdown(stop.clone().cancelled_owned())
                .into_future(),
        );
        let result = tokio::time::timeout(timeout, rx.recv()).await;
        stop.cancel();
        // Let the browser get its page; do not hang on a connection that stays open.
        let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
        match result {
            Ok(Some(result)) => result,
            Ok(None) | Err(_) => Err(LoginError::Timeout(timeout)),
        }
    }
}

async fn callback(State(waiting): State<Arc<Waiting>>, uri: Uri) -> impl IntoResponse {
    if uri.path() != waiting.path {
        return (
            StatusCode::NOT_FOUND,
            "Not the tokdrop login callback.\n".to_string(),
        );
    }
    let result = callback_from_query(uri.query().unwrap_or(""), Some(&waiting.state), true);
    let page = match &result {
        Ok(_) => (
            StatusCode::OK,
            "tokdrop: TikTok login received. You can close this tab and return to the terminal.\n"
                .to_string(),
        ),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            format!("tokdrop: the TikTok login did not succeed: {e}\n"),
        ),
    };
    let sender = waiting
        .result
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    if let Some(sender) = sender {
        let _ = sender.try_send(result);
    }
    page
}
