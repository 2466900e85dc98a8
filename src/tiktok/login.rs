//! The OAuth 2 login (tiktok-api.md §3.2–3.4): the authorize URL with TikTok's hex PKCE
//! challenge and a CSRF `state`, the redirect received either by a one-shot loopback listener
//! ([`loopback`]) or pasted by the user (a redirected URL or a bare code), the code exchange
//! and storing the tokens through [`TokenManager::store_grant`]. Printing the URL and reading
//! stdin are the caller's; this module takes and returns plain values.

use std::time::Duration;

use super::error::ApiError;
use super::pkce::{ChallengeEncoding, Pkce, RandomError, random_state};
use super::secret::Secret;
use super::tokens::{AuthError, TokenManager};
use super::wire;

pub mod loopback;

pub use loopback::LoopbackListener;

/// What a login needs to know; plain values from tokdrop's config.
#[derive(Debug, Clone)]
pub struct LoginConfig {
    /// `https://www.tiktok.com`, or the emulator's base URL.
    pub auth_base: String,
    pub client_key: String,
    /// Exactly as registered; repeated verbatim in the token exchange.
    pub redirect_uri: String,
    /// Scopes tokdrop needs (`user.info.basic`, `video.publish`, `video.upload`).
    pub scopes: Vec<String>,
    /// How the PKCE challenge is written (`tiktok.pkce_challenge`).
    pub pkce: ChallengeEncoding,
}

/// Why a login failed. Never holds the code, the verifier or a token.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("tiktok.auth_base {0:?} is not a valid URL")]
    AuthBase(String),
    #[error("tiktok.redirect_uri {uri:?} {reason}")]
    RedirectUri { uri: String, reason: &'static str },
    #[error(
        "cannot listen on {addr} for the login redirect: {source}; free the port or use --no-listen"
    )]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "no login redirect arrived within {0:?}; run the command again, or use --no-listen and paste the address"
    )]
    Timeout(Duration),
    #[error(
        "the redirect's state does not belong to this login (an old browser tab or a forged request); run the command again"
    )]
    StateMismatch,
    #[error("TikTok did not authorize tokdrop: {error}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Denied { error: String, description: String },
    #[error("no authorization code in {0}; paste the whole address the browser ended on")]
    NoCode(&'static str),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("exchanging the authorization code failed: {0}")]
    Exchange(ApiError),
    #[error(transparent)]
    Store(AuthError),
    #[error(
        "cannot wait for the media server's hand-over in {0}; check that state_dir is writable by this user (run as the service user)"
    )]
    Handoff(String),
}

/// The authorization code and the scopes the redirect says were granted.
#[derive(Debug, Clone)]
pub struct Callback {
    pub code: Secret,
    /// `scopes` of the redirect; `None` for a pasted bare code.
    pub scopes: Option<Vec<String>>,
}

/// A finished login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOutcome {
    pub open_id: String,
    /// Scopes of the token answer (the user may have deselected some).
    pub granted: Vec<String>,
    /// Needed scopes that were not granted; non-empty means some posting will fail.
    pub missing: Vec<String>,
}

/// `{auth_base}/v2/auth/authorize/?client_key=..&response_type=code&scope=a,b&redirect_uri=..
/// &state=..&code_challenge=<hex>&code_challenge_method=S256`.
pub fn authorize_url(
    config: &LoginConfig,
    redirect_uri: &str,
    state: &str,
    code_challenge: &str,
) -> Result<String, LoginError> {
    let base = format!(
        "{}{}",
        config.auth_base.trim_end_matches('/'),
        wire::AUTHORIZE
    );
    let mut url =
        url::Url::parse(&base).map_err(|_| LoginError::AuthBase(config.auth_base.clone()))?;
    url.query_pairs_mut()
        .append_pair("client_key", &config.client_key)
        .append_pair("response_type", "code")
        .append_pair("scope", &config.scopes.join(","))
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("code_challenge", code_challenge)
        .append_pair("code_challenge_method", "S256");
    Ok(url.to_string())
}

/// One login attempt: its PKCE verifier, `state` and authorize URL.
#[derive(Debug)]
pub struct PendingLogin {
    url: String,
    state: String,
    pkce: Pkce,
    redirect_uri: String,
    scopes: Vec<String>,
}

impl PendingLogin {
    /// A fresh verifier and state for `config`, redirecting to `redirect_uri` (the
    /// configured one, or the loopback listener's when it picked the port).
    pub fn new(config: &LoginConfig, redirect_uri: &str) -> Result<Self, LoginError> {
        let pkce = Pkce::generate_with(config.pkce)?;
        let state = random_state()?;
        let url = authorize_url(config, redirect_uri, &state, &pkce.challenge)?;
        Ok(Self {
            url,
            state,
            pkce,
            redirect_uri: redirect_uri.to_string(),
            scopes: config.scopes.clone(),
        })
    }

    /// The URL to open in a browser.
    pub fn authorize_url(&self) -> &str {
        &self.url
    }

    pub fn state(&self) -> &str {
        &self.state
    }

    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// Reads a pasted line: the whole redirected URL, its query string, or a bare code.
    /// A URL's `state` must be this login's when it has one.
    pub fn parse_pasted(&self, input: &str) -> Result<Callback, LoginError> {
        let input = input.trim();
        if input.starts_with("http://") || input.starts_with("https://") {
            let url =
                url::Url::parse(input).map_err(|_| LoginError::NoCode("the pasted address"))?;
            return callback_from_query(url.query().unwrap_or(""), Some(&self.state), false);
        }
        if input.contains("code=") || input.contains("error=") {
            return callback_from_query(input.trim_start_matches('?'), Some(&self.state), false);
        }
        if input.is_empty() || input.chars().any(char::is_whitespace) {
            return Err(LoginError::NoCode("the pasted text"));
        }
        let code = percent_decode(input);
        Ok(Callback {
            code: Secret::new(code),
            scopes: None,
        })
    }

    /// Exchanges the code (with this login's verifier and exact redirect URI) and stores the
    /// tokens for `account`.
    pub async fn finish(
        self,
        tokens: &TokenManager,
        account: &str,
        callback: Callback,
    ) -> Result<LoginOutcome, LoginError> {
        let grant = tokens
            .client()
            .exchange_code(&callback.code, &self.pkce.verifier, &self.redirect_uri)
            .await
            .map_err(LoginError::Exchange)?;
        let file = tokens
            .store_grant(account, &grant)
            .await
            .map_err(LoginError::Store)?;
        let granted = grant.scopes();
        let missing: Vec<String> = self
            .scopes
            .iter()
            .filter(|s| !granted.contains(s))
            .cloned()
            .collect();
        if !missing.is_empty() {
            tracing::warn!(account, missing = ?missing, "the TikTok login did not grant every needed scope; run `tokdrop auth login` again and allow them");
        }
        Ok(LoginOutcome {
            open_id: file.open_id,
            granted,
            missing,
        })
    }
}

/// Reads a redirect's query: `error` means refused; otherwise a `code` is needed. With
/// `expected_state`, a present `state` must match, and with `state_required` it must exist.
pub fn callback_from_query(
    query: &str,
    expected_state: Option<&str>,
    state_required: bool,
) -> Result<Callback, LoginError> {
    let mut code = None;
    let mut state = None;
    let mut scopes = None;
    let mut error = None;
    let mut description = String::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "code" => code = Some(value.into_owned()),
            "state" => state = Some(value.into_owned()),
            "scopes" => scopes = Some(wire::split_scopes(&value)),
            "error" => error = Some(value.into_owned()),
            "error_description" => description = value.into_owned(),
            _ => {}
        }
    }
    if let Some(expected) = expected_state {
        let ok = match &state {
            Some(s) => s == expected,
            None => !state_required,
        };
        if !ok {
            return Err(LoginError::StateMismatch);
        }
    }
    if let Some(error) = error {
        return Err(LoginError::Denied { error, description });
    }
    let code = code
        .filter(|c| !c.is_empty())
        .ok_or(LoginError::NoCode("the redirect"))?;
    Ok(Callback {
        code: Secret::new(code),
        scopes,
    })
}

/// Decodes `%XX` escapes of a bare code copied from an address bar.
fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("c={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests;
