//! `ApiError`: one failed TikTok call (TikTok's `error.code`, `message`, `log_id`, or a tokdrop
//! code when no answer came), and its classification by consequence ([`ErrorClass`]): retry,
//! pause the account, re-authorize, or fail the item. The user-facing hints that go into result
//! files live here too, so every command explains a code the same way. `fail_reason` values of
//! FAILED statuses are explained in [`super::fail_reason`].

use std::fmt;
use std::time::Duration;

/// Which call failed; part of every error so messages and classification know the context
/// (`invalid_grant` means "log in again" on a code exchange but "account paused" on refresh).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    TokenExchange,
    Refresh,
    Revoke,
    UserInfo,
    CreatorInfo,
    VideoInit,
    InboxVideoInit,
    ContentInit,
    StatusFetch,
    Cancel,
    Upload,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Self::TokenExchange => "oauth token exchange",
            Self::Refresh => "oauth token refresh",
            Self::Revoke => "oauth revoke",
            Self::UserInfo => "user/info",
            Self::CreatorInfo => "creator_info",
            Self::VideoInit => "video/init",
            Self::InboxVideoInit => "inbox/video/init",
            Self::ContentInit => "content/init",
            Self::StatusFetch => "status/fetch",
            Self::Cancel => "cancel",
            Self::Upload => "upload",
        }
    }

    pub fn is_init(self) -> bool {
        matches!(
            self,
            Self::VideoInit | Self::InboxVideoInit | Self::ContentInit
        )
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// tokdrop's own codes, used in [`ApiError::code`] when TikTok gave none.
pub mod codes {
    /// No answer within the timeout.
    pub const TIMEOUT: &str = "timeout";
    /// Could not connect, or the connection broke.
    pub const CONNECTION: &str = "connection_failed";
    /// An answer that is not TikTok's JSON (HTTP status kept in `http_status`).
    pub const BAD_RESPONSE: &str = "bad_response";
    /// An HTTP error status without TikTok's JSON (class follows the status).
    pub const HTTP_ERROR: &str = "http_error";
    /// Chunk PUT answered 403: the upload_url's hour is over.
    pub const UPLOAD_EXPIRED: &str = "upload_url_expired";
    /// Chunk PUT answered 404: no upload task for this URL.
    pub const UPLOAD_NOT_FOUND: &str = "upload_not_found";
    /// Chunk PUT answered 416: the range does not match TikTok's progress.
    pub const UPLOAD_RANGE_MISMATCH: &str = "upload_range_mismatch";
    /// Chunk PUT answered 400: malformed headers or wrong length.
    pub const UPLOAD_REJECTED: &str = "upload_rejected";
    /// The upload file changed size since the chunk plan was made.
    pub const FILE_CHANGED: &str = "file_changed";
    /// Reading the upload file failed.
    pub const FILE_READ: &str = "file_read_failed";
    /// The caller stopped (the service is shutting down) before the request was sent or
    /// while it waited to try again: nothing new reached TikTok.
    pub const CANCELLED: &str = "cancelled";
}

/// A failed call. `code` is TikTok's `error.code` (or OAuth `error`), or one of [`codes`].
/// Holds no secrets: messages come from TikTok's answer or from transport errors with the URL
/// stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub endpoint: Endpoint,
    /// `None` when no HTTP answer arrived.
    pub http_status: Option<u16>,
    pub code: String,
    pub message: String,
    pub log_id: Option<String>,
    /// How long to wait before retrying, when known (429, `Retry-After`).
    pub retry_after: Option<Duration>,
}

impl std::error::Error for ApiError {}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TikTok {} failed: {}", self.endpoint, self.code)?;
        if let Some(status) = self.http_status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if let Some(log_id) = &self.log_id {
            write!(f, " [log_id {log_id}]")?;
        }
        Ok(())
    }
}

/// What the caller should do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Network trouble, 5xx, 429: back off and retry; never fails an item by itself.
    Transient { retry_after: Option<Duration> },
    /// The account cannot post for now: pause its queue, keep the items, re-check later.
    AccountWide(AccountPause),
    /// The token is the problem.
    Auth(AuthAction),
    /// This item cannot be posted as it is. `setup_problem` marks errors the user fixes in the
    /// TikTok developer portal or account settings, not in the item (verify the URL prefix,
    /// make the account private), so they are logged once as such.
    Item { setup_problem: bool },
}

/// Why an account is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountPause {
    DailyPostCap,
    PendingShareCap,
    ActiveUserCap,
    BannedFromPosting,
    /// The refresh token was rejected: only `tokdrop auth login` helps.
    NeedsLogin,
}

/// What to do about a token problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthAction {
    /// The access token was refused: refresh once and retry; if that fails, log in again.
    RefreshOnce,
    /// Scopes missing or the grant is unusable: `tokdrop auth login`.
    Relogin,
}

impl ApiError {
    /// An error for a call that got no usable answer.
    pub fn transport(endpoint: Endpoint, code: &str, message: impl Into<String>) -> Self {
        Self {
            endpoint,
            http_status: None,
            code: code.to_string(),
            message: message.into(),
            log_id: None,
            retry_after: None,
        }
    }

    pub fn class(&self) -> ErrorClass {
        let transient = ErrorClass::Transient {
            retry_after: self.retry_after,
        };
        let class = self.class_by_code(transient);
        // A refresh TikTok refuses for any lasting reason (not only `invalid_grant`) leaves the
        // account without tokens: pause it until a new login, never fail its items one by one.
        if self.endpoint == Endpoint::Refresh && !matches!(class, ErrorClass::Transient { .. }) {
            return ErrorClass::AccountWide(AccountPause::NeedsLogin);
        }
        class
    }

    fn class_by_code(&self, transient: ErrorClass) -> ErrorClass {
        match self.code.as_str() {
            "spam_risk_too_many_posts" => ErrorClass::AccountWide(AccountPause::DailyPostCap),
            "spam_risk_too_many_pending_share" => {
                ErrorClass::AccountWide(AccountPause::PendingShareCap)
            }
            "reached_active_user_cap" => ErrorClass::AccountWide(AccountPause::ActiveUserCap),
            "spam_risk_user_banned_from_posting" => {
                ErrorClass::AccountWide(AccountPause::BannedFromPosting)
            }
            "invalid_grant" if self.endpoint == Endpoint::Refresh => {
                ErrorClass::AccountWide(AccountPause::NeedsLogin)
            }
            "access_token_invalid" | "access_token_expired" | "token_expired" => {
                ErrorClass::Auth(AuthAction::RefreshOnce)
            }
            "scope_not_authorized"
            | "scope_permission_missed"
            | "invalid_grant"
            | "invalid_client"
            | "unauthorized_client"
            | "invalid_scope"
            | "access_denied" => ErrorClass::Auth(AuthAction::Relogin),
            "rate_limit_exceeded"
            | "internal_error"
            | "server_error"
            | "temporarily_unavailable" => transient,
            codes::TIMEOUT | codes::CONNECTION | codes::BAD_RESPONSE | codes::CANCELLED => {
                transient
            }
            "url_ownership_unverified"
            | "unaudited_client_can_only_post_to_private_accounts"
            | "app_version_check_failed" => ErrorClass::Item {
                setup_problem: true,
            },
            _ => match self.http_status {
                Some(429) => transient,
                Some(s) if s >= 500 => transient,
                _ => ErrorClass::Item {
                    setup_problem: false,
                },
            },
        }
    }

    /// What the user can do, in one sentence, for result files and `tokdrop results`.
    pub fn hint(&self) -> String {
        let fixed = match self.code.as_str() {
            "spam_risk_too_many_posts" => {
                "TikTok's daily post limit for this account is reached (about 15 posts per 24 h, \
                 shared by all apps); tokdrop pauses the account and retries later"
            }
            "spam_risk_too_many_pending_share" => {
                "TikTok allows at most 5 pending drafts per 24 h; open the TikTok app and post or \
                 discard the drafts in the inbox, tokdrop retries later"
            }
            "reached_active_user_cap" => {
                "the TikTok app's daily quota of posting users is reached; tokdrop retries later"
            }
            "spam_risk_user_banned_from_posting" => {
                "TikTok does not let this account post right now; check the account in the TikTok app"
            }
            "invalid_grant" if self.endpoint == Endpoint::Refresh => {
                "TikTok no longer accepts this account's login; run `tokdrop auth login` again"
            }
            "invalid_grant" => {
                "the authorization code expired or was already used; run `tokdrop auth login` again"
            }
            "access_token_invalid" | "access_token_expired" | "token_expired" => {
                "TikTok refused the access token; tokdrop refreshes it once, and if that fails run \
                 `tokdrop auth login`"
            }
            "scope_not_authorized" | "scope_permission_missed" | "invalid_scope" => {
                "the account did not grant a needed permission (video.publish for direct posts, \
                 video.upload for inbox drafts); run `tokdrop auth login` and allow it"
            }
            "invalid_client" | "unauthorized_client" => {
                "TikTok rejected the app credentials; check tiktok.client_key and the client secret"
            }
            "access_denied" => {
                "the login was cancelled in the browser; run `tokdrop auth login` again"
            }
            "rate_limit_exceeded" => {
                "TikTok's per-minute request limit was hit; tokdrop waits and retries"
            }
            "internal_error" | "server_error" | "temporarily_unavailable" => {
                "TikTok had a temporary problem; tokdrop retries"
            }
            codes::TIMEOUT | codes::CONNECTION => {
                "TikTok could not be reached; tokdrop retries (check the network if this persists)"
            }
            codes::BAD_RESPONSE => "TikTok sent an answer tokdrop could not read; tokdrop retries",
            codes::FILE_CHANGED => {
                "the file changed while it was being uploaded; put the finished file back to retry"
            }
            codes::FILE_READ => "the file could not be read for upload; check it and put it back",
            codes::UPLOAD_EXPIRED => {
                "the upload took longer than TikTok's one-hour upload window; put the file back to retry"
            }
            codes::UPLOAD_NOT_FOUND | codes::UPLOAD_RANGE_MISMATCH | codes::UPLOAD_REJECTED => {
                "TikTok refused a chunk of the upload; put the file back to retry"
            }
            "url_ownership_unverified" => {
                "setup problem: TikTok has not verified the media URL prefix; verify server.public_url \
                 in the TikTok developer portal (URL properties) or use `transfer: upload` for videos"
            }
            "unaudited_client_can_only_post_to_private_accounts" => {
                "setup problem: an unaudited TikTok app can only post SELF_ONLY to a private account; \
                 make the account private in the TikTok app"
            }
            "app_version_check_failed" => {
                "the TikTok app on the creator's phone is too old for photo drafts (needs 31.8 or later); update it"
            }
            "privacy_level_option_mismatch" => {
                "privacy_level is not one of this account's current options; pick one that \
                 `tokdrop auth status` lists"
            }
            "invalid_param" | "invalid_params" => {
                "TikTok rejected a field of the request (see the message); fix the sidecar or file and put it back"
            }
            "invalid_publish_id" | "token_not_authorized_for_specified_publish_id" => {
                "TikTok does not know this publish_id for this account; check the profile or inbox"
            }
            "publish_not_cancellable" => {
                "TikTok is already processing this post; it can no longer be cancelled"
            }
            _ => "",
        };
        if !fixed.is_empty() {
            return fixed.to_string();
        }
        match self.class() {
            ErrorClass::Transient { .. } => "a temporary problem at TikTok; tokdrop retries".into(),
            _ => format!(
                "TikTok answered `{}`; see the message{}",
                self.code,
                if self.log_id.is_some() {
                    " and quote the log_id to TikTok support if it persists"
                } else {
                    ""
                }
            ),
        }
    }
}

/// Failure of an init call, split by what it means for double posts: an init that may have
/// reached TikTok must never be sent again (SPEC §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitError {
    /// TikTok answered with an error (including 429 and 5xx), or the request never left:
    /// nothing was created, the init may be retried when [`ApiError::class`] says so.
    NotCreated(ApiError),
    /// The request was sent but the answer was lost (timeout, dropped connection, unreadable
    /// success body): a post may exist. Do not retry; end the item as `unknown`.
    MaybeSent(ApiError),
}

impl InitError {
    pub fn api_error(&self) -> &ApiError {
        match self {
            Self::NotCreated(e) | Self::MaybeSent(e) => e,
        }
    }

    pub fn may_have_reached_tiktok(&self) -> bool {
        matches!(self, Self::MaybeSent(_))
    }
}

impl std::error::Error for InitError {}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotCreated(e) => write!(f, "{e}"),
            Self::MaybeSent(e) => write!(
                f,
                "{e}; the request may have reached TikTok, so it is not sent again"
            ),
        }
    }
}

#[cfg(test)]
mod tests;
