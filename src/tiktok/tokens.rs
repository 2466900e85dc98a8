//! `TokenManager`: hands out a valid access token per account and refreshes it ahead of expiry
//! (tiktok-api.md §3.5 rules 1–4). Refreshes of one account are serialized in this process (a
//! per-account async mutex) and across processes (the token store's file lock), the file is
//! re-read under the lock so a refresh done elsewhere is reused, and the rotated refresh token
//! is written before the new access token is handed out. A rejected refresh token puts the
//! account in "needs login" until its token file changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::client::Client;
use super::error::{AccountPause, ApiError, Endpoint, ErrorClass};
use super::secret::Secret;
use super::token_store::{StoreError, TokenFile, TokenStore};
use super::wire::TokenResponse;

/// Refresh when less than this much access lifetime is left.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(600);
/// Warn when the refresh token (the login) ends within this.
pub const LOGIN_EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// Why no access token could be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("account '{account}' is not logged in; run `tokdrop auth login --account {account}`")]
    NotLoggedIn { account: String },
    #[error(
        "account '{account}' must log in again (`tokdrop auth login --account {account}`): {reason}"
    )]
    NeedsLogin { account: String, reason: String },
    #[error("account '{account}': refreshing the access token failed: {source}")]
    Refresh { account: String, source: ApiError },
    #[error("account '{account}': {source}")]
    Store { account: String, source: StoreError },
}

impl AuthError {
    /// Consequence, in the same terms as [`ApiError::class`].
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::NotLoggedIn { .. } | Self::NeedsLogin { .. } => {
                ErrorClass::AccountWide(AccountPause::NeedsLogin)
            }
            Self::Refresh { source, .. } => source.class(),
            Self::Store {
                source: StoreError::Corrupt { .. } | StoreError::InvalidAccount { .. },
                ..
            } => ErrorClass::AccountWide(AccountPause::NeedsLogin),
            Self::Store { .. } => ErrorClass::Transient { retry_after: None },
        }
    }
}

/// What `tokdrop auth status` shows about an account's tokens: no secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub open_id: String,
    pub scopes: Vec<String>,
    pub access_expires_at: Timestamp,
    pub refresh_expires_at: Timestamp,
    /// The login ends within 14 days.
    pub login_expires_soon: bool,
}

#[derive(Debug, Default)]
struct AccountSlot {
    /// Fingerprint of a refresh token TikTok rejected; cleared when the file holds another.
    rejected_refresh: Option<(String, String)>,
    warned_login_expiry: bool,
}

/// Access tokens for every account in one token folder.
#[derive(Debug)]
pub struct TokenManager {
    client: Client,
    store: TokenStore,
    refresh_margin: Duration,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<AccountSlot>>>>,
}

fn elapsed_to(later: Timestamp, now: Timestamp) -> SignedDuration {
    later.duration_since(now)
}

impl TokenManager {
    pub fn new(client: Client, store: TokenStore) -> Self {
        Self {
            client,
            store,
            refresh_margin: REFRESH_MARGIN,
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn store(&self) -> &TokenStore {
        &self.store
    }

    fn slot(&self, account: &str) -> Arc<tokio::sync::Mutex<AccountSlot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(account.to_string()).or_default().clone()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        account: &str,
        f: impl FnOnce(TokenStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, AuthError> {
        let store = self.store.clone();
        let result = tokio::task::spawn_blocking(move || f(store))
            .await
            .map_err(|e| StoreError::Io {
                path: self.store.dir().to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })
            .and_then(|r| r);
        result.map_err(|source| AuthError::Store {
            account: account.to_string(),
            source,
        })
    }

    async fn load(&self, account: &str) -> Result<TokenFile, AuthError> {
        let name = account.to_string();
        self.blocking(account, move |s| s.load(&name))
            .await?
            .ok_or_else(|| AuthError::NotLoggedIn {
                account: account.to_string(),
            })
    }

    /// A valid access token for `account`, refreshed first when it expires within 10 minutes.
    pub async fn access_token(&self, account: &str) -> Result<Secret, AuthError> {
        let slot = self.slot(account);
        let mut slot = slot.lock().await;
        let file = self.load(account).await?;
        self.check_rejected(account, &mut slot, &file)?;
        self.warn_login_expiry(account, &mut slot, &file);
        if elapsed_to(file.access_expires_at, Timestamp::now()) > self.margin() {
            return Ok(file.access_token);
        }
        self.refresh_locked(account, &mut slot, None).await
    }

    /// TikTok refused `rejected` (`access_token_invalid`): refresh once, unless another caller
    /// already replaced it, and return the token to retry with.
    pub async fn refresh_rejected(
        &self,
        account: &str,
        rejected: &Secret,
    ) -> Result<Secret, AuthError> {
        let slot = self.slot(account);
        let mut slot = slot.lock().await;
        let file = self.load(account).await?;
        self.check_rejected(account, &mut slot, &file)?;
        self.refresh_locked(account, &mut slot, Some(rejected))
            .await
    }

    /// Writes the tokens of a new login (after the code exchange) and clears "needs login".
    pub async fn store_grant(
        &self,
        account: &str,
        grant: &TokenResponse,
    ) -> Result<TokenFile, AuthError> {
        let slot = self.slot(account);
        let mut slot = slot.lock().await;
        let file = TokenFile::from_grant(grant, Timestamp::now(), None);
        let (name, content) = (account.to_string(), file.clone());
        self.blocking(account, move |s| {
            let _lock = s.lock(&name)?;
            s.save(&name, &content)
        })
        .await?;
        *slot = AccountSlot::default();
        tracing::info!(account, open_id = %file.open_id, "login stored");
        Ok(file)
    }

    /// What is known about the account's tokens, without secrets; `None` if never logged in.
    pub async fn info(&self, account: &str) -> Result<Option<TokenInfo>, AuthError> {
        let name = account.to_string();
        let file = self.blocking(account, move |s| s.load(&name)).await?;
        Ok(file.map(|f| TokenInfo {
            scopes: f.scopes(),
            login_expires_soon: self.login_expires_soon(&f),
            open_id: f.open_id,
            access_expires_at: f.access_expires_at,
            refresh_expires_at: f.refresh_expires_at,
        }))
    }

    /// Revokes the login at TikTok and deletes the token file. When the revoke fails the file
    /// is kept (and the error returned) unless `force`.
    pub async fn logout(&self, account: &str, force: bool) -> Result<bool, AuthError> {
        let slot = self.slot(account);
        let mut slot = slot.lock().await;
        let Some(file) = self
            .blocking(account, {
                let name = account.to_string();
                move |s| s.load(&name)
            })
            .await?
        else {
            return Ok(false);
        };
        if let Err(source) = self.revoke_grant(account, &mut slot, file).await {
            if !force {
                return Err(AuthError::Refresh {
                    account: account.to_string(),
                    source,
                });
            }
            tracing::warn!(account, error = %source, "revoke failed; deleting the token file anyway");
        }
        let name = account.to_string();
        self.blocking(account, move |s| {
            let _lock = s.lock(&name)?;
            s.delete(&name)
        })
        .await
    }

    /// Revokes with a live access token: TikTok only accepts one (tiktok-api.md §3.6), and
    /// access tokens live 2 hours, so an expired one is refreshed first, and one TikTok refuses
    /// is refreshed once and tried again.
    async fn revoke_grant(
        &self,
        account: &str,
        slot: &mut AccountSlot,
        file: TokenFile,
    ) -> Result<(), ApiError> {
        let as_api = |e: AuthError| match e {
            AuthError::Refresh { source, .. } => source,
            other => ApiError {
                endpoint: Endpoint::Refresh,
                http_status: None,
                code: "refresh_failed".into(),
                message: other.to_string(),
                log_id: None,
                retry_after: None,
            },
        };
        let mut token = file.access_token;
        if elapsed_to(file.access_expires_at, Timestamp::now()) <= self.margin() {
            token = self
                .refresh_locked(account, slot, None)
                .await
                .map_err(as_api)?;
        }
        match self.client.revoke(&token).await {
            Err(e) if matches!(e.code.as_str(), "invalid_request" | "access_token_invalid") => {
                let fresh = self
                    .refresh_locked(account, slot, Some(&token))
                    .await
                    .map_err(as_api)?;
                self.client.revoke(&fresh).await
            }
            other => other,
        }
    }

    fn margin(&self) -> SignedDuration {
        SignedDuration::try_from(self.refresh_margin).unwrap_or(SignedDuration::MAX)
    }

    fn login_expires_soon(&self, file: &TokenFile) -> bool {
        let limit = SignedDuration::try_from(LOGIN_EXPIRY_WARNING).unwrap_or(SignedDuration::MAX);
        elapsed_to(file.refresh_expires_at, Timestamp::now()) < limit
    }

    fn warn_login_expiry(&self, account: &str, slot: &mut AccountSlot, file: &TokenFile) {
        if !slot.warned_login_expiry && self.login_expires_soon(file) {
            slot.warned_login_expiry = true;
            tracing::warn!(
                account,
                refresh_expires_at = %file.refresh_expires_at,
                "the TikTok login ends soon; run `tokdrop auth login --account {account}` before then"
            );
        }
    }

    fn check_rejected(
        &self,
        account: &str,
        slot: &mut AccountSlot,
        file: &TokenFile,
    ) -> Result<(), AuthError> {
        match &slot.rejected_refresh {
            Some((fingerprint, reason)) if *fingerprint == file.refresh_token.fingerprint() => {
                Err(AuthError::NeedsLogin {
                    account: account.to_string(),
                    reason: reason.clone(),
                })
            }
            Some(_) => {
                // Someone logged in again since (another process wrote the file).
                slot.rejected_refresh = None;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Refreshes under the cross-process lock. With `rejected`, refreshes only if the file
    /// still holds that access token; without, only if it is still close to expiry.
    async fn refresh_locked(
        &self,
        account: &str,
        slot: &mut AccountSlot,
        rejected: Option<&Secret>,
    ) -> Result<Secret, AuthError> {
        let name = account.to_string();
        let lock = self.blocking(account, move |s| s.lock(&name)).await?;
        let file = self.load(account).await?;
        let now = Timestamp::now();
        let still_needed = match rejected {
            Some(rejected) => file.access_token == *rejected,
            None => elapsed_to(file.access_expires_at, now) <= self.margin(),
        };
        if !still_needed {
            return Ok(file.access_token);
        }
        if file.refresh_expires_at <= now {
            return Err(self.needs_login(account, slot, &file, "the refresh token has expired"));
        }
        match self.client.refresh(&file.refresh_token).await {
            Ok(grant) => {
                let new = TokenFile::from_grant(&grant, now, Some(&file));
                let (name, content) = (account.to_string(), new.clone());
                // Persist the rotated refresh token before anyone uses the new access token.
                self.blocking(account, move |s| s.save(&name, &content))
                    .await?;
                drop(lock);
                tracing::info!(account, access_expires_at = %new.access_expires_at, "access token refreshed");
                Ok(new.access_token)
            }
            Err(source) if source.class() == ErrorClass::AccountWide(AccountPause::NeedsLogin) => {
                let reason = format!("TikTok rejected the refresh token ({source})");
                Err(self.needs_login(account, slot, &file, &reason))
            }
            Err(source) => Err(AuthError::Refresh {
                account: account.to_string(),
                source,
            }),
        }
    }

    fn needs_login(
        &self,
        account: &str,
        slot: &mut AccountSlot,
        file: &TokenFile,
        reason: &str,
    ) -> AuthError {
        tracing::warn!(account, reason, "account needs `tokdrop auth login`");
        slot.rejected_refresh = Some((file.refresh_token.fingerprint(), reason.to_string()));
        AuthError::NeedsLogin {
            account: account.to_string(),
            reason: reason.to_string(),
        }
    }
}
