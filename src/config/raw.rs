//! `watch.yaml` exactly as serde reads it (SPEC §2): strict (unknown keys are errors), with the
//! documented defaults. Paths are still as written; `config::checks` resolves and checks them.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::notifications::{RawOnResult, RawWebhook};
use crate::content::sidecar::{Mode, PostFields};
use crate::support::duration::HumanDuration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub state_dir: PathBuf,
    #[serde(default)]
    pub log: RawLog,
    pub server: RawServer,
    pub tiktok: RawTiktok,
    /// Run for every finished item and account pause (a folder's own replaces it).
    pub on_result: Option<RawOnResult>,
    /// POSTed for every finished item and account pause (a folder's own replaces it).
    pub webhook: Option<RawWebhook>,
    pub watch: Vec<RawWatch>,
    /// The admin listener (`/metrics`, `/healthz`); absent: none.
    #[serde(default)]
    pub admin: Option<RawAdmin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    #[serde(default = "default_admin_listen")]
    pub listen: String,
}

/// The admin listener's default address: loopback only.
pub fn default_admin_listen() -> String {
    "127.0.0.1:9469".to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    Daily,
    Hourly,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub dir: Option<PathBuf>,
    pub rotation: Rotation,
    pub keep: u32,
    pub format: LogFormat,
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            dir: None,
            rotation: Rotation::Daily,
            keep: 14,
            format: LogFormat::Text,
            level: "info".to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    pub public_url: String,
    pub tls: Option<RawTls>,
    #[serde(default = "default_link_ttl")]
    pub link_ttl: HumanDuration,
    pub verification_dir: Option<PathBuf>,
}

fn default_link_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(2 * 3600))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    #[serde(default)]
    pub self_signed: bool,
}

/// How a video's bytes reach TikTok.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transfer {
    /// Pull, falling back to FILE_UPLOAD for a video whose pull fails.
    Auto,
    Pull,
    Upload,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTiktok {
    pub client_key: String,
    pub client_secret_file: Option<PathBuf>,
    #[serde(default = "default_redirect_uri")]
    pub redirect_uri: String,
    /// `None`: what the folders need (see `checks`).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default = "default_api_base")]
    pub api_base: String,
    #[serde(default = "default_auth_base")]
    pub auth_base: String,
    #[serde(default = "default_publish_timeout")]
    pub publish_timeout: HumanDuration,
    #[serde(default = "default_pull_start_timeout")]
    pub pull_start_timeout: HumanDuration,
    #[serde(default)]
    pub pkce_challenge: crate::tiktok::pkce::ChallengeEncoding,
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_transfer")]
    pub transfer: Transfer,
}

fn default_redirect_uri() -> String {
    "http://127.0.0.1:3455/callback/".to_string()
}
fn default_api_base() -> String {
    "https://open.tiktokapis.com".to_string()
}
fn default_auth_base() -> String {
    "https://www.tiktok.com".to_string()
}
fn default_publish_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(2 * 3600))
}
fn default_pull_start_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(5 * 60))
}
fn default_transfer() -> Transfer {
    Transfer::Auto
}

/// Whether media waits for its sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SidecarPolicy {
    Optional,
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    pub path: PathBuf,
    #[serde(default = "default_account")]
    pub account: String,
    pub mode: Mode,
    pub done_dir: PathBuf,
    pub failed_dir: PathBuf,
    #[serde(default = "default_settle")]
    pub settle: HumanDuration,
    #[serde(default = "default_sidecar")]
    pub sidecar: SidecarPolicy,
    #[serde(default = "default_give_up_after")]
    pub give_up_after: HumanDuration,
    #[serde(default = "default_include")]
    pub include: Vec<String>,
    #[serde(default = "default_exclude")]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub defaults: PostFields,
    pub on_result: Option<RawOnResult>,
    pub webhook: Option<RawWebhook>,
}

fn default_account() -> String {
    "default".to_string()
}
fn default_settle() -> HumanDuration {
    HumanDuration(Duration::from_secs(5))
}
fn default_sidecar() -> SidecarPolicy {
    SidecarPolicy::Optional
}
fn default_give_up_after() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
pub fn default_include() -> Vec<String> {
    [
        "*.mp4", "*.mov", "*.webm", "*.jpg", "*.jpeg", "*.webp", "*.yaml", "*.yml",
    ]
    .map(String::from)
    .to_vec()
}
/// Temp names of rsync (`.name.XXXX`), Syncthing (`.syncthing.*`, `*.!sync`), browsers
/// (`*.crdownload`, `*.part`), editors (`*~`, `*.tmp`) and our own result files.
pub fn default_exclude() -> Vec<String> {
    [
        ".*",
        "*~",
        "*.part",
        "*.partial",
        "*.tmp",
        "*.crdownload",
        "*.!sync",
        "*.result.yaml",
    ]
    .map(String::from)
    .to_vec()
}
