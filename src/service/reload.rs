//! SIGHUP (`systemctl reload tokdrop`): re-read the config and apply what can change while
//! running — watch folders and their settings and defaults (through the pipeline), `log.level`
//! and the TLS files — without disturbing the item in flight. An invalid config is refused and
//! the running one kept; settings that only a restart can change are named in the log.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::serve::TlsHandle;
use crate::service::logging::LogGuard;
use crate::service::systemd::Notifier;

/// Gives a new account a sandbox login asking for these scopes (`run --sandbox`: there is no
/// real TikTok to log into).
pub type SandboxLogin = Box<
    dyn Fn(String, Vec<String>) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync,
>;

/// What SIGHUP can change without a restart.
pub struct Reload {
    pub tls: Option<TlsHandle>,
    pub log: Option<Arc<LogGuard>>,
    /// The config in force; the pipeline watches it.
    pub config: watch::Sender<Arc<Config>>,
    pub sandbox_login: Option<SandboxLogin>,
}

impl Reload {
    /// Re-reads the config file and applies it (see the module doc).
    pub async fn apply(&self) {
        let running = self.config.borrow().clone();
        match Config::load(&running.file) {
            Err(e) => {
                tracing::error!("SIGHUP: the config is invalid, keeping the running one:\n{e}")
            }
            Ok(mut new) => {
                self.apply_level(&running, &new);
                let later = needs_restart(&running, &new);
                if !later.is_empty() {
                    tracing::warn!(
                        "SIGHUP: {} changed; that takes effect after a restart (systemctl restart tokdrop)",
                        later.join(", ")
                    );
                }
                // The journal, tokens and status stay where the running service keeps them.
                new.state_dir = running.state_dir.clone();
                if let Some(login) = &self.sandbox_login {
                    let before = running.accounts();
                    for account in new.accounts() {
                        if !before.contains(&account) {
                            login(account.to_string(), new.tiktok.scopes.clone()).await;
                        }
                    }
                }
                self.config.send_replace(Arc::new(new));
                tracing::info!("SIGHUP: config re-read and applied");
            }
        }
        if let Some(tls) = &self.tls
            && let Err(e) = tls.reload()
        {
            tracing::error!("SIGHUP: keeping the current certificate: {e}");
        }
    }

    fn apply_level(&self, running: &Config, new: &Config) {
        if new.log.level == running.log.level {
            return;
        }
        match self.log.as_ref().map(|l| l.set_level(&new.log.level)) {
            Some(Ok(true)) => tracing::info!(level = %new.log.level, "SIGHUP: log level changed"),
            Some(Ok(false)) => {
                tracing::info!("SIGHUP: RUST_LOG is set and keeps overriding log.level")
            }
            Some(Err(e)) => tracing::error!("SIGHUP: {e}"),
            None => {}
        }
    }
}

/// The keys whose change only a restart applies (the server socket, the TikTok client, the
/// log files, the state folder).
pub fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let (o, n) = (old, new);
    [
        ("state_dir", o.state_dir != n.state_dir),
        ("log.dir", o.log.dir != n.log.dir),
        ("log.format", o.log.format != n.log.format),
        ("log.rotation", o.log.rotation != n.log.rotation),
        ("log.keep", o.log.keep != n.log.keep),
        ("server.listen", o.server.listen != n.server.listen),
        ("admin.listen", o.admin != n.admin),
        (
            "server.public_url",
            o.server.public_url != n.server.public_url,
        ),
        ("server.tls", o.server.tls != n.server.tls),
        ("server.link_ttl", o.server.link_ttl != n.server.link_ttl),
        (
            "server.verification_dir",
            o.server.verification_dir != n.server.verification_dir,
        ),
        (
            "tiktok.client_key",
            o.tiktok.client_key != n.tiktok.client_key,
        ),
        (
            "tiktok.client_secret_file",
            o.tiktok.client_secret != n.tiktok.client_secret,
        ),
        ("tiktok.api_base", o.tiktok.api_base != n.tiktok.api_base),
        ("tiktok.ca_file", o.tiktok.ca_file != n.tiktok.ca_file),
        ("tiktok.transfer", o.tiktok.transfer != n.tiktok.transfer),
        (
            "tiktok.publish_timeout",
            o.tiktok.publish_timeout != n.tiktok.publish_timeout,
        ),
        (
            "tiktok.pull_start_timeout",
            o.tiktok.pull_start_timeout != n.tiktok.pull_start_timeout,
        ),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// SIGHUP: tell systemd, re-read what can change live, tell systemd we are ready again.
pub async fn on_sighup(reload: Reload, notifier: Notifier, cancel: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = hup.recv() => {
                notifier.reloading();
                reload.apply().await;
                notifier.ready();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &std::path::Path, extra_server: &str, folders: &str) -> Config {
        std::fs::create_dir_all(dir.join("a")).expect("mkdir");
        std::fs::create_dir_all(dir.join("b")).expect("mkdir");
        std::fs::write(dir.join("secret"), "s").expect("secret");
        let file = dir.join("watch.yaml");
        std::fs::write(
            &file,
            format!(
                "state_dir: ./state
server: {{public_url: https://media.example.com/{extra_server}}}
tiktok: {{client_key: key, client_secret_file: ./secret}}
watch:
{folders}"
            ),
        )
        .expect("write");
        Config::load(&file).expect("valid")
    }

    /// Folder changes apply live and are not reported; server and client changes are named.
    #[test]
    fn what_needs_a_restart() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = "  - {path: ./a, mode: direct, done_dir: ./done, failed_dir: ./failed}\n";
        let b = "  - {path: ./b, mode: inbox, done_dir: ./done-b, failed_dir: ./failed-b, settle: 1s}\n";
        let port = ", listen: 127.0.0.1:8443";
        let old = load(dir.path(), port, a);
        let folders = load(dir.path(), port, &format!("{a}{b}"));
        assert!(needs_restart(&old, &folders).is_empty());
        let server = load(dir.path(), ", link_ttl: 1h, listen: 127.0.0.1:9443", a);
        assert_eq!(
            needs_restart(&old, &server),
            ["server.listen", "server.link_ttl"]
        );
    }
}
