//! `tokdrop auth login | status | logout` (SPEC §1): the user-facing side of authorization.
//! The OAuth mechanics live in `tiktok::login` and `tiktok::tokens`; this module builds them
//! from the config, talks to the user and picks the exit code.

use std::io::BufRead;
use std::time::Duration;

use crate::commands::cli::{EXIT_FAILED, EXIT_OK};
use crate::config::Config;
use crate::service;
use crate::tiktok::client::{Client, ClientConfig};
use crate::tiktok::login::{LoginConfig, LoginError, LoopbackListener, PendingLogin};
use crate::tiktok::token_store::TokenStore;
use crate::tiktok::tokens::TokenManager;

/// Exit code when an account needs `tokdrop auth login`.
pub const EXIT_NEEDS_LOGIN: u8 = 3;
/// How long `auth login` waits for the browser.
const LOGIN_WAIT: Duration = Duration::from_secs(600);
/// How often a Web-platform login looks for the answer the media server handed over.
const HANDOFF_POLL: Duration = Duration::from_millis(200);

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
    let _ = crate::support::fsops::create_private_dir(&config.state_dir);
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
        pkce: config.tiktok.pkce_challenge,
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
    } else if config.callback_path().is_some() {
        web_login(config, &lc, &tokens, account).await
    } else {
        let listener = match LoopbackListener::bind(&lc.redirect_uri).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "tokdrop: {e}\n  help: a Web-platform app's redirect URI must lie under server.public_url (e.g. {}oauth/callback/) so tokdrop's media server can answer it; otherwise use --no-listen to paste the redirected address",
                    config.server.public_url
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
            crate::support::duration::format(LOGIN_WAIT)
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

/// The Web-platform login: TikTok redirects to `redirect_uri` under `public_url`, answered by
/// the running service's media server or, when it is stopped, by one started here on
/// `server.listen`; either hands the answer over through `state_dir` ([`crate::serve::handoff`]).
async fn web_login(
    config: &Config,
    lc: &LoginConfig,
    tokens: &TokenManager,
    account: &str,
) -> Result<crate::tiktok::login::LoginOutcome, LoginError> {
    let pending = PendingLogin::new(lc, &lc.redirect_uri)?;
    let waiting = crate::serve::handoff::Waiting::register(&config.state_dir, pending.state())
        .map_err(|e| {
            LoginError::Handoff(format!(
                "{}: {e}",
                config.state_dir.join(crate::serve::handoff::DIR).display()
            ))
        })?;
    let stop = tokio_util::sync::CancellationToken::new();
    let _stop_server = stop.clone().drop_guard();
    let who_answers = match config.server.listen {
        crate::config::Listen::Systemd => "the running service (systemd socket)".to_string(),
        crate::config::Listen::Addr(addr) => {
            match crate::serve::Server::bind(service::serve_config(config, false)).await {
                Ok(server) => {
                    tokio::spawn(server.run(
                        crate::serve::Registry::new(config.server.link_ttl),
                        stop.clone(),
                    ));
                    format!("tokdrop itself on {addr} (the service is not running)")
                }
                Err(crate::serve::ServeError::Bind { source, .. })
                    if source.kind() == std::io::ErrorKind::AddrInUse =>
                {
                    format!("the running service on {addr}")
                }
                Err(e) => {
                    eprintln!(
                        "warning: the service does not seem to be running and tokdrop cannot answer the redirect itself: {e}\n  help: start the service (systemctl start tokdrop), or use --no-listen"
                    );
                    format!("the service on {addr}, once it runs")
                }
            }
        }
    };
    println!("{}", pending.authorize_url());
    eprintln!(
        "Open the address above in a browser logged in to the TikTok account '{account}' and approve; TikTok's redirect to {} is answered by {who_answers} (waiting up to {}).",
        lc.redirect_uri,
        crate::support::duration::format(LOGIN_WAIT)
    );
    let deadline = tokio::time::Instant::now() + LOGIN_WAIT;
    let query = loop {
        match waiting.answer() {
            Ok(Some(query)) => break query,
            Ok(None) => {}
            Err(e) => return Err(LoginError::Handoff(e.to_string())),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(LoginError::Timeout(LOGIN_WAIT));
        }
        tokio::time::sleep(HANDOFF_POLL).await;
    };
    drop(waiting);
    let callback = crate::tiktok::login::callback_from_query(&query, Some(pending.state()), true)?;
    pending.finish(tokens, account, callback).await
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
                crate::support::diagnostic::display_path(&w.path),
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

/// One account as `auth status` sees it.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct AccountReport {
    pub(crate) account: String,
    pub(crate) logged_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) open_id: Option<String>,
    pub(crate) scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) access_expires_at: Option<jiff::Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) login_expires_at: Option<jiff::Timestamp>,
    pub(crate) login_expires_soon: bool,
    /// Folders a scope that was not granted keeps from posting.
    pub(crate) cannot_post: Vec<String>,
    /// TikTok accepted the login when asked (`None`: not asked).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) accepted: Option<bool>,
    /// Who TikTok says the user is, when it accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tiktok_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// `tokdrop auth login` would fix what is wrong.
    pub(crate) needs_login: bool,
}

/// `tokdrop auth status [--json]`: every account, its grant, the folders a missing scope keeps
/// from posting, and whether TikTok accepts it. Exit 3 when an account needs a login (or a
/// scope), 1 when TikTok could not be asked.
pub async fn status(config: &Config, json: bool) -> u8 {
    let tokens = match tokens(config) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tokdrop: {e}");
            return EXIT_FAILED;
        }
    };
    let mut code = EXIT_OK;
    for account in config.accounts() {
        let report = account_report(config, &tokens, account).await;
        if report.needs_login {
            code = EXIT_NEEDS_LOGIN;
        } else if report.error.is_some() && code == EXIT_OK {
            code = EXIT_FAILED;
        }
        if json {
            println!("{}", serde_json::to_string(&report).unwrap_or_default());
        } else {
            print_report(&report);
        }
    }
    code
}

/// One account checked as `auth status` does, for `tokdrop doctor`.
pub(crate) async fn check_account(config: &Config, account: &str) -> Result<AccountReport, String> {
    let tokens = tokens(config)?;
    Ok(account_report(config, &tokens, account).await)
}

async fn account_report(config: &Config, tokens: &TokenManager, account: &str) -> AccountReport {
    let mut r = AccountReport {
        account: account.to_string(),
        ..AccountReport::default()
    };
    let info = match tokens.info(account).await {
        Ok(Some(info)) => info,
        Ok(None) => {
            r.needs_login = true;
            return r;
        }
        Err(e) => {
            r.error = Some(e.to_string());
            r.needs_login = true;
            return r;
        }
    };
    r.logged_in = true;
    r.open_id = Some(info.open_id.clone());
    r.scopes = info.scopes.clone();
    r.access_expires_at = info.access_expires_at.round(jiff::Unit::Second).ok();
    r.login_expires_at = info.refresh_expires_at.round(jiff::Unit::Second).ok();
    r.login_expires_soon = info.login_expires_soon;
    r.cannot_post = unmet_needs(config, account, &info.scopes);
    r.needs_login = !r.cannot_post.is_empty();
    // creator_info needs video.publish; an inbox-only login is checked with user/info.
    let granted = &info.scopes;
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
        Ok(who) => {
            r.accepted = Some(true);
            r.tiktok_user = Some(who);
        }
        Err(e) => {
            let refused = matches!(
                e.class(),
                crate::tiktok::error::ErrorClass::Auth(_)
                    | crate::tiktok::error::ErrorClass::AccountWide(
                        crate::tiktok::error::AccountPause::NeedsLogin,
                    )
            );
            if refused {
                r.accepted = Some(false);
                r.needs_login = true;
            }
            r.error = Some(e.to_string());
        }
    }
    r
}

fn print_report(r: &AccountReport) {
    let account = &r.account;
    if !r.logged_in {
        match &r.error {
            Some(e) => println!("{account}: {e}"),
            None => println!("{account}: not logged in"),
        }
        println!("  help: tokdrop auth login --account {account}");
        return;
    }
    println!(
        "{account}: TikTok user {}",
        r.open_id.as_deref().unwrap_or("?")
    );
    println!("  scopes: {}", r.scopes.join(", "));
    if let Some(at) = r.access_expires_at {
        println!("  access token valid until {at}");
    }
    if let Some(at) = r.login_expires_at {
        let days = at.duration_since(jiff::Timestamp::now()).as_secs() / 86_400;
        println!(
            "  login valid until {at} ({days} days){}",
            if r.login_expires_soon {
                " — log in again soon"
            } else {
                ""
            }
        );
    }
    for line in &r.cannot_post {
        println!("  {line}\n  help: tokdrop auth login --account {account}");
    }
    match (r.accepted, &r.tiktok_user, &r.error) {
        (Some(true), Some(who), _) => println!("  TikTok accepts it: {who}"),
        (Some(false), _, Some(e)) => {
            println!("  TikTok refuses it: {e}\n  help: tokdrop auth login --account {account}")
        }
        (_, _, Some(e)) => println!("  could not ask TikTok: {e}"),
        _ => {}
    }
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
