//! `tokdrop auth login | status | logout` (SPEC §1): the user-facing side of authorization.
//! The OAuth mechanics live in `tiktok::login` and `tiktok::tokens`; this module builds them
//! from the config, talks to the user and picks the exit code.

use std::io::BufRead;
use std::time::Duration;

use crate::cli::{EXIT_FAILED, EXIT_OK};
use crate::config::Config;
use crate::service;
use crate::tiktok::client::{Client, ClientConfig};
use crate::tiktok::login::{LoginConfig, LoopbackListener, PendingLogin};
use crate::tiktok::token_store::TokenStore;
use crate::tiktok::tokens::TokenManager;

/// Exit code when an account needs `tokdrop auth login`.
pub const EXIT_NEEDS_LOGIN: u8 = 3;
/// How long `auth login` waits for the browser.
const LOGIN_WAIT: Duration = Duration::from_secs(600);

fn tokens(config: &Config) -> Result<TokenManager, String> {
    let secret = service::client_secret(config).map_err(|e| e.to_string())?;
    let mut cc = ClientConfig::new(
        config.tiktok.api_base.as_str().trim_end_matches('/'),
        config.tiktok.client_key.clone(),
        secret,
    );
    cc.extra_ca_pem = config.tiktok.ca_file.clone();
    let client = Client::new(cc).map_err(|e| format!("cannot set up the TikTok client: {e}"))?;
    Ok(TokenManager::new(
        client,
        TokenStore::new(config.state_dir.join("tokens")),
    ))
}

/// `tokdrop auth login`: prints the authorize URL alone on one stdout line, then waits for the
/// redirect on the loopback redirect_uri (or reads the pasted URL / code from stdin).
pub async fn login(config: &Config, account: &str, no_listen: bool) -> u8 {
    let tokens = match tokens(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokdrop: {e}");
            return EXIT_FAILED;
        }
    };
    let _ = std::fs::create_dir_all(&config.state_dir);
    let lc = LoginConfig {
        auth_base: config
            .tiktok
            .auth_base
            .as_str()
            .trim_end_matches('/')
            .to_string(),
        client_key: config.tiktok.client_key.clone(),
        redirect_uri: config.tiktok.redirect_uri.to_string(),
        scopes: config.tiktok.scopes.clone(),
    };
    let result = if no_listen {
        let pending = match PendingLogin::new(&lc, &lc.redirect_uri) {
            Ok(p) => p,
            Err(e) => return fail(&e),
        };
        println!("{}", pending.authorize_url());
        eprintln!(
            "Open the address above in a browser logged in to the TikTok account '{account}', approve, then paste the address the browser ends on (or just the code) here:"
        );
        let mut line = String::new();
        if std::io::stdin().lock().read_line(&mut line).is_err() || line.trim().is_empty() {
            eprintln!("tokdrop: nothing was pasted; login cancelled");
            return EXIT_FAILED;
        }
        match pending.parse_pasted(line.trim()) {
            Ok(cb) => pending.finish(&tokens, account, cb).await,
            Err(e) => Err(e),
        }
    } else {
        let listener = match LoopbackListener::bind(&lc.redirect_uri).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "tokdrop: {e}\n  help: use --no-listen to paste the redirected address instead"
                );
                return EXIT_FAILED;
            }
        };
        let pending = match PendingLogin::new(&lc, listener.redirect_uri()) {
            Ok(p) => p,
            Err(e) => return fail(&e),
        };
        println!("{}", pending.authorize_url());
        eprintln!(
            "Open the address above in a browser logged in to the TikTok account '{account}' and approve; waiting for TikTok's redirect on {} (up to {}).",
            listener.redirect_uri(),
            crate::duration::format(LOGIN_WAIT)
        );
        let state = pending.state().to_string();
        match listener.wait(&state, LOGIN_WAIT).await {
            Ok(cb) => pending.finish(&tokens, account, cb).await,
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(outcome) => {
            eprintln!(
                "Logged in: account '{account}' is TikTok user {} with scopes {}.",
                outcome.open_id,
                outcome.granted.join(", ")
            );
            if !outcome.missing.is_empty() {
                eprintln!(
                    "warning: TikTok did not grant {}.",
                    outcome.missing.join(", ")
                );
            }
            let unmet = unmet_needs(config, account, &outcome.granted);
            for line in &unmet {
                eprintln!("warning: {line}");
            }
            if !outcome.missing.is_empty() || !unmet.is_empty() {
                eprintln!(
                    "  help: run tokdrop auth login --account {account} again and leave every permission switched on (and check that the app is approved for these scopes in the TikTok developer portal)"
                );
            }
            EXIT_OK
        }
        Err(e) => fail(&e),
    }
}

/// One line per folder of `account` whose mode needs a scope that is not in `granted`.
pub fn unmet_needs(config: &Config, account: &str, granted: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for (scope, folders) in config.needed_scopes(account) {
        if granted.iter().any(|g| g == scope) {
            continue;
        }
        for w in folders {
            lines.push(format!(
                "{} ({} mode) cannot post: it needs the scope {scope}, which this login was not granted",
                crate::diagnostic::display_path(&w.path),
                w.mode
            ));
        }
    }
    lines
}

fn fail(e: &dyn std::fmt::Display) -> u8 {
    eprintln!("tokdrop: login failed: {e}");
    EXIT_FAILED
}

/// `tokdrop auth status`: every account, its grant and whether TikTok accepts it.
pub async fn status(config: &Config) -> u8 {
    let tokens = match tokens(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokdrop: {e}");
            return EXIT_FAILED;
        }
    };
    let mut code = EXIT_OK;
    let now = jiff::Timestamp::now();
    for account in config.accounts() {
        match tokens.info(account).await {
            Ok(None) => {
                println!(
                    "{account}: not logged in\n  help: tokdrop auth login --account {account}"
                );
                code = EXIT_NEEDS_LOGIN;
                continue;
            }
            Err(e) => {
                println!("{account}: {e}");
                code = EXIT_NEEDS_LOGIN;
                continue;
            }
            Ok(Some(info)) => {
                let days = info.refresh_expires_at.duration_since(now).as_secs() / 86_400;
                println!("{account}: TikTok user {}", info.open_id);
                println!("  scopes: {}", info.scopes.join(", "));
                println!(
                    "  access token valid until {}",
                    info.access_expires_at
                        .round(jiff::Unit::Second)
                        .unwrap_or(info.access_expires_at)
                );
                println!(
                    "  login valid until {} ({days} days){}",
                    info.refresh_expires_at
                        .round(jiff::Unit::Second)
                        .unwrap_or(info.refresh_expires_at),
                    if info.login_expires_soon {
                        " — log in again soon"
                    } else {
                        ""
                    }
                );
            }
        }
        let granted = tokens
            .info(account)
            .await
            .ok()
            .flatten()
            .map(|i| i.scopes)
            .unwrap_or_default();
        let unmet = unmet_needs(config, account, &granted);
        for line in &unmet {
            println!("  {line}\n  help: tokdrop auth login --account {account}");
            code = EXIT_NEEDS_LOGIN;
        }
        // creator_info needs video.publish; an inbox-only login is checked with user/info.
        let direct = config
            .needed_scopes(account)
            .iter()
            .any(|(s, _)| *s == "video.publish");
        let check = if direct && granted.iter().any(|s| s == "video.publish") {
            tokens
                .with_token(account, |t| {
                    let client = tokens.client().clone();
                    async move { client.creator_info(&t).await }
                })
                .await
                .map(|ci| {
                    format!(
                        "@{} ({}), may post videos up to {} s",
                        ci.creator_username, ci.creator_nickname, ci.max_video_post_duration_sec
                    )
                })
        } else {
            let fields = if granted.iter().any(|s| s == "user.info.profile") {
                "open_id,display_name,username"
            } else {
                "open_id,display_name"
            };
            tokens
                .with_token(account, |t| {
                    let client = tokens.client().clone();
                    async move { client.user_info_fields(&t, fields).await }
                })
                .await
                .map(|u| {
                    let shown = u.display_name.clone().unwrap_or(u.open_id.clone());
                    match u.username.as_deref() {
                        Some(name) if !name.is_empty() => format!("@{name} ({shown})"),
                        _ => shown,
                    }
                })
        };
        match check {
            Ok(who) => println!("  TikTok accepts it: {who}"),
            Err(e) => match e.class() {
                crate::tiktok::error::ErrorClass::Auth(_)
                | crate::tiktok::error::ErrorClass::AccountWide(
                    crate::tiktok::error::AccountPause::NeedsLogin,
                ) => {
                    println!(
                        "  TikTok refuses it: {e}\n  help: tokdrop auth login --account {account}"
                    );
                    code = EXIT_NEEDS_LOGIN;
                }
                _ => {
                    println!("  could not ask TikTok: {e}");
                    if code == EXIT_OK {
                        code = EXIT_FAILED;
                    }
                }
            },
        }
    }
    code
}

/// `tokdrop auth logout`: revoke at TikTok, then delete the token file.
pub async fn logout(config: &Config, account: &str, force: bool) -> u8 {
    let tokens = match tokens(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokdrop: {e}");
            return EXIT_FAILED;
        }
    };
    match tokens.logout(account, force).await {
        Ok(true) => {
            eprintln!(
                "Logged out: the authorization of '{account}' was revoked and its token file deleted."
            );
            EXIT_OK
        }
        Ok(false) => {
            eprintln!("'{account}' was not logged in; nothing to do.");
            EXIT_OK
        }
        Err(e) => {
            eprintln!(
                "tokdrop: could not revoke the login at TikTok: {e}\n  help: the token file is kept; retry later, or use --force to delete it anyway"
            );
            EXIT_FAILED
        }
    }
}
