//! `tokdrop doctor [--json]` (SPEC §1): checks a real setup end to end and prints a checklist,
//! one line per finding — `ok`, `warn` or `fail`, each problem with what to do. Exit 1 on any
//! fail. The checks read and ask; they change nothing.
//!
//! - here: config, client secret, each account (token, scopes, TikTok's answer);
//! - [`web`]: TikTok's clock, `public_url` (name, DNS, port), its certificate against the
//!   system's roots, `/healthz` by the public name with no redirect, verification files;
//! - [`host`]: folders (permissions, filesystems), inotify limits, disk space.

mod host;
mod web;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::commands::cli::{EXIT_FAILED, EXIT_OK};
use crate::config::{Config, SecretSource};
use crate::support::diagnostic::display_path;

/// How a finding ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the checklist.
#[derive(Debug, Serialize)]
pub struct Finding {
    pub check: String,
    pub status: Level,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Finding {
    fn new(check: impl Into<String>, status: Level, message: impl Into<String>) -> Self {
        Finding {
            check: check.into(),
            status,
            message: message.into(),
            help: None,
        }
    }
    fn ok(check: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(check, Level::Ok, message)
    }
    fn warn(check: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(check, Level::Warn, message)
    }
    fn fail(check: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(check, Level::Fail, message)
    }
    fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Options of `tokdrop doctor`.
#[derive(Debug, Default)]
pub struct Options {
    pub json: bool,
    /// Also trust this CA for `public_url`'s certificate (tests, a private CA).
    pub extra_ca: Option<PathBuf>,
}

/// Runs every check on a loaded config and prints the checklist; the exit code.
pub async fn run(config: &Config, options: &Options) -> u8 {
    let mut findings = vec![Finding::ok(
        "config",
        format!("{} is valid", display_path(&config.file)),
    )];
    findings.push(secret(config));
    if let Some(line) = config
        .exposed_secrets()
        .into_iter()
        .find(|l| l.contains("(the TLS key)"))
    {
        findings.push(Finding::warn("tls key", line));
    }
    for account in config.accounts() {
        findings.extend(account_findings(config, account).await);
    }
    findings.extend(web::checks(config, options.extra_ca.as_deref()).await);
    let paths = host::Paths::of(config);
    findings.extend(
        tokio::task::spawn_blocking(move || host::checks(&paths))
            .await
            .unwrap_or_default(),
    );
    print(&findings, options.json);
    if findings.iter().any(|f| f.status == Level::Fail) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

fn print(findings: &[Finding], json: bool) {
    let count = |level| findings.iter().filter(|f| f.status == level).count();
    let (ok, warn, fail) = (count(Level::Ok), count(Level::Warn), count(Level::Fail));
    if json {
        let report = serde_json::json!({"ok": ok, "warn": warn, "fail": fail, "checks": findings});
        println!("{report}");
        return;
    }
    for f in findings {
        let tag = match f.status {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("{tag}  {}: {}", f.check, f.message);
        if let Some(help) = &f.help {
            println!("      help: {help}");
        }
    }
    println!("doctor: {ok} ok, {warn} warnings, {fail} failed");
}

fn secret(config: &Config) -> Finding {
    if let Err(e) = crate::service::client_secret(config) {
        return Finding::fail("secret", e.to_string())
            .help("put the client secret from the TikTok developer portal in that file");
    }
    match &config.tiktok.client_secret {
        SecretSource::Env => Finding::ok(
            "secret",
            format!("read from ${}", crate::config::SECRET_ENV),
        ),
        SecretSource::File(path) => secret_file(path),
        SecretSource::Credential => Finding::ok(
            "secret",
            format!(
                "read from systemd's credential {} ($CREDENTIALS_DIRECTORY)",
                crate::config::SECRET_CREDENTIAL
            ),
        ),
    }
}

fn secret_file(path: &Path) -> Finding {
    let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode());
    if mode & 0o004 != 0 {
        Finding::warn(
            "secret",
            format!(
                "{} is readable by every user on this machine (mode {:04o})",
                display_path(path),
                mode & 0o7777
            ),
        )
        .help(format!(
            "chmod 600 {} (or pass it with systemd's LoadCredential=)",
            display_path(path)
        ))
    } else {
        Finding::ok("secret", format!("{} is readable", display_path(path)))
    }
}

async fn account_findings(config: &Config, account: &str) -> Vec<Finding> {
    let check = format!("account {account}");
    let login = format!("tokdrop auth login --account {account}");
    let report = match crate::commands::auth::check_account(config, account).await {
        Ok(r) => r,
        Err(e) => return vec![Finding::fail(check, e)],
    };
    if !report.logged_in {
        let msg = report.error.unwrap_or_else(|| "not logged in".into());
        return vec![Finding::fail(check, msg).help(login)];
    }
    let mut out: Vec<Finding> = report
        .cannot_post
        .iter()
        .map(|line| Finding::fail(check.clone(), line.clone()).help(login.clone()))
        .collect();
    match (report.accepted, report.tiktok_user, report.error) {
        (Some(true), Some(who), _) => {
            if report.login_expires_soon {
                out.push(
                    Finding::warn(
                        check.clone(),
                        format!("TikTok accepts it ({who}), but the login expires soon"),
                    )
                    .help(login),
                );
            } else if out.is_empty() {
                out.push(Finding::ok(
                    check,
                    format!(
                        "TikTok accepts it: {who}; scopes {}",
                        report.scopes.join(", ")
                    ),
                ));
            }
        }
        (Some(false), _, Some(e)) => {
            out.push(Finding::fail(check, format!("TikTok refuses the login: {e}")).help(login))
        }
        (_, _, Some(e)) => out.push(
            Finding::fail(check, format!("could not ask TikTok: {e}"))
                .help("check the network and tiktok.api_base, then run tokdrop doctor again"),
        ),
        _ => {}
    }
    out
}
