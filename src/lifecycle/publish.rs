//! The boundary between the folder pipeline and whatever posts an item: the [`Publisher`]
//! trait and the [`Job`] it works on. A publisher must journal through the job *before* the
//! steps that could post (`init_intent`) and right after TikTok names the post (`published`), so
//! a restart resumes by `publish_id` and never posts twice. The pipeline runs one job at a time
//! per account.

pub mod cadence;
pub mod events;
pub mod lifecycle;
pub mod machine;
pub mod tiktok;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use crate::content::sidecar::rules::PostSpec;
use crate::lifecycle::journal::{Journal, JournalError, Record, Stage};
use crate::lifecycle::outcome::{Fetched, PreviousAttempt, ResultError, Status};
use crate::lifecycle::status::Board;
use crate::tiktok::error::AccountPause;

/// One item handed to a publisher.
pub struct Job {
    pub record: Record,
    pub spec: PostSpec,
    /// The media files in the work area, in posting order.
    pub media: Vec<PathBuf>,
    journal: Journal,
    pub board: Board,
    /// The media URL tokens of the current pull attempt, journaled with the publish_id.
    pub url_tokens: Vec<String>,
    /// The video's duration as intake's look read it (the file is not probed again).
    pub duration_ms: Option<u64>,
}

impl Job {
    pub fn new(
        record: Record,
        spec: PostSpec,
        media: Vec<PathBuf>,
        journal: Journal,
        board: Board,
    ) -> Self {
        let url_tokens = match &record.stage {
            Stage::Published { url_tokens, .. } => url_tokens.clone(),
            _ => Vec::new(),
        };
        Self {
            record,
            spec,
            media,
            journal,
            board,
            url_tokens,
            duration_ms: None,
        }
    }

    /// The video's duration, as already read from the file.
    pub fn with_duration_ms(mut self, duration_ms: Option<u64>) -> Self {
        self.duration_ms = duration_ms;
        self
    }

    /// Whether this job resumes a post TikTok already accepted (after a restart).
    pub fn publish_id(&self) -> Option<&str> {
        match &self.record.stage {
            Stage::Published { publish_id, .. } => Some(publish_id),
            _ => None,
        }
    }

    /// Journals that an init request is about to be sent. Call it before every init.
    pub fn init_intent(&mut self, transfer: &str) -> Result<(), JournalError> {
        let stage = Stage::InitIntent {
            at: jiff::Timestamp::now(),
            transfer: transfer.to_string(),
        };
        self.journal.advance(&mut self.record, stage)
    }

    /// Journals that the init was answered with an error that created nothing: the item is
    /// back to "claimed" and may be sent again.
    pub fn init_refused(&mut self) -> Result<(), JournalError> {
        self.journal.advance(&mut self.record, Stage::Claimed)
    }

    /// Journals the publish_id TikTok returned. Call it before anything else happens.
    pub fn published(
        &mut self,
        publish_id: &str,
        transfer: &str,
        upload_url: Option<&str>,
    ) -> Result<(), JournalError> {
        let stage = Stage::Published {
            publish_id: publish_id.to_string(),
            transfer: transfer.to_string(),
            url_tokens: if transfer == "pull" {
                self.url_tokens.clone()
            } else {
                Vec::new()
            },
            init_at: Some(jiff::Timestamp::now()),
            upload_url: upload_url.map(String::from),
            revoked: false,
        };
        self.journal.advance(&mut self.record, stage)?;
        crate::support::metrics::metrics().claim_to_init(since(self.record.queued_at));
        Ok(())
    }

    /// Writes what the item's [`lifecycle::Life`] says to the journal: its stage, earlier
    /// attempts and creator. The first publish_id of the job feeds the claim → init metric.
    pub fn journal_life(&mut self, life: &lifecycle::Durable) -> Result<(), JournalError> {
        let newly_published = matches!(life.stage, Stage::Published { .. })
            && !matches!(self.record.stage, Stage::Published { .. });
        if let Stage::Published { url_tokens, .. } = &life.stage {
            self.url_tokens = url_tokens.clone();
        }
        self.record.previous_attempts = life.previous_attempts.clone();
        self.record.creator = life.creator.clone();
        self.journal.advance(&mut self.record, life.stage.clone())?;
        let revoked = matches!(life.stage, Stage::Published { revoked: true, .. });
        tracing::debug!(item = %self.record.item, stage = %life.stage.name(), revoked, "journaled");
        if newly_published {
            crate::support::metrics::metrics().claim_to_init(since(self.record.queued_at));
        }
        Ok(())
    }

    /// The transfer and init time of the attempt TikTok accepted, when there is one.
    pub fn current_attempt(&self) -> Option<(&str, Option<jiff::Timestamp>)> {
        match &self.record.stage {
            Stage::Published {
                transfer, init_at, ..
            } => Some((transfer, *init_at)),
            _ => None,
        }
    }

    /// The journaled `upload_url` of the current FILE_UPLOAD attempt.
    pub fn upload_url(&self) -> Option<&str> {
        match &self.record.stage {
            Stage::Published { upload_url, .. } => upload_url.as_deref(),
            _ => None,
        }
    }

    /// Remembers an attempt that ended without a post; journaled with the next stage.
    pub fn add_previous(&mut self, attempt: PreviousAttempt) {
        self.record.previous_attempts.push(attempt);
    }

    /// Updates the step shown by `tokdrop status`.
    pub fn show_stage(&self, stage: crate::lifecycle::status::Step) {
        self.board
            .update_flight(&self.record.account, |f| f.stage = stage);
    }
}

/// What a publisher reports when it is done with a job.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishOutcome {
    pub status: Status,
    pub transfer: Option<String>,
    pub publish_id: Option<String>,
    pub post_ids: Vec<String>,
    pub post_url: Option<String>,
    pub previous_attempts: Vec<PreviousAttempt>,
    pub fetched: Option<Fetched>,
    pub error: Option<ResultError>,
}

impl PublishOutcome {
    /// A failure with no post behind it.
    pub fn failed(status: Status, error: ResultError) -> Self {
        Self {
            status,
            transfer: None,
            publish_id: None,
            post_ids: Vec::new(),
            post_url: None,
            previous_attempts: Vec::new(),
            fetched: None,
            error: Some(error),
        }
    }
}

/// What a publisher returns for a job: an outcome, or "not now" (the account is paused, the
/// service is stopping) — the job then stays journaled as it is and is tried again later.
pub enum Attempt {
    Done(Box<PublishOutcome>),
    Later(Later),
}

/// Why a job is put off: what the log and `tokdrop status` say, and what the account's
/// notification (`paused` or `needs_login`) reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Later {
    pub reason: String,
    /// Only `tokdrop auth login` ends it (TikTok refused the login).
    pub needs_login: bool,
    /// TikTok's `error.code` behind it, when there is one.
    pub code: Option<String>,
}

impl Later {
    /// An account-wide condition TikTok reported (`detail`: its error, for the reason).
    pub fn account(pause: AccountPause, detail: &str) -> Self {
        let code = match pause {
            AccountPause::DailyPostCap => "spam_risk_too_many_posts",
            AccountPause::PendingShareCap => "spam_risk_too_many_pending_share",
            AccountPause::ActiveUserCap => "reached_active_user_cap",
            AccountPause::BannedFromPosting => "spam_risk_user_banned_from_posting",
            AccountPause::NeedsLogin => "refresh_token_rejected",
        };
        Self {
            reason: machine::pause_reason(pause, detail),
            needs_login: pause == AccountPause::NeedsLogin,
            code: Some(code.to_string()),
        }
    }

    /// TikTok refused the authorization: a new login is needed.
    pub fn login(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            needs_login: true,
            code: Some("authorization_refused".to_string()),
        }
    }

    /// Another condition of the account, with a short code for notifications.
    pub fn paused(reason: impl Into<String>, code: &str) -> Self {
        Self {
            reason: reason.into(),
            needs_login: false,
            code: Some(code.to_string()),
        }
    }
}

impl From<String> for Later {
    fn from(reason: String) -> Self {
        Self {
            reason,
            needs_login: false,
            code: None,
        }
    }
}

impl From<&str> for Later {
    fn from(reason: &str) -> Self {
        reason.to_string().into()
    }
}

/// Posts items. Implementations: the TikTok publisher, and scripted fakes in tests.
pub trait Publisher: Send + Sync + 'static {
    fn publish<'a>(
        &'a self,
        job: &'a mut Job,
    ) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>>;
}

/// Time from `t` to now (zero when `t` is in the future).
pub fn since(t: jiff::Timestamp) -> std::time::Duration {
    jiff::Timestamp::now()
        .duration_since(t)
        .try_into()
        .unwrap_or_default()
}
