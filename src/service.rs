//! `tokdrop run`: builds every component from the config and runs them until SIGINT/SIGTERM —
//! the HTTPS media server, the TikTok client and token manager (or, with `--sandbox`, the
//! built-in emulator with a self-signed certificate and a token for every account), the
//! publisher and the folder pipeline. Owns the cancellation token; [`crate::service::reload`] handles SIGHUP.

pub mod admin;
pub mod logging;
pub mod reload;
pub mod systemd;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Listen, SecretSource, Tls};
use crate::lifecycle::journal::Journal;
use crate::lifecycle::notifications::{Delivery, Notifications, Outbox, backoff_from_env};
use crate::lifecycle::pipeline::{self, Shared};
use crate::lifecycle::publish::tiktok::TikTokPublisher;
use crate::lifecycle::status::Board;
use crate::serve::{self, Registry, ServeConfig, Server, TlsSource};
use crate::service::reload::{Reload, SandboxLogin};
use crate::service::systemd::Notifier;
use crate::tiktok::Secret;
use crate::tiktok::client::{Client, ClientConfig};
use crate::tiktok::token_store::TokenStore;
use crate::tiktok::tokens::TokenManager;
use tokdrop_sandbox::{Sandbox, SandboxConfig};

/// Name of the self-signed certificate written into `state_dir` (clients trust it).
pub const SELF_SIGNED_PEM: &str = "sandbox-ca.pem";

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Serve(#[from] serve::ServeError),
    #[error(transparent)]
    Pipeline(#[from] pipeline::PipelineError),
    #[error(transparent)]
    Journal(#[from] crate::lifecycle::journal::JournalError),
    #[error("the built-in TikTok emulator cannot start: {0}")]
    Sandbox(String),
    #[error(
        "cannot read the client secret from {path}: {source}\n  help: put the secret in that file (mode 0600), or set TOKDROP_CLIENT_SECRET"
    )]
    Secret {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "TOKDROP_CLIENT_SECRET is empty or not set\n  help: set it, or configure tiktok.client_secret_file"
    )]
    SecretEnv,
    #[error(
        "no client secret: watch.yaml names no tiktok.client_secret_file, TOKDROP_CLIENT_SECRET is not set, and systemd passed no credential client_secret{}\n  help: set tiktok.client_secret_file, or export TOKDROP_CLIENT_SECRET, or give the unit LoadCredential=client_secret:/etc/tokdrop/client_secret",
        .0.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    SecretCredential(Option<String>),
    #[error(
        "cannot listen on {addr} (admin.listen): {source}\n  help: pick a free port for admin.listen, or remove the admin block"
    )]
    Admin {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up the TikTok client: {0}")]
    Client(String),
    #[error("cannot create the state folder {path}: {source}")]
    State {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Reads the client secret from where the config says.
pub fn client_secret(config: &Config) -> Result<Secret, ServiceError> {
    match &config.tiktok.client_secret {
        SecretSource::File(path) => std::fs::read_to_string(path)
            .map(|s| Secret::new(s.trim().to_string()))
            .map_err(|source| ServiceError::Secret {
                path: path.clone(),
                source,
            }),
        SecretSource::Env => match std::env::var(crate::config::SECRET_ENV) {
            Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim().to_string())),
            _ => Err(ServiceError::SecretEnv),
        },
        SecretSource::Credential => {
            // TOKDROP_CLIENT_SECRET set after the config was read still counts.
            if let Ok(v) = std::env::var(crate::config::SECRET_ENV)
                && !v.trim().is_empty()
            {
                return Ok(Secret::new(v.trim().to_string()));
            }
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                .ok_or(ServiceError::SecretCredential(None))?;
            let path = std::path::Path::new(&dir).join(crate::config::SECRET_CREDENTIAL);
            match std::fs::read_to_string(&path) {
                Ok(v) if !v.trim().is_empty() => Ok(Secret::new(v.trim().to_string())),
                Ok(_) => Err(ServiceError::SecretCredential(Some(format!(
                    "{} is empty",
                    path.display()
                )))),
                Err(e) => Err(ServiceError::SecretCredential(Some(format!(
                    "{}: {e}",
                    path.display()
                )))),
            }
        }
    }
}

/// Where the client secret was read from (never the secret itself).
fn secret_origin(config: &Config) -> String {
    let env_set = std::env::var(crate::config::SECRET_ENV).is_ok_and(|v| !v.trim().is_empty());
    match &config.tiktok.client_secret {
        SecretSource::File(p) => format!("read from {}", p.display()),
        SecretSource::Credential if !env_set => format!(
            "read from systemd's credential {} ($CREDENTIALS_DIRECTORY)",
            crate::config::SECRET_CREDENTIAL
        ),
        _ => format!("read from ${}", crate::config::SECRET_ENV),
    }
}

pub(crate) fn serve_config(config: &Config, sandbox: bool) -> ServeConfig {
    let listen = match config.server.listen {
        Listen::Addr(a) => serve::Listen::Addr(a),
        Listen::Systemd => serve::Listen::Systemd,
    };
    let mut sc = ServeConfig::new(listen);
    let self_signed = || {
        let mut hostnames = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Some(h) = config.server.public_url.host_str() {
            hostnames.insert(0, h.to_string());
        }
        TlsSource::SelfSigned {
            hostnames,
            write_pem_to: config.state_dir.join(SELF_SIGNED_PEM),
        }
    };
    sc.tls = match &config.server.tls {
        _ if sandbox => Some(self_signed()),
        Some(Tls::Files { cert, key }) => Some(TlsSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        }),
        Some(Tls::SelfSigned) => Some(self_signed()),
        None => None,
    };
    sc.verification_dir = config.server.verification_dir.clone();
    sc.oauth_callback = config
        .callback_path()
        .map(|path| (path, config.state_dir.clone()));
    sc
}

/// Runs the service until a stop signal or `cancel`.
pub async fn run(
    config: Config,
    sandbox: bool,
    cancel: CancellationToken,
    log: Option<Arc<crate::service::logging::LogGuard>>,
) -> Result<(), ServiceError> {
    crate::support::fsops::create_private_dir(&config.state_dir).map_err(|source| {
        ServiceError::State {
            path: config.state_dir.clone(),
            source,
        }
    })?;
    // The sandbox uses neither the secret nor the key files.
    for line in config.exposed_secrets().iter().filter(|_| !sandbox) {
        tracing::warn!("{line}");
    }
    let server = Server::bind(serve_config(&config, sandbox)).await?;
    tracing::info!(addr = %server.local_addr(), public_url = %config.server.public_url, "media server listening");
    let registry = Registry::new(config.server.link_ttl);
    let store = TokenStore::new(config.state_dir.join("tokens"));
    let (client, emulator) = if sandbox {
        start_sandbox(&config, &cancel).await?
    } else {
        let secret = client_secret(&config)?;
        tracing::info!("client secret: {}", secret_origin(&config));
        let mut cc = ClientConfig::new(
            config.tiktok.api_base.as_str().trim_end_matches('/'),
            config.tiktok.client_key.clone(),
            secret,
        );
        cc.extra_ca_pem = config.tiktok.ca_file.clone();
        cc.cancel = cancel.clone();
        (
            Client::new(cc).map_err(|e| ServiceError::Client(e.to_string()))?,
            None,
        )
    };
    let tokens = Arc::new(TokenManager::new(client, store));
    let emulator = emulator.map(Arc::new);
    let sandbox_login = emulator
        .as_ref()
        .map(|emu| sandbox_login(emu.clone(), tokens.clone()));
    if let Some(login) = &sandbox_login {
        for account in config.accounts() {
            login(account.to_string(), config.tiktok.scopes.clone()).await;
        }
    }
    let publisher = Arc::new(TikTokPublisher {
        tokens,
        registry: registry.clone(),
        public_url: config.server.public_url.clone(),
        transfer: config.tiktok.transfer,
        publish_timeout: config.tiktok.publish_timeout,
        pull_start_timeout: config.tiktok.pull_start_timeout,
        cancel: cancel.clone(),
    });
    let notifier = Notifier::from_env().unwrap_or_else(|e| {
        tracing::warn!("NOTIFY_SOCKET is set but unusable ({e}); not talking to systemd");
        Notifier::disabled()
    });
    let tls = server.tls_handle();
    let server_task = tokio::spawn(server.run(registry, cancel.clone()));
    let config = Arc::new(config);
    let (configs, config_rx) = watch::channel(config.clone());
    let reload_task = tokio::spawn(reload::on_sighup(
        Reload {
            tls,
            log,
            config: configs,
            sandbox_login,
        },
        notifier.clone(),
        cancel.clone(),
    ));
    tokio::spawn(stop_on_signal(cancel.clone(), notifier.clone()));
    let journal = Journal::open(&config.state_dir)?;
    let (notifications, delivery_task) = start_notifications(&config, &journal, &cancel)?;
    let (events, events_rx) = broadcast::channel(1024);
    let board = Board::default();
    let stall_limit = crate::service::admin::stall_limit();
    if let Some(addr) = config.admin {
        let listener = crate::service::admin::Listener::bind(addr)
            .await
            .map_err(|source| ServiceError::Admin { addr, source })?;
        let admin = crate::service::admin::Admin {
            board: board.clone(),
            journal_dir: journal.dir().to_path_buf(),
            tokens: TokenStore::new(config.state_dir.join("tokens")),
            stall_limit,
        };
        tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "admin listener: /metrics and /healthz");
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = listener.serve(admin, cancel).await {
                tracing::error!("the admin listener stopped: {e}");
            }
        });
    }
    let shared = Shared {
        config: config_rx,
        journal,
        board: board.clone(),
        events,
        notifications,
    };
    tokio::spawn(talk_to_systemd(
        notifier.clone(),
        board,
        stall_limit,
        events_rx,
        cancel.clone(),
    ));
    tracing::info!(folders = config.watch.len(), sandbox, "tokdrop is running");
    let result = pipeline::run(shared, Arc::new(publisher), cancel.clone()).await;
    cancel.cancel();
    match tokio::time::timeout(Duration::from_secs(15), server_task).await {
        Ok(Ok(Err(e))) => tracing::warn!("media server: {e}"),
        Err(_) => tracing::warn!("the media server did not stop in time"),
        _ => {}
    }
    let _ = reload_task.await;
    let _ = delivery_task.await;
    if let Some(emu) = emulator.and_then(Arc::into_inner) {
        emu.shutdown().await;
    }
    tracing::info!("tokdrop stopped");
    result.map_err(Into::into)
}

/// Starts the task that delivers notifications from `state_dir/outbox/` (what is pending
/// first, except items the journal still holds: finishing them hands their entries over).
fn start_notifications(
    config: &Config,
    journal: &Journal,
    cancel: &CancellationToken,
) -> Result<(Notifications, tokio::task::JoinHandle<()>), ServiceError> {
    let (handle, wake) = Notifications::new(&config.state_dir);
    let http = crate::tiktok::client::http_client(None, Duration::from_secs(10))
        .map_err(|e| ServiceError::Client(e.to_string()))?;
    let journal = journal.clone();
    let delivery = Delivery {
        outbox: Outbox::new(&config.state_dir),
        http,
        backoff: backoff_from_env(),
        still_finishing: Box::new(move |id| matches!(journal.read(id), Ok(Some(_)))),
    };
    Ok((handle, tokio::spawn(delivery.run(wake, cancel.clone()))))
}

/// Starts the emulator trusting our self-signed certificate, and a client pointed at it.
async fn start_sandbox(
    config: &Config,
    cancel: &CancellationToken,
) -> Result<(Client, Option<tokdrop_sandbox::SandboxHandle>), ServiceError> {
    let pem = config.state_dir.join(SELF_SIGNED_PEM);
    let sc = SandboxConfig {
        client_key: config.tiktok.client_key.clone(),
        verified_url_prefixes: vec![config.server.public_url.to_string()],
        extra_ca_file: Some(pem),
        ..Default::default()
    };
    let secret = sc.client_secret.clone();
    let emu = Sandbox::start(sc)
        .await
        .map_err(|e| ServiceError::Sandbox(e.to_string()))?;
    tracing::info!(
        api = emu.base_url(),
        "sandbox: the built-in TikTok emulator is listening; nothing reaches the real TikTok"
    );
    let mut cc = ClientConfig::new(
        emu.base_url().to_string(),
        config.tiktok.client_key.clone(),
        Secret::new(secret),
    );
    cc.cancel = cancel.clone();
    let client = Client::new(cc).map_err(|e| ServiceError::Client(e.to_string()))?;
    Ok((client, Some(emu)))
}

/// Stores a fresh emulator login for an account, as `tokdrop auth login` would: asking for
/// the scopes `tiktok.scopes` lists (as the config says when the login happens), granted as
/// the emulator's user grants them.
fn sandbox_login(
    emu: Arc<tokdrop_sandbox::SandboxHandle>,
    tokens: Arc<TokenManager>,
) -> SandboxLogin {
    Box::new(move |account: String, scopes: Vec<String>| {
        let (emu, tokens) = (emu.clone(), tokens.clone());
        Box::pin(async move {
            let grant = emu
                .login(None, &scopes)
                .map_err(|e| e.to_string())
                .and_then(|body| {
                    serde_json::from_value::<crate::tiktok::wire::TokenResponse>(body)
                        .map_err(|e| format!("the emulator's token answer does not parse: {e}"))
                });
            let stored = match grant {
                Ok(grant) => tokens
                    .store_grant(&account, &grant)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = stored {
                tracing::error!(account, "sandbox: cannot log in: {e}");
            }
        })
    })
}

/// READY once the folders are watched, STATUS on every change, WATCHDOG while every worker
/// with an item in flight shows progress (see [`Board::stalled`]): a pipeline stuck inside a
/// running process is restarted by systemd too, not only a frozen one.
async fn talk_to_systemd(
    notifier: Notifier,
    board: Board,
    stall_limit: Duration,
    mut events: broadcast::Receiver<pipeline::Event>,
    cancel: CancellationToken,
) {
    if !notifier.is_enabled() {
        return;
    }
    loop {
        match events.recv().await {
            Ok(pipeline::Event::Started) => break,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
    let mut changes = board.subscribe();
    notifier.ready();
    notifier.status(&status_line(&board.snapshot()));
    let mut watchdog = notifier.watchdog_interval().map(tokio::time::interval);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            r = changes.changed() => {
                if r.is_err() {
                    return;
                }
                notifier.status(&status_line(&board.snapshot()));
            }
            _ = async { match watchdog.as_mut() { Some(w) => w.tick().await, None => std::future::pending().await } } => {
                let stalls = board.stalled(stall_limit);
                if stalls.is_empty() {
                    notifier.watchdog();
                } else {
                    for s in &stalls {
                        tracing::error!("{s}; not feeding the systemd watchdog, so systemd restarts tokdrop");
                    }
                }
            }
        }
    }
}

/// The one-line `STATUS=` text: what is being published, paused accounts, the items in line
/// (in their folders or claimed), scheduled ones, and items tokdrop cannot take or finish.
pub fn status_line(s: &crate::lifecycle::status::Snapshot) -> String {
    use crate::lifecycle::status::Reason;
    let mut parts = Vec::new();
    for f in &s.in_flight {
        parts.push(format!("publishing {}: {}", f.item, f.stage));
    }
    for (account, why) in &s.paused {
        parts.push(format!("{account} {why}"));
    }
    let count = |f: &dyn Fn(&Reason) -> bool| s.waiting.iter().filter(|w| f(&w.reason)).count();
    let queued = count(&Reason::is_queued);
    if queued > 0 {
        parts.push(format!("{queued} queued"));
    }
    let scheduled = count(&|r| matches!(r, Reason::Scheduled { .. }));
    if scheduled > 0 {
        parts.push(format!("{scheduled} scheduled"));
    }
    let stuck = count(&|r| matches!(r, Reason::CannotTake { .. }));
    if stuck > 0 {
        parts.push(format!("{stuck} cannot be taken (see tokdrop status)"));
    }
    let unfinished = count(&|r| matches!(r, Reason::CannotFinish { .. }));
    if unfinished > 0 {
        parts.push(format!(
            "{unfinished} cannot be moved to done/failed (see tokdrop status)"
        ));
    }
    if parts.is_empty() {
        "idle".to_string()
    } else {
        parts.join("; ")
    }
}

/// SIGINT and SIGTERM stop the service gracefully.
async fn stop_on_signal(cancel: CancellationToken, notifier: Notifier) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for stop signals");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: stopping after the item in flight reaches a safe point"),
        _ = int.recv() => tracing::info!("SIGINT: stopping after the item in flight reaches a safe point"),
        () = cancel.cancelled() => {}
    }
    notifier.stopping();
    cancel.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::status::{InFlight, Reason, Snapshot, Waiting};

    fn waiting(path: &str, reason: Reason) -> Waiting {
        Waiting {
            path: path.into(),
            reason,
            place: None,
            account: None,
            since: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    /// systemd's one-line status: what is published, paused accounts, the items in line (in
    /// the folder or claimed), scheduled ones and items tokdrop cannot take; "idle" when there
    /// is nothing of that.
    #[test]
    fn status_lines() {
        let mut s = Snapshot::default();
        assert_eq!(status_line(&s), "idle");
        s.waiting = vec![waiting("/in/a.mp4", Reason::Settling)];
        assert_eq!(status_line(&s), "idle", "settling items are not news");
        s.waiting.push(waiting("/in/b.mp4", Reason::Claimed));
        s.waiting.push(waiting(
            "/in/c.mp4",
            Reason::AccountBusy {
                publishing: "clip.mp4".into(),
            },
        ));
        s.waiting.push(waiting(
            "/in/d.mp4",
            Reason::Scheduled {
                at: jiff::Timestamp::UNIX_EPOCH,
            },
        ));
        s.waiting.push(waiting(
            "/in/trip",
            Reason::CannotTake {
                problem: "cannot move /in/trip: Permission denied".into(),
            },
        ));
        s.in_flight.push(InFlight {
            id: "x".into(),
            item: "clip.mp4".into(),
            account: "default".into(),
            stage: crate::lifecycle::status::Step::Processing { polls: 4 },
            publish_id: None,
            bytes_fetched: None,
            bytes_total: None,
            started_at: jiff::Timestamp::UNIX_EPOCH,
        });
        s.paused
            .insert("brand".into(), "paused: needs login".into());
        assert_eq!(
            status_line(&s),
            "publishing clip.mp4: processing (polled 4×); brand paused: needs login; 2 queued; 1 scheduled; 1 cannot be taken (see tokdrop status)"
        );
    }
}
