//! The publisher's decisions, without I/O: whether the creator's current settings allow the
//! post, what a status answer means, when following a post stops (terminal status, timeout,
//! a pull TikTok never started), and the outcomes and messages for each end. The async driver
//! in [`super::tiktok`] does the calls and the waiting.

use std::time::Duration;

use super::PublishOutcome;
use super::cadence::next_poll;
use crate::content::sidecar::Mode;
use crate::content::sidecar::rules::{Kind, PostSpec};
use crate::lifecycle::outcome::{ErrorStage, ResultError, Status};
use crate::tiktok::error::{AccountPause, ApiError};
use crate::tiktok::fail_reason::fail_reason_hint;
use crate::tiktok::wire::{CreatorInfo, PublishState, PublishStatus};

/// Most inits sent for one item (the first and up to two more after a FAILED status, which
/// TikTok documents as terminal, so a new init cannot double the post).
pub const MAX_INITS: usize = 3;

/// What to do after an attempt ended without a post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The item ends with this attempt's outcome.
    Finish,
    /// A new init is safe and may succeed: send one, by this transfer (`pull` or `upload`).
    Retry(&'static str),
}

/// Decides whether an attempt that ended without a post is tried again (tiktok-api.md §7.2):
/// `reason` is the FAILED status' `fail_reason` (or the init's refusal code); `used` the
/// attempt's transfer; `auto` the folder allows the pull → upload fallback (videos only);
/// `previous` the attempts before this one; `served_ok` TikTok fetched every byte of the media
/// from us (so our links work and a pull failure was TikTok's).
pub fn after_failure(
    reason: &str,
    video: bool,
    auto: bool,
    used: &str,
    previous: &[crate::lifecycle::outcome::PreviousAttempt],
    served_ok: bool,
) -> AfterFailure {
    if previous.len() + 1 >= MAX_INITS {
        return AfterFailure::Finish;
    }
    let seen = |r: &str| previous.iter().any(|p| p.fail_reason == r);
    let fallback = video && auto && used == "pull";
    match reason {
        "internal" => AfterFailure::Retry(if used == "upload" { "upload" } else { "pull" }),
        // A pull TikTok did not finish, or one we cancelled because it never started.
        "video_pull_failed"
        | "photo_pull_failed"
        | "publish_cancelled"
        | "url_ownership_unverified"
            if fallback =>
        {
            AfterFailure::Retry("upload")
        }
        "video_pull_failed" | "photo_pull_failed"
            if used == "pull" && served_ok && !seen(reason) =>
        {
            AfterFailure::Retry("pull")
        }
        _ => AfterFailure::Finish,
    }
}

/// An outcome with an error and no post behind it.
pub fn failure(
    status: Status,
    stage: ErrorStage,
    code: &str,
    message: String,
    log_id: Option<String>,
    hint: String,
) -> Box<PublishOutcome> {
    Box::new(PublishOutcome::failed(
        status,
        ResultError {
            stage,
            code: code.to_string(),
            message,
            log_id,
            hint,
        },
    ))
}

/// An item-level API error as the item's failure.
pub fn api_failure(stage: ErrorStage, e: &ApiError) -> Box<PublishOutcome> {
    failure(
        Status::Failed,
        stage,
        &e.code,
        e.message.clone(),
        e.log_id.clone(),
        e.hint(),
    )
}

/// What an account-wide pause means to the user (`tokdrop status`, systemd's STATUS=).
pub fn pause_reason(p: AccountPause, e: &str) -> String {
    match p {
        AccountPause::DailyPostCap => {
            format!("paused: TikTok's daily post limit is reached ({e}); retrying later")
        }
        AccountPause::PendingShareCap => format!(
            "paused: too many drafts wait in the creator's inbox ({e}); post or delete some in the TikTok app"
        ),
        AccountPause::ActiveUserCap => {
            format!("paused: the app reached its daily creator limit ({e}); retrying later")
        }
        AccountPause::BannedFromPosting => {
            format!("paused: TikTok does not let this account post ({e})")
        }
        AccountPause::NeedsLogin => "paused: needs login — run `tokdrop auth login`".to_string(),
    }
}

/// The longest video the API takes (tiktok-api.md §6): the limit of drafts, which
/// `inbox/video/init` accepts without creator_info (the creator trims in the app).
pub const API_MAX_VIDEO_MS: u64 = 600_000;

/// Checks a draft for the inbox: no creator_info (it needs `video.publish`, which an
/// inbox-only app does not have); only the API's own duration limit.
pub fn check_draft(spec: &PostSpec, duration_ms: Option<u64>) -> Result<(), Box<PublishOutcome>> {
    match duration_ms {
        Some(ms) if spec.kind == Kind::Video && ms > API_MAX_VIDEO_MS => Err(failure(
            Status::Failed,
            ErrorStage::Validate,
            "video_too_long",
            format!(
                "the video is {} s long; TikTok's API takes drafts up to {} s",
                ms / 1000,
                API_MAX_VIDEO_MS / 1000
            ),
            None,
            "shorten the video to 10 minutes or less".to_string(),
        )),
        _ => Ok(()),
    }
}

/// Checks the post against the creator's current settings (fresh creator_info); forces
/// interactions off where the creator disabled them.
pub fn check_creator(
    spec: &mut PostSpec,
    info: &CreatorInfo,
    duration_ms: Option<u64>,
) -> Result<(), Box<PublishOutcome>> {
    let options = || info.privacy_level_options.join(", ");
    if spec.mode == Mode::Direct
        && let Some(p) = spec.privacy_level
        && !info.privacy_level_options.iter().any(|o| o == p.as_str())
    {
        return Err(failure(
            Status::Failed,
            ErrorStage::Validate,
            "privacy_level_option_mismatch",
            format!(
                "privacy_level {p} is not one of this account's options ({})",
                options()
            ),
            None,
            format!(
                "choose one of {} in the sidecar or the folder defaults",
                options()
            ),
        ));
    }
    if spec.kind == Kind::Video
        && let Some(ms) = duration_ms
        && info.max_video_post_duration_sec > 0
        && ms > u64::from(info.max_video_post_duration_sec) * 1000
    {
        return Err(failure(
            Status::Failed,
            ErrorStage::Validate,
            "video_too_long_for_creator",
            format!(
                "the video is {} s long; this account may post at most {} s",
                ms / 1000,
                info.max_video_post_duration_sec
            ),
            None,
            "shorten the video".to_string(),
        ));
    }
    spec.disable_comment |= info.comment_disabled;
    spec.disable_duet |= info.duet_disabled;
    spec.disable_stitch |= info.stitch_disabled;
    Ok(())
}

/// A post that reached TikTok: its status, publish_id, ids and, with a username, its link
/// (`/@user/video/ID`, or `/@user/photo/ID` for a photo post).
pub fn done(
    status: Status,
    publish_id: &str,
    post_ids: Vec<String>,
    creator: Option<&str>,
    photo: bool,
) -> PublishOutcome {
    let kind = if photo { "photo" } else { "video" };
    let post_url = match (post_ids.first(), creator) {
        (Some(id), Some(user)) if !user.is_empty() => {
            Some(format!("https://www.tiktok.com/@{user}/{kind}/{id}"))
        }
        _ => None,
    };
    PublishOutcome {
        status,
        transfer: None,
        publish_id: Some(publish_id.to_string()),
        post_ids,
        post_url,
        previous_attempts: Vec::new(),
        fetched: None,
        error: None,
    }
}

/// What following a post does next.
#[derive(Debug, PartialEq)]
pub enum FollowStep {
    /// Wait this long, then fetch the status.
    Poll(Duration),
    /// TikTok never came for the media: revoke the links and cancel the publish, then go on
    /// following it until TikTok says it FAILED (only then may another init be sent).
    Cancel,
    /// The post is published or in the inbox.
    Done(Box<PublishOutcome>),
    /// It ended otherwise: failed, or unknown after the timeout.
    Finish(Box<PublishOutcome>),
}

/// Following one publish_id to its end.
#[derive(Debug)]
pub struct Follow {
    publish_id: String,
    creator: Option<String>,
    /// A PUBLIC_TO_EVERYONE post gets its id after moderation: worth waiting for.
    public: bool,
    /// PULL_FROM_URL: TikTok must come and fetch the media.
    pulling: bool,
    /// Cancel a pull TikTok has not started this long after the init (a fallback may
    /// follow; `tiktok.pull_start_timeout`). A pull without fallback keeps waiting, as TikTok
    /// may start downloading late.
    cancel_on_silence: Option<Duration>,
    cancel_sent: bool,
    /// A photo post (its link is `/photo/`).
    photo: bool,
    timeout: Duration,
    polls: u32,
    /// Complete, public, no post id yet: published, waiting (slowly) for the id.
    complete_without_id: Option<Box<PublishOutcome>>,
}

impl Follow {
    pub fn new(
        publish_id: &str,
        creator: Option<&str>,
        public: bool,
        pulling: bool,
        timeout: Duration,
    ) -> Self {
        Self {
            publish_id: publish_id.to_string(),
            creator: creator.map(String::from),
            public,
            pulling,
            cancel_on_silence: None,
            cancel_sent: false,
            photo: false,
            timeout,
            polls: 0,
            complete_without_id: None,
        }
    }

    /// Follows a photo post.
    pub fn photos(mut self) -> Self {
        self.photo = true;
        self
    }

    /// Cancels a pull TikTok has not started `after` the init (see [`FollowStep::Cancel`]).
    pub fn cancel_on_silence(mut self, after: Duration) -> Self {
        self.cancel_on_silence = Some(after);
        self
    }

    /// The cancel was already sent (before a restart): not again.
    pub fn cancel_sent(mut self) -> Self {
        self.cancel_sent = true;
        self
    }

    /// Status requests made so far.
    pub fn polls(&self) -> u32 {
        self.polls
    }

    /// The next step, `elapsed` after following began; `requested`: TikTok has asked for the
    /// media at least once.
    pub fn next(&mut self, elapsed: Duration, requested: bool) -> FollowStep {
        if elapsed > self.timeout {
            if let Some(o) = self.complete_without_id.take() {
                return FollowStep::Done(o); // published; TikTok never showed the post id
            }
            return FollowStep::Finish(failure(
                Status::Unknown,
                ErrorStage::Timeout,
                "publish_timeout",
                format!(
                    "TikTok did not finish processing within {}",
                    crate::support::duration::format(self.timeout)
                ),
                None,
                "look at the creator's profile or inbox later; move the files back to try again if the post never appears".into(),
            ));
        }
        if self.pulling
            && self.cancel_on_silence.is_some_and(|after| elapsed > after)
            && !self.cancel_sent
            && self.polls > 0
            && !requested
        {
            self.cancel_sent = true;
            return FollowStep::Cancel;
        }
        let wait = if self.polls == 0 {
            Duration::ZERO
        } else {
            next_poll(elapsed, self.complete_without_id.is_some())
        };
        self.polls += 1;
        FollowStep::Poll(wait)
    }

    /// A status answer: `Some` when the post reached its end.
    pub fn on_status(&mut self, status: &PublishStatus) -> Option<FollowStep> {
        let creator = self.creator.as_deref();
        match status.state {
            PublishState::PublishComplete => {
                let ids: Vec<String> = status.post_ids.iter().map(u64::to_string).collect();
                let o = Box::new(done(
                    Status::Published,
                    &self.publish_id,
                    ids,
                    creator,
                    self.photo,
                ));
                if o.post_ids.is_empty() && self.public {
                    self.complete_without_id = Some(o);
                    return None;
                }
                Some(FollowStep::Done(o))
            }
            PublishState::SentToUserInbox => Some(FollowStep::Done(Box::new(done(
                Status::SentToInbox,
                &self.publish_id,
                Vec::new(),
                creator,
                self.photo,
            )))),
            PublishState::Failed => {
                let reason = status.fail_reason.as_deref().unwrap_or("unknown");
                let mut o = failure(
                    Status::Failed,
                    ErrorStage::Processing,
                    reason,
                    format!("TikTok could not publish the post: {reason}"),
                    None,
                    fail_reason_hint(reason),
                );
                o.publish_id = Some(self.publish_id.clone());
                Some(FollowStep::Finish(o))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
