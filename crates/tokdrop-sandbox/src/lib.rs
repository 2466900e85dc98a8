//! The built-in TikTok emulator (`tokdrop sandbox`, `tokdrop run --sandbox`, the tests): an axum
//! router on plain loopback HTTP that behaves like TikTok's Login Kit and Content Posting API
//! as tiktok-api.md §2–§11 describe them, with knobs for the documented quirks and injected
//! faults, and a record of everything it saw. It is a second, independent reading of TikTok's
//! documentation: it shares no code with tokdrop's client and writes every answer itself.
//!
//! # Layout
//! - [`config`]: [`SandboxConfig`] and its knobs, injected [`Fault`]s, the [`Control`] body.
//! - `state`: tokens, codes, posts, rate windows; `reply`: envelopes, faults, the token gate.
//! - `oauth`: authorize (platform redirect rules, approved and deselected scopes, PKCE), token,
//!   revoke, user info; `posting`: creator_info and the inits, checked by `validate`;
//!   `processing`: pulls (late, slow, timed out from the init), status progression,
//!   status/fetch, cancel; `upload`: chunk PUTs.
//! - [`paths`]: TikTok's paths; `pkce`: challenges and random strings; `chunks`: the
//!   FILE_UPLOAD chunk rules, each written from the docs, not taken from the client.
//! - [`records`]: what was seen ([`Calls`]), for `GET /_sandbox/calls` and [`SandboxHandle::calls`].
//!
//! The tests in `tests/` drive it over HTTP as a TikTok client would; `tests/conformance.rs`
//! checks its answers against the fixtures in the repository's `tests/fixtures/tiktok/`.
//!
//! Control endpoints (not TikTok's): `POST /_sandbox/control` takes a [`Control`] and answers
//! the resulting config (secret redacted); `GET /_sandbox/calls` answers [`Calls`].

// Handlers return their early answers (`Reply`) as `Err` by value, once per request; boxing
// them buys nothing (the root crate allows the same lint for the same reason).
#![allow(clippy::result_large_err)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod chunks;
pub mod config;
mod media_check;
mod oauth;
pub mod paths;
mod pkce;
mod posting;
mod processing;
pub mod records;
mod reply;
mod state;
mod upload;

/// What TikTok's processing (as the emulator reads it) answers for these media bytes: the
/// `fail_reason` it fails the post with, or `None` when it takes them.
pub fn processing_verdict(bytes: &[u8], photo: bool) -> Option<&'static str> {
    media_check::verdict(bytes, photo)
}
mod validate;

pub use config::{
    AccountConfig, Control, Fault, Platform, RateLimits, SandboxConfig, SandboxEndpoint,
};
pub use records::{CallRecord, Calls, DownloadRecord, InitRecord, PostRecord, UploadRecord};

use state::Shared;

/// Why the emulator could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("the TikTok sandbox cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the TikTok sandbox stopped: {0}")]
    Serve(std::io::Error),
    #[error("sandbox control rejected: {0}")]
    Control(String),
    #[error("the sandbox has no account with open_id {0:?}")]
    NoAccount(String),
    #[error("waited {0:?} for a sandbox event that did not happen")]
    Timeout(Duration),
}

/// Starts emulators.
pub struct Sandbox;

impl Sandbox {
    /// Starts on `127.0.0.1` with a free port.
    pub async fn start(config: SandboxConfig) -> Result<SandboxHandle, SandboxError> {
        Self::start_on(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), config).await
    }

    /// Starts on `addr`.
    pub async fn start_on(
        addr: SocketAddr,
        config: SandboxConfig,
    ) -> Result<SandboxHandle, SandboxError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })?;
        Self::serve(listener, config)
    }

    /// Serves on a listener the caller bound (socket activation, tests).
    pub fn serve(
        listener: TcpListener,
        config: SandboxConfig,
    ) -> Result<SandboxHandle, SandboxError> {
        config.check().map_err(SandboxError::Control)?;
        let mut addr = listener.local_addr().map_err(SandboxError::Serve)?;
        if addr.ip().is_unspecified() {
            addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let shared = Shared::new(format!("http://{addr}"), config);
        let app = router(shared.clone());
        let stop = shared.shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
        });
        tracing::info!(%addr, "TikTok sandbox listening");
        Ok(SandboxHandle { shared, addr, task })
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(paths::AUTHORIZE, get(oauth::authorize))
        .route(paths::OAUTH_TOKEN, post(oauth::token))
        .route(paths::OAUTH_REVOKE, post(oauth::revoke))
        .route(paths::USER_INFO, get(oauth::user_info))
        .route(paths::CREATOR_INFO, post(posting::creator_info))
        .route(paths::VIDEO_INIT, post(posting::video_init))
        .route(paths::INBOX_VIDEO_INIT, post(posting::inbox_video_init))
        .route(paths::CONTENT_INIT, post(posting::content_init))
        .route(paths::STATUS_FETCH, post(processing::status_fetch))
        .route(paths::CANCEL, post(processing::cancel))
        .route(paths::UPLOAD, put(upload::put))
        .route(paths::CONTROL, post(control))
        .route(paths::RECORD, get(calls))
        .layer(axum::middleware::map_response_with_state(
            shared.clone(),
            stamp_date,
        ))
        .with_state(shared)
}

/// Every answer carries a `Date`, shifted by `clock_offset_secs` (hyper adds none when one is
/// present).
async fn stamp_date(State(shared): State<Arc<Shared>>, mut response: Response) -> Response {
    let offset = shared.config().clock_offset_secs;
    let now = std::time::SystemTime::now();
    let at = if offset >= 0 {
        now + std::time::Duration::from_secs(offset.unsigned_abs())
    } else {
        now - std::time::Duration::from_secs(offset.unsigned_abs())
    };
    if let Ok(value) = httpdate::fmt_http_date(at).parse() {
        response
            .headers_mut()
            .insert(axum::http::header::DATE, value);
    }
    response
}

async fn control(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let result = serde_json::from_slice::<Control>(&body)
        .map_err(|e| SandboxError::Control(e.to_string()))
        .and_then(|c| apply_control(&shared, c));
    match result {
        Ok(config) => axum::Json(config).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn calls(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(snapshot(&shared)).into_response()
}

fn snapshot(shared: &Shared) -> Calls {
    let state = shared.state();
    let mut calls = state.records.clone();
    calls.posts = state.posts.iter().map(|p| p.record.clone()).collect();
    calls
}

fn apply_control(shared: &Shared, control: Control) -> Result<serde_json::Value, SandboxError> {
    if let Some(patch) = &control.config {
        let mut value = serde_json::to_value(&*shared.config())
            .map_err(|e| SandboxError::Control(e.to_string()))?;
        config::merge_patch(&mut value, patch);
        let new: SandboxConfig =
            serde_json::from_value(value).map_err(|e| SandboxError::Control(e.to_string()))?;
        new.check().map_err(SandboxError::Control)?;
        *shared.config() = new;
    }
    let now = tokio::time::Instant::now();
    {
        let mut state = shared.state();
        if control.expire_access_tokens {
            state.access.values_mut().for_each(|g| g.expires = now);
        }
        if control.revoke_refresh_tokens {
            state.refresh.clear();
        }
        if control.expire_publish_ids {
            state.posts.iter_mut().for_each(|p| p.forgotten = true);
        }
        if control.reset_counters {
            state.counters_since = Some(now);
            state.rate.clear();
        }
    }
    shared.notify();
    Ok(shared.config().redacted())
}

/// A running emulator. Dropping it leaves the server running until [`Self::shutdown`] or
/// the runtime ends.
#[derive(Debug)]
pub struct SandboxHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// The server task; ends after `shutdown` cancels it.
    task: JoinHandle<std::io::Result<()>>,
}

impl SandboxHandle {
    /// `http://127.0.0.1:PORT`: the API base and the authorize base.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Everything recorded so far.
    pub fn calls(&self) -> Calls {
        snapshot(&self.shared)
    }

    /// The current knobs.
    pub fn config(&self) -> SandboxConfig {
        self.shared.config().clone()
    }

    /// Changes knobs in place.
    pub fn set(&self, change: impl FnOnce(&mut SandboxConfig)) {
        change(&mut self.shared.config());
        self.shared.notify();
    }

    /// What `POST /_sandbox/control` does; returns the resulting config, secret redacted.
    pub fn control(&self, control: Control) -> Result<serde_json::Value, SandboxError> {
        apply_control(&self.shared, control)
    }

    /// Logs `open_id` (default: the authorizing account) in without a browser, asking for
    /// every scope the app is approved for, and returns TikTok's flat token answer.
    pub fn issue_token(&self, open_id: Option<&str>) -> Result<serde_json::Value, SandboxError> {
        let approved = self.config().approved_scopes;
        self.login(open_id, &approved)
    }

    /// Logs `open_id` (default: the authorizing account) in without a browser, as the
    /// authorize page would: the app asks for `scopes`, which must all be approved for it;
    /// the user grants them less what they untoggle (`AccountConfig::deselect`). Returns
    /// TikTok's flat token answer, whose `scope` lists what was granted.
    pub fn login(
        &self,
        open_id: Option<&str>,
        scopes: &[String],
    ) -> Result<serde_json::Value, SandboxError> {
        let config = self.config();
        let account = match open_id {
            Some(id) => config.account(id),
            None => config.authorizing_account(),
        }
        .ok_or_else(|| SandboxError::NoAccount(open_id.unwrap_or("").to_string()))?;
        if let Some(s) = scopes.iter().find(|s| !config.approved_scopes.contains(s)) {
            return Err(SandboxError::Control(format!(
                "invalid_scope: the app is not approved for {s}"
            )));
        }
        let granted = oauth::granted(account, scopes);
        let grant_id = self.shared.state().next_seq();
        Ok(oauth::issue(
            &self.shared,
            &config,
            &account.open_id,
            &granted,
            grant_id,
        ))
    }

    /// Waits until `check` finds what it looks for in the records (re-checked on every
    /// change), at most `timeout`.
    pub async fn wait_until<T>(
        &self,
        timeout: Duration,
        mut check: impl FnMut(&Calls) -> Option<T>,
    ) -> Result<T, SandboxError> {
        let mut changes = self.shared.changed.subscribe();
        let wait = async {
            loop {
                changes.mark_unchanged();
                if let Some(found) = check(&self.calls()) {
                    return found;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| SandboxError::Timeout(timeout))
    }

    /// Stops the server and every post task; waits up to 5 s for open connections.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(5), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

/// `tokdrop sandbox --listen ADDR`: prints `sandbox listening on http://ADDR` on stdout, then
/// serves until `cancel`.
pub async fn run(
    listen: SocketAddr,
    config: SandboxConfig,
    cancel: CancellationToken,
) -> Result<(), SandboxError> {
    let handle = Sandbox::start_on(listen, config).await?;
    println!("sandbox listening on {}", handle.base_url());
    cancel.cancelled().await;
    handle.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` starts, and returns once its cancel token fires.
    #[tokio::test]
    async fn run_stops_on_cancel() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        run(addr, SandboxConfig::default(), cancel)
            .await
            .expect("ran");
    }

    /// A port in use is a startup error naming the address.
    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let first = Sandbox::start(SandboxConfig::default())
            .await
            .expect("first");
        let err = Sandbox::start_on(first.addr(), SandboxConfig::default())
            .await
            .expect_err("taken");
        assert!(err.to_string().contains(&first.addr().to_string()), "{err}");
        first.shutdown().await;
    }
}
