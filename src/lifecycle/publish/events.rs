//! What one item's life machine ([`super::lifecycle::Life`]) takes and gives: the item's
//! settings, its durable state (what the journal stores), the answers it reads, the events in
//! and the actions out. Plain data.

use std::time::Duration;

use super::{Later, PublishOutcome};
use crate::config::Transfer;
use crate::lifecycle::journal::Stage;
use crate::lifecycle::outcome::PreviousAttempt;
use crate::support::backoff::Backoff;
use crate::tiktok::error::ApiError;
use crate::tiktok::wire::PublishStatus;

/// The item and its folder's settings, fixed for the machine's life.
#[derive(Debug, Clone)]
pub struct Settings {
    pub video: bool,
    /// A direct post (drafts are checked without creator_info, by the driver).
    pub direct: bool,
    pub transfer: Transfer,
    /// PUBLIC_TO_EVERYONE: worth waiting for the post id after PUBLISH_COMPLETE.
    pub public: bool,
    /// SELF_ONLY: an unaudited app's refusal is about the account, not the item.
    pub self_only: bool,
    pub publish_timeout: Duration,
    /// `auto` videos: cancel a pull TikTok has not started after this, then upload.
    pub pull_start_timeout: Duration,
    pub backoff: Backoff,
    /// The journaled attempt's init is older than this process: the media server was down
    /// for a while since, so a pull TikTok failed then may be our fault, not TikTok's.
    pub restarted_since_init: bool,
}

/// What the journal stores of the item's life (the rest of the record is the claim's).
#[derive(Debug, Clone, PartialEq)]
pub struct Durable {
    pub stage: Stage,
    pub previous_attempts: Vec<PreviousAttempt>,
    pub creator: Option<String>,
}

/// A call that failed, by consequence (the driver classifies TikTok's errors).
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Network, 5xx, 429: nothing changed at TikTok; try again later.
    Transient { retry_after: Option<Duration> },
    /// Account-wide (daily cap, login needed, …): the account waits, the item stays.
    Paused(Later),
    /// About this item.
    Item(ApiError),
}

/// What the media server saw of the item's links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Media {
    /// TikTok asked for the media at least once.
    pub requested: bool,
    /// TikTok fetched every byte (our links work; a pull failure was TikTok's).
    pub served_whole: bool,
}

/// A status/fetch answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusAnswer {
    Read(PublishStatus),
    /// No usable answer this time (network, 5xx, an answer without a status): asked again at
    /// the next poll, so the timeout still ends the wait.
    Transient,
    /// TikTok refuses to tell this publish_id's status (`invalid_publish_id`, …).
    Refused(ApiError),
    Paused(Later),
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The worker took the item (fresh, or resumed after a restart or a pause).
    Start,
    /// The post was checked (creator_info for a direct post): the creator's username (empty
    /// for a draft), or the post does not fit.
    CreatorChecked(Result<String, Box<PublishOutcome>>),
    CreatorRefused(Refusal),
    /// The media is served under these URL tokens.
    Exposed {
        url_tokens: Vec<String>,
    },
    NotExposed(Box<PublishOutcome>),
    /// The init's rate window has room (and the service is not stopping).
    SlotReady,
    InitAccepted {
        publish_id: String,
        upload_url: Option<String>,
    },
    /// TikTok answered the init with an error: nothing was created.
    InitRefused(Refusal),
    /// The init was sent and its answer lost: it may have created a post.
    InitLost(ApiError),
    Uploaded,
    UploadFailed(ApiError),
    CancelAnswered {
        acknowledged: bool,
    },
    Polled {
        answer: StatusAnswer,
        media: Media,
    },
    /// A [`Action::RetryAfter`] wait is over.
    BackedOff,
    /// The service is stopping: leave the item as journaled.
    Stop,
}

/// What to do, in order. Those that wait for an answer come last in a batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write this to the item's journal record (before anything after it).
    Journal(Durable),
    /// Check the post before a new init: fresh creator_info for a direct post (never for a
    /// resumed one), the API's own limits for a draft.
    CheckCreator,
    /// Serve the media; `resume`: under the journaled URL tokens.
    Expose {
        resume: bool,
    },
    /// Stop serving the media.
    Revoke,
    /// Wait for the init's rate window (cancellably) → [`Event::SlotReady`] or `Stop`.
    WaitInitSlot,
    Init {
        transfer: &'static str,
    },
    /// FILE_UPLOAD to `upload_url`; `resume`: from TikTok's progress (a 416's range).
    Upload {
        upload_url: String,
        resume: bool,
    },
    Cancel {
        publish_id: String,
    },
    /// Wait, then fetch the status → [`Event::Polled`].
    PollAfter(Duration),
    /// Wait, then [`Event::BackedOff`].
    RetryAfter(Duration),
    Finish(Box<PublishOutcome>),
    /// Not now: the job stays journaled as it is and is tried again later.
    Defer(Later),
}
