//! "Call with a fresh access token; if TikTok refuses it (`access_token_invalid`), refresh once
//! and try once more" (tiktok-api.md §3.5 rule 3), as [`TokenManager::with_token`]. The
//! publisher wraps each API call in it; what to do with the remaining errors is the caller's.

use std::fmt;

use super::error::{ApiError, AuthAction, ErrorClass, InitError};
use super::secret::Secret;
use super::tokens::{AuthError, TokenManager};

/// An error that can say "TikTok refused the access token".
pub trait TokenRejection {
    /// The access token was refused: a refresh may help.
    fn token_rejected(&self) -> bool;
    /// Consequence, as [`ApiError::class`].
    fn class(&self) -> ErrorClass;
}

impl TokenRejection for ApiError {
    fn token_rejected(&self) -> bool {
        ApiError::class(self) == ErrorClass::Auth(AuthAction::RefreshOnce)
    }

    fn class(&self) -> ErrorClass {
        ApiError::class(self)
    }
}

impl TokenRejection for InitError {
    /// Only an answered init: a lost answer is never repeated (SPEC §4).
    fn token_rejected(&self) -> bool {
        match self {
            Self::NotCreated(e) => e.token_rejected(),
            Self::MaybeSent(_) => false,
        }
    }

    fn class(&self) -> ErrorClass {
        self.api_error().class()
    }
}

/// Failure of [`TokenManager::with_token`].
#[derive(Debug)]
pub enum AuthorizedError<E> {
    /// No token could be had (not logged in, refresh rejected, token file trouble).
    Auth(AuthError),
    /// The call failed for another reason.
    Call(E),
    /// TikTok refused the freshly refreshed token too: the login is unusable.
    RejectedAfterRefresh(E),
}

impl<E: TokenRejection> AuthorizedError<E> {
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Auth(e) => e.class(),
            Self::Call(e) => e.class(),
            Self::RejectedAfterRefresh(_) => ErrorClass::Auth(AuthAction::Relogin),
        }
    }
}

impl<E: fmt::Display> fmt::Display for AuthorizedError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth(e) => write!(f, "{e}"),
            Self::Call(e) => write!(f, "{e}"),
            Self::RejectedAfterRefresh(e) => write!(
                f,
                "{e}; TikTok also refused the refreshed access token, run `tokdrop auth login`"
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for AuthorizedError<E> {}

impl TokenManager {
    /// Runs `call` with `account`'s access token (refreshed ahead of expiry). When TikTok
    /// refuses the token, refreshes once (serialized with every other refresh of the account)
    /// and runs `call` once more with the new token.
    pub async fn with_token<T, E, F, Fut>(
        &self,
        account: &str,
        mut call: F,
    ) -> Result<T, AuthorizedError<E>>
    where
        F: FnMut(Secret) -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: TokenRejection,
    {
        let token = self
            .access_token(account)
            .await
            .map_err(AuthorizedError::Auth)?;
        match call(token.clone()).await {
            Err(e) if e.token_rejected() => {
                tracing::info!(
                    account,
                    "TikTok refused the access token; refreshing it once"
                );
                let fresh = self
                    .refresh_rejected(account, &token)
                    .await
                    .map_err(AuthorizedError::Auth)?;
                match call(fresh).await {
                    Err(e) if e.token_rejected() => Err(AuthorizedError::RejectedAfterRefresh(e)),
                    other => other.map_err(AuthorizedError::Call),
                }
            }
            other => other.map_err(AuthorizedError::Call),
        }
    }
}
