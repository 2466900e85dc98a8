//! The admin listener (`admin.listen`, plain HTTP, loopback by default): `GET /metrics`
//! (Prometheus / OpenMetrics text, see [`crate::support::metrics`]) and `GET /healthz` (200 `ok` while
//! every worker with an item in flight shows progress and the journal can be written; 503
//! with the reasons otherwise). Never on the public media port.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::lifecycle::status::Board;
use crate::tiktok::token_store::TokenStore;

/// A worker silent this long (outside the quiet times it announced) is stuck.
pub const DEFAULT_STALL_LIMIT: Duration = Duration::from_secs(10 * 60);
/// Overrides [`DEFAULT_STALL_LIMIT`] (a duration like `2s`; for tests).
pub const STALL_LIMIT_ENV: &str = "TOKDROP_STALL_LIMIT";

/// The stall limit in force: [`STALL_LIMIT_ENV`] when it parses, else the default.
pub fn stall_limit() -> Duration {
    std::env::var(STALL_LIMIT_ENV)
        .ok()
        .and_then(|v| crate::support::duration::parse(&v).ok())
        .unwrap_or(DEFAULT_STALL_LIMIT)
}

#[derive(Clone)]
pub struct Admin {
    pub board: Board,
    /// Where the journal writes (probed by `/healthz`).
    pub journal_dir: PathBuf,
    pub tokens: TokenStore,
    pub stall_limit: Duration,
}

impl Admin {
    /// Why the service is unhealthy; empty when it is healthy.
    pub async fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .board
            .stalled(self.stall_limit)
            .iter()
            .map(ToString::to_string)
            .collect();
        let dir = self.journal_dir.clone();
        match tokio::task::spawn_blocking(move || probe_writable(&dir)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => out.push(format!(
                "the journal folder {} cannot be written: {e}",
                self.journal_dir.display()
            )),
            Err(e) => out.push(format!("the journal probe failed: {e}")),
        }
        out
    }

    fn token_expiries(&self, accounts: &[String]) -> Vec<crate::support::metrics::TokenExpiry> {
        accounts
            .iter()
            .filter_map(|a| {
                let t = self.tokens.load(a).ok()??;
                Some(crate::support::metrics::TokenExpiry {
                    account: a.clone(),
                    access: t.access_expires_at,
                    refresh: t.refresh_expires_at,
                })
            })
            .collect()
    }
}

/// Creates, syncs and removes a small file in `dir`.
fn probe_writable(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join(format!(".healthz-{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let written = f.write_all(b"ok").and_then(|()| f.sync_data());
    let removed = std::fs::remove_file(&path);
    written.and(removed)
}

/// A bound admin listener, ready to [`serve`](Self::serve).
pub struct Listener {
    listener: tokio::net::TcpListener,
}

impl Listener {
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Listener {
            listener: tokio::net::TcpListener::bind(addr).await?,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Answers until `cancel`.
    pub async fn serve(self, admin: Admin, cancel: CancellationToken) -> std::io::Result<()> {
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/healthz", get(healthz))
            .with_state(admin);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(cancel.cancelled_owned())
            .await
    }
}

async fn metrics(State(admin): State<Admin>) -> Response {
    let snapshot = admin.board.snapshot();
    let mut accounts: Vec<String> = snapshot.folders.iter().map(|f| f.account.clone()).collect();
    accounts.sort();
    accounts.dedup();
    let tokens = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || admin.token_expiries(&accounts))
            .await
            .unwrap_or_default()
    };
    let now = jiff::Timestamp::now();
    let queues = snapshot
        .folders
        .iter()
        .map(|f| {
            let waiting: Vec<_> = snapshot
                .waiting
                .iter()
                .filter(|w| w.path.starts_with(&f.path))
                .collect();
            let oldest = waiting
                .iter()
                .filter_map(|w| Duration::try_from(now.duration_since(w.since)).ok())
                .max()
                .unwrap_or_default();
            crate::support::metrics::Queue {
                folder: crate::support::metrics::folder_label(&f.path),
                depth: waiting.len(),
                oldest,
            }
        })
        .collect();
    let state = crate::support::metrics::State {
        queues,
        paused: snapshot.paused.into_iter().collect(),
        tokens,
    };
    let body = crate::support::metrics::metrics().render(&state);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

async fn healthz(State(admin): State<Admin>) -> Response {
    let problems = admin.problems().await;
    if problems.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        let text = format!("unhealthy: {}\n", problems.join("; "));
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}
