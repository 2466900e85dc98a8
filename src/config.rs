//! The service configuration (`watch.yaml`, SPEC §2): where it is looked up, how it is read
//! ([`raw`]) and checked (`checks`) into a [`Config`] whose paths are absolute and whose
//! values are typed. All problems are reported at once, each with file:line:column and a fix.
//!
//! Creating folders, binding sockets and loading TLS keys happen at service start, not here:
//! loading a config has no side effects, so `tokdrop check` can run it anywhere.

mod checker;
mod checks;
pub mod notifications;
pub mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use globset::GlobSet;

use crate::content::sidecar::{Mode, PostFields};
use crate::support::diagnostic::{Diagnostic, List};
use crate::support::yaml;

pub use crate::support::paths::{absolute, normalize};
pub use notifications::{Hooks, OnResult, Webhook};
pub use raw::{LogFormat, Rotation, SidecarPolicy, Transfer};

/// Where the config is looked for when `--config` and `$TOKDROP_CONFIG` are not given.
pub const SEARCH_PATH: [&str; 2] = ["./watch.yaml", "/etc/tokdrop/watch.yaml"];
/// Environment variable naming the config file.
pub const CONFIG_ENV: &str = "TOKDROP_CONFIG";
/// Environment variable holding the client secret when no `client_secret_file` is set.
pub const SECRET_ENV: &str = "TOKDROP_CLIENT_SECRET";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file found (looked at {tried})\n  help: pass --config PATH, set {CONFIG_ENV}, or copy watch.example.yaml to ./watch.yaml",
        tried = .tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound { tried: Vec<PathBuf> },
    #[error("{}", List(.problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Diagnostic>,
    },
}

/// A checked configuration. Paths are absolute (relative ones resolved against the config
/// file's folder).
#[derive(Debug)]
pub struct Config {
    /// The file this was read from, as given.
    pub file: PathBuf,
    pub state_dir: PathBuf,
    pub log: LogConfig,
    pub server: ServerConfig,
    pub tiktok: TiktokConfig,
    /// The global `on_result` and `webhook`; each folder's effective ones are in its
    /// [`WatchConfig::hooks`].
    pub hooks: Hooks,
    pub watch: Vec<WatchConfig>,
    /// `admin.listen`: where `/metrics` and `/healthz` answer (plain HTTP); `None`: nowhere.
    pub admin: Option<SocketAddr>,
}

#[derive(Debug)]
pub struct LogConfig {
    pub dir: Option<PathBuf>,
    pub rotation: Rotation,
    pub keep: u32,
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Addr(SocketAddr),
    /// Take the socket from systemd socket activation (`LISTEN_FDS`).
    Systemd,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

#[derive(Debug)]
pub struct ServerConfig {
    pub listen: Listen,
    /// Always ends with `/`.
    pub public_url: url::Url,
    /// `None`: plain HTTP on loopback behind a TLS-terminating proxy.
    pub tls: Option<Tls>,
    pub link_ttl: Duration,
    pub verification_dir: Option<PathBuf>,
}

#[derive(Debug)]
pub struct TiktokConfig {
    pub client_key: String,
    pub client_secret: SecretSource,
    /// Exactly as configured: TikTok compares it with the registered URI as a string.
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub api_base: url::Url,
    pub auth_base: url::Url,
    pub publish_timeout: Duration,
    /// `auto` videos: TikTok not fetching a pull this long after the init cancels it and
    /// uploads the file instead.
    pub pull_start_timeout: Duration,
    /// How the PKCE challenge of `auth login` is written (hex, as TikTok documents).
    pub pkce_challenge: crate::tiktok::pkce::ChallengeEncoding,
    pub ca_file: Option<PathBuf>,
    pub transfer: Transfer,
}

/// Where the client secret comes from; the secret itself is read only when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    File(PathBuf),
    Env,
    /// Neither is set: systemd's credential `client_secret` (`LoadCredential=`), read from
    /// `$CREDENTIALS_DIRECTORY` when needed, so one config serves any unit or instance.
    Credential,
}

/// The systemd credential holding the client secret when the config names no file.
pub const SECRET_CREDENTIAL: &str = "client_secret";

#[derive(Debug)]
pub struct WatchConfig {
    /// Index in the `watch:` list, for messages (`watch[1]`).
    pub index: usize,
    pub path: PathBuf,
    pub account: String,
    pub mode: Mode,
    pub done_dir: PathBuf,
    pub failed_dir: PathBuf,
    pub settle: Duration,
    pub sidecar: SidecarPolicy,
    pub give_up_after: Duration,
    pub include: GlobSet,
    pub exclude: GlobSet,
    pub defaults: PostFields,
    /// Where this folder's notifications go: its own keys, else the global ones.
    pub hooks: Hooks,
}

impl WatchConfig {
    /// Whether a file name (not a path) is taken into account in this folder.
    pub fn wants(&self, name: &str) -> bool {
        !self.exclude.is_match(name) && self.include.is_match(name)
    }

    /// Whether a file name is excluded (temp files of copy tools, hidden files, result files).
    pub fn excludes(&self, name: &str) -> bool {
        self.exclude.is_match(name)
    }
}

impl Config {
    /// Finds the config file: `explicit`, then `$TOKDROP_CONFIG`, then [`SEARCH_PATH`].
    pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if let Some(p) = explicit {
            return Ok(p.to_path_buf());
        }
        if let Some(p) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        let tried: Vec<PathBuf> = SEARCH_PATH.iter().map(PathBuf::from).collect();
        tried
            .iter()
            .find(|p| p.is_file())
            .cloned()
            .ok_or(ConfigError::NotFound { tried })
    }

    /// Reads and checks the config at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let invalid = |problems| ConfigError::Invalid {
            file: path.to_path_buf(),
            problems,
        };
        let text = yaml::read(path).map_err(|d| invalid(vec![d]))?;
        let (raw, locator): (raw::RawConfig, _) =
            yaml::parse_located_all(path, &text).map_err(invalid)?;
        checks::check(path, raw)
            .map_err(|problems| invalid(problems.into_iter().map(|d| locator.place(d)).collect()))
    }

    /// Only where the state lives, from a config that may fail its other checks (a folder
    /// missing, a setting out of range): `tokdrop status` and `results` still work while the
    /// file is being edited. `None` when even that cannot be read.
    pub fn state_dir_of(path: &Path) -> Option<PathBuf> {
        let text = yaml::read(path).ok()?;
        let raw: raw::RawConfig = yaml::parse(path, &text).ok()?;
        let base = absolute(path)
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        Some(normalize(&base.join(raw.state_dir)))
    }

    /// `locate` then `load`.
    pub fn find_and_load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load(&Self::locate(explicit)?)
    }

    /// The watch entry whose folder contains `path` (the deepest match), if any.
    pub fn watch_for(&self, path: &Path) -> Option<&WatchConfig> {
        let abs = absolute(path);
        self.watch
            .iter()
            .filter(|w| abs.starts_with(&w.path))
            .max_by_key(|w| w.path.components().count())
    }

    /// Every account named by a watch entry, in order of first use.
    /// One line per secret file (the client secret, the TLS key) that every user of the
    /// machine may read, with what to do.
    pub fn exposed_secrets(&self) -> Vec<String> {
        use std::os::unix::fs::PermissionsExt;
        let mut files = Vec::new();
        if let SecretSource::File(p) = &self.tiktok.client_secret {
            files.push(("the client secret", p));
        }
        if let Some(Tls::Files { key, .. }) = &self.server.tls {
            files.push(("the TLS key", key));
        }
        let webhooks = std::iter::once(&self.hooks)
            .chain(self.watch.iter().map(|w| &w.hooks))
            .filter_map(|h| h.webhook.as_ref());
        for w in webhooks {
            if !files.iter().any(|(_, p)| *p == &w.secret_file) {
                files.push(("the webhook secret", &w.secret_file));
            }
        }
        files
            .into_iter()
            .filter_map(|(what, path)| {
                let mode = std::fs::metadata(path).ok()?.permissions().mode();
                (mode & 0o004 != 0).then(|| {
                    format!(
                        "{} ({what}) is readable by every user on this machine (mode {:04o}); chmod 600 it, owned by the user tokdrop runs as",
                        crate::support::diagnostic::display_path(path),
                        mode & 0o7777
                    )
                })
            })
            .collect()
    }

    /// The path the media server answers the Web-platform login redirect on, when
    /// `tiktok.redirect_uri` lies under `server.public_url` (same scheme, host and port).
    pub fn callback_path(&self) -> Option<String> {
        let redirect = url::Url::parse(&self.tiktok.redirect_uri).ok()?;
        let public = &self.server.public_url;
        if redirect.scheme() != public.scheme()
            || redirect.host_str() != public.host_str()
            || redirect.port_or_known_default() != public.port_or_known_default()
            || redirect.query().is_some()
        {
            return None;
        }
        let rest = redirect.path().strip_prefix(public.path())?;
        if rest.is_empty() || rest.starts_with("media/") || rest == "healthz" {
            return None;
        }
        Some(format!("/{rest}"))
    }

    /// The TikTok scopes `account`'s folders need, each with the folders that need it:
    /// `video.publish` for direct folders, `video.upload` for inbox folders.
    pub fn needed_scopes(&self, account: &str) -> Vec<(&'static str, Vec<&WatchConfig>)> {
        let mut out: Vec<(&'static str, Vec<&WatchConfig>)> = Vec::new();
        for w in self.watch.iter().filter(|w| w.account == account) {
            let scope = mode_scope(w.mode);
            match out.iter_mut().find(|(s, _)| *s == scope) {
                Some((_, folders)) => folders.push(w),
                None => out.push((scope, vec![w])),
            }
        }
        out
    }

    pub fn accounts(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for w in &self.watch {
            if !out.contains(&w.account.as_str()) {
                out.push(&w.account);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

/// The scope a folder's mode needs (tiktok-api.md §3.1).
pub fn mode_scope(mode: Mode) -> &'static str {
    match mode {
        Mode::Direct => "video.publish",
        Mode::Inbox => "video.upload",
    }
}

/// Default `tiktok.scopes`: `user.info.basic`, `user.info.profile` (the username for post
/// links), and the posting scopes the folders' modes need, nothing more.
pub fn scopes_for(watch: &[WatchConfig]) -> Vec<String> {
    let mut scopes = vec![
        "user.info.basic".to_string(),
        "user.info.profile".to_string(),
    ];
    for w in watch {
        let s = mode_scope(w.mode).to_string();
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes
}
